/**
 * The one failure shape: the outcome of something that can fail without ending the process.
 * Success carries its own fields next to `ok: true`, failure carries `error` and never an HTTP
 * status or AWS error code. `error` is a message a person can act on unless E says otherwise: a
 * policy's errors are a list, serve's command line gives its problems, and credentials give a
 * CredentialRefusal (credentials/types.ts), the message plus the cause that
 * countersign_credentials_refusals_total counts. Where such a failure ends a request (a
 * malformed path or client signature, credentials that are unavailable), extproc names the refusal
 * reason and `deny` (extproc/denial.ts) looks its answer up.
 */
export type Result<T extends object, E = string> = ({ readonly ok: true } & T) | { readonly ok: false; readonly error: E };
