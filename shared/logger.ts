/**
 * The pino logger every service uses: JSON lines, or pretty output when
 * standard output is a terminal.
 */
import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

export const LOG_LEVELS = [
  "fatal",
  "error",
  "warn",
  "info",
  "debug",
  "trace",
  "silent",
] as const satisfies readonly LevelWithSilent[];

export interface LoggerOptions {
  service: string;
  level: LevelWithSilent;
  /** Fields every line carries, such as `nodeId` or `buildId`. */
  bindings?: Record<string, unknown>;
}

export function createLogger(options: LoggerOptions): Logger {
  const pretty = process.stdout.isTTY === true;

  const logger = pino({
    name: options.service,
    level: options.level,
    base: { pid: process.pid },
    transport: pretty
      ? { target: "pino-pretty", options: { destination: 1 } }
      : undefined,
  });

  return options.bindings ? logger.child(options.bindings) : logger;
}
