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

  const settings = {
    name: options.service,
    level: options.level,
    base: { pid: process.pid },
  };
  // Synchronous writes: nothing is left in a buffer to flush at exit. A
  // buffered logger whose reader went away (a closed pipe) retries that
  // flush forever, and the process never exits.
  const logger = pretty
    ? pino({
        ...settings,
        transport: { target: "pino-pretty", options: { destination: 1 } },
      })
    : pino(settings, pino.destination({ dest: 1, sync: true }));

  return options.bindings ? logger.child(options.bindings) : logger;
}
