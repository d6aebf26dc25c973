/**
 * What the builder publishes on `logs:<slug>`, one JSON object per message.
 *
 * The existing dashboard reads only `log`; every other field is an addition
 * it ignores. `seq` counts 1, 2, 3 ... within one build with no gap, and the
 * status message is always the last of a build.
 */

declare const buildIdBrand: unique symbol;

export type BuildId = string & { readonly [buildIdBrand]: true };
export type Seq = number;

export type LogStream = "stdout" | "stderr" | "system";
export type BuildOutcome = "succeeded" | "failed";

export interface LineMessage {
  type: "line";
  /** The text of the line, without its line end. */
  log: string;
  buildId: BuildId;
  seq: Seq;
  /** When the builder read the line, in ms since the epoch. */
  ts: number;
  stream: LogStream;
}

export interface StatusMessage {
  type: "status";
  /** A human sentence saying the same as the other fields. */
  log: string;
  buildId: BuildId;
  seq: Seq;
  ts: number;
  stream: "system";
  status: BuildOutcome;
  exitCode: number;
  durationMs: number;
}

export type LogMessage = LineMessage | StatusMessage;

const BUILD_ID_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;

export function isBuildId(value: unknown): value is BuildId {
  return typeof value === "string" && BUILD_ID_PATTERN.test(value);
}

/**
 * Parses a payload read from Valkey. Returns undefined for anything that is
 * not a message of this protocol, so a stray publish cannot break a relay.
 */
export function parseLogMessage(payload: string): LogMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;

  const message = value as Partial<LogMessage>;
  if (message.type !== "line" && message.type !== "status") return undefined;
  if (typeof message.log !== "string") return undefined;
  if (!isBuildId(message.buildId)) return undefined;
  if (!Number.isSafeInteger(message.seq) || (message.seq as number) < 1) {
    return undefined;
  }
  if (typeof message.ts !== "number") return undefined;

  return message as LogMessage;
}
