/**
 * The outcome of something that can fail without ending the process: success carries its own
 * fields next to `ok: true`, failure carries `error` (a message a person can act on, unless E says
 * otherwise). Failures that end a request become a `Denial` in extproc, never a Result.
 */
export type Result<T extends object, E = string> = ({ readonly ok: true } & T) | { readonly ok: false; readonly error: E };
