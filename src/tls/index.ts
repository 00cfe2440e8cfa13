export { startListenerTls, type ListenerTls, type ListenerTlsOptions, type TlsLogger } from "./listenerTls.js";
export type { TlsFiles, TlsSummary } from "./tlsMaterial.js";
