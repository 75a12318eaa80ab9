// The one logger: pino JSON, child loggers per controller/object; secret-looking fields are redacted.
import { type Logger, pino } from "pino";

export type { Logger } from "pino";

export const REDACTED_KEYS = [
  "LICENSE_KEY",
  "licenseKey",
  "password",
  "pass",
  "token",
  "authorization",
  "secret",
];

export function createLogger(
  opts: { level?: string; name?: string; destination?: pino.DestinationStream } = {},
): Logger {
  const paths = REDACTED_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);
  return pino(
    {
      level: opts.level ?? "info",
      redact: { paths, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination,
  );
}

/** A logger that drops everything, for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
