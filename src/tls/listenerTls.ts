/**
 * TLS for the ext_proc gRPC listener (`--tls-cert`, `--tls-key`, `--tls-client-ca`), reloaded
 * without a restart: the files are followed by the mounted-file watcher (src/files/), a settled
 * change is checked (tlsMaterial.ts) and swapped into the listener through grpc-js's
 * certificate-provider credentials. Open connections keep the certificate they were made with;
 * new ones get the new certificate and are checked against the new client CA. A change that cannot
 * be used (a file missing, a key that does not match, not PEM) is logged and the listener keeps
 * what it has.
 */
import * as grpc from "@grpc/grpc-js";
import { readMountedFile, watchMountedFiles, type MountedFileIo, type MountedFileTiming } from "../files/index.js";
import { SwappableCertificateProvider } from "./certificateProvider.js";
import { tlsMaterial, tlsPaths, type TlsFiles } from "./tlsMaterial.js";

export interface TlsLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ListenerTlsOptions {
  readonly logger: TlsLogger;
  /** Overrides of the mounted-file watcher's timings (tests). */
  readonly timing?: Partial<MountedFileTiming>;
  readonly io?: MountedFileIo;
}

export interface ListenerTls {
  /** Server credentials for the listener; they follow the files until `stop()`. */
  readonly credentials: grpc.ServerCredentials;
  readonly mode: "tls" | "mtls";
  stop(): void;
}

/** Reads and checks the files now (throws, naming the flag and file, when they cannot serve), then follows them. */
export async function startListenerTls(files: TlsFiles, options: ListenerTlsOptions): Promise<ListenerTls> {
  const { logger } = options;
  const paths = tlsPaths(files);
  const initial = await Promise.all(paths.map((path) => (options.io ? options.io.read(path) : readMountedFile(path))));
  const first = tlsMaterial(files, initial);
  if (!first.ok) throw new Error(first.error);
  logger.info({ ...first.material.summary }, "TLS certificate loaded");

  const provider = new SwappableCertificateProvider(first.material);
  const mtls = files.clientCaFile !== undefined;
  // grpc-js 1.14 names the first parameter caCertificateProvider, but passes it on as the identity
  // (certificate and key) provider, as @grpc/grpc-js-xds calls it: identity first, then the CA.
  const credentials = grpc.experimental.createCertificateProviderServerCredentials(provider, mtls ? provider : null, mtls);

  const watcher = watchMountedFiles(
    paths,
    ({ files: snapshots }) => {
      const next = tlsMaterial(files, snapshots);
      if (!next.ok) {
        logger.error({ error: next.error, keptCertSha256: provider.current().summary.certSha256 }, "TLS reload refused; the listener keeps its current certificate");
        return;
      }
      provider.swap(next.material);
      logger.info({ ...next.material.summary }, "TLS certificate reloaded");
    },
    {
      initial,
      ...(options.timing ? { timing: options.timing } : {}),
      ...(options.io ? { io: options.io } : {}),
      onWatchFailure: ({ dir, error, when }) =>
        logger.warn(
          { dir, error: error instanceof Error ? error.message : String(error) },
          when === "start" ? "cannot watch the TLS files' directory; polling only" : "TLS files' directory watch failed; polling only",
        ),
    },
  );
  return { credentials, mode: mtls ? "mtls" : "tls", stop: () => watcher.stop() };
}
