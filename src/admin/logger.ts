/**
 * Structured JSON logs (pino). Secrets are kept out by construction — events carry masked key ids
 * only — and, as a second line of defence, by redacting any field that is named like one.
 */
import pino from "pino";

export type Logger = pino.Logger;

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel = "info", destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      // "name", not "service": decision lines carry the request's SigV4 service as "service".
      base: { name: "countersign" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: [
          "secretAccessKey",
          "sessionToken",
          "*.secretAccessKey",
          "*.sessionToken",
          "authorization",
          "*.authorization",
          "signature",
          "*.signature",
        ],
        censor: "[redacted]",
      },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
