export * from "./constants.js";
export { selectPayloadMode, type PayloadMode, type PayloadModeName } from "./payloadMode.js";
export { parseAuthorizationHeader, parsePresignedQuery, type ClientAuth } from "./parseClientAuth.js";
export { looksLikeRegion, regionFromHost } from "./regionFromHost.js";
export { isNeverSigned, selectSignedHeaders } from "./selectSignedHeaders.js";
export { signRequest, type SignInput, type SignOutput } from "./signRequest.js";
export { splitPath, type DecodedQuery, type SplitPath } from "./splitPath.js";
export type { Credentials } from "./types.js";
