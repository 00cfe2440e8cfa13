/** What `countersign --help` and each subcommand's `--help` print (on stdout, exit 0). */
import { DEFAULT_ADMISSION_LIMITS } from "../extproc/admission.js";
import { SERVE_DEFAULTS } from "./serveArgs.js";

export const SERVE_USAGE = `usage: countersign serve --policy FILE [--listen HOST:PORT] [--admin-listen HOST:PORT] [--log-level LEVEL]
                         [--drain-seconds N] [--shutdown-grace-seconds N] [--workers N]
                         [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
                         [--max-streams N] [--max-held-bytes N]

Runs the ext_proc gRPC server and the admin listener (/healthz, /readyz, /metrics).
Every flag can come from the environment instead; the flag wins.

  --policy FILE               COUNTERSIGN_POLICY; required
  --listen HOST:PORT          COUNTERSIGN_LISTEN (default ${SERVE_DEFAULTS.listen}): the gRPC listener
  --admin-listen HOST:PORT    COUNTERSIGN_ADMIN_LISTEN (default ${SERVE_DEFAULTS.adminListen})
  --log-level LEVEL           COUNTERSIGN_LOG_LEVEL (default ${SERVE_DEFAULTS.logLevel}): fatal, error, warn, info, debug, trace, silent
  --drain-seconds N           COUNTERSIGN_DRAIN_SECONDS (default ${SERVE_DEFAULTS.drainSeconds}): after SIGTERM, keep serving while /readyz fails
  --shutdown-grace-seconds N  COUNTERSIGN_SHUTDOWN_GRACE_SECONDS (default ${SERVE_DEFAULTS.shutdownGraceSeconds}): then wait this long for open streams
  --workers N                 COUNTERSIGN_WORKERS (default ${SERVE_DEFAULTS.workers}, at most ${SERVE_DEFAULTS.maxWorkers}): processes sharing the gRPC
                              listener (Node cluster); the primary serves the admin port
  --tls-cert FILE --tls-key FILE
                              COUNTERSIGN_TLS_CERT, COUNTERSIGN_TLS_KEY: TLS on the gRPC listener
                              (shared-service mode), reloaded when the files change
  --tls-client-ca FILE        COUNTERSIGN_TLS_CLIENT_CA: require client certificates from this CA (mTLS)
  --max-streams N             COUNTERSIGN_MAX_STREAMS (default ${DEFAULT_ADMISSION_LIMITS.maxConcurrentStreams}): streams open at once, per worker;
                              more are answered 503
  --max-held-bytes N          COUNTERSIGN_MAX_HELD_BYTES (default ${DEFAULT_ADMISSION_LIMITS.maxHeldBytes}): body bytes held by all streams,
                              per worker; over it, 503
  -h, --help                  this text
`;

export const VALIDATE_USAGE = `usage: countersign validate FILE

Checks a policy file. Exit 0 when it is valid; otherwise prints FILE:LINE:COL: message for every
problem and exits 1.

  -h, --help   this text
`;

export const MAIN_USAGE = `usage: countersign COMMAND [OPTIONS]

commands:
  serve      run the ext_proc server (countersign serve --help)
  validate   check a policy file (countersign validate --help)
  certs      issue the certificate Envoy presents to the workload (countersign certs --help)
  version    print countersign's version (also --version)
  help       this text (also --help, -h); help COMMAND: that command's usage

exit codes: 0 success, 1 failure, 2 usage error (unknown flag, bad value, missing argument)
`;
