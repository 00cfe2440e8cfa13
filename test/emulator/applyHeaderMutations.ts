/**
 * `MutationUtils::applyHeaderMutations` (envoyproxy/envoy
 * `source/extensions/filters/http/ext_proc/mutation_utils.cc`), as a pure function over a
 * HeaderMap. Every refused entry is counted in `rejected` (the `rejected_header_mutations`
 * counter), including the ones that turn into an error.
 *
 * Facts reproduced from the source:
 * - the value used is `raw_value`; `value` is ignored (runtime guard `send_header_raw_value`,
 *   on since 1.27, removed in #35388) — so a `value`-only entry sets the header to EMPTY;
 * - `value` and `raw_value` both non-empty → InvalidArgument (the request fails);
 * - `append` (a BoolValue) unset means overwrite; `append_action` is not read at all;
 * - with `remove_content_length` (STREAMED, BUFFERED_PARTIAL, BUFFERED+headers SKIP) any
 *   `set_headers` entry for content-length is skipped silently (not counted) — and that is ALL
 *   the flag does here: an existing content-length header is NOT removed by this function;
 * - CONTINUE_AND_REPLACE may set `:method`.
 */
import type { HeaderMutation__Output } from "../../protos/generated/envoy/service/ext_proc/v3/HeaderMutation.js";
import { bytesToHeaderValue, type HeaderMap, headerNameIsValid, headerValueIsValid } from "./headerMap.js";
import type { Checker } from "./mutationRules.js";
import { invalidArgument, OK, type ProcessingStatus } from "./processingStatus.js";

export interface MutationOptions {
  checker: Checker;
  /** The response carried CONTINUE_AND_REPLACE. */
  replacingMessage: boolean;
  /** `shouldRemoveContentLength()` of the current processing mode. */
  removeContentLength: boolean;
  /** HCM `max_headers_count` (default 100) and `max_request_headers_kb` (default 60). */
  maxHeadersCount: number;
  maxHeadersKb: number;
}

export interface MutationOutcome {
  status: ProcessingStatus;
  rejected: number;
}

export function applyHeaderMutations(
  mutation: HeaderMutation__Output,
  headers: HeaderMap,
  options: MutationOptions,
): MutationOutcome {
  let rejected = 0;
  const fail = (message: string): MutationOutcome => ({ status: invalidArgument(message), rejected: rejected + 1 });

  const removes = mutation.remove_headers ?? [];
  const sets = mutation.set_headers ?? [];
  if (removes.length > options.maxHeadersCount || sets.length > options.maxHeadersCount) {
    return fail(
      `Header mutation remove header count ${removes.length} or set header count ${sets.length} exceed the HCM header countlimit ${options.maxHeadersCount}`,
    );
  }

  for (const name of removes) {
    if (!headerNameIsValid(name)) return fail("Invalid character in remove_headers mutation.");
    const lower = name.toLowerCase();
    const result = options.checker.check("REMOVE", lower, "");
    if (result === "OK") headers.remove(lower);
    else if (result === "IGNORE") rejected++;
    else return fail(`Invalid attempt to remove ${lower}`);
  }

  for (const option of sets) {
    const header = option.header;
    if (!header) continue;
    const key = header.key ?? "";
    if (options.removeContentLength && key.toLowerCase() === "content-length") continue;

    const value = header.value ?? "";
    const raw = bytesToHeaderValue(header.raw_value);
    if (value !== "" && raw !== "") {
      return fail("Only one of value or raw_value in the HeaderValue message should be set.");
    }
    if (!headerNameIsValid(key) || !headerValueIsValid(raw)) {
      return fail("Invalid character in set_headers mutation.");
    }
    const lower = key.toLowerCase();
    const append = option.append?.value ?? false;
    const op = append && headers.has(lower) ? "APPEND" : "SET";
    let result = options.checker.check(op, lower, raw);
    if (options.replacingMessage && lower === ":method") result = "OK";
    if (result === "OK") {
      if (append) headers.add(lower, raw);
      else headers.set(lower, raw);
    } else if (result === "IGNORE") {
      rejected++;
    } else {
      return fail(`Invalid attempt to modify ${lower}`);
    }
  }

  if (headers.size > options.maxHeadersCount || headers.byteSize() > options.maxHeadersKb * 1024) {
    return fail(
      `Header mutation causes end result header count ${headers.size} or header size ${headers.byteSize()} bytes, exceeding the count limit ${options.maxHeadersCount} or the size limit ${options.maxHeadersKb} kilobytes`,
    );
  }
  return { status: OK, rejected };
}
