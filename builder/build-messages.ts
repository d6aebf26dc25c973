/**
 * What the builder publishes, beyond the shared wire format.
 *
 * Every message is a `LineMessage` or `StatusMessage` of shared/wire.ts;
 * the builder adds optional fields that readers of the wire format may
 * ignore:
 *
 * - step lines (`stream: "system"`): `step`, `phase` ("start" or "end"),
 *   and at the end `exitCode` and `durationMs`;
 * - drop notices (`stream: "system"`): `dropped`, `droppedFromSeq`,
 *   `droppedToSeq` (see `DropNotice`);
 * - the status: `failedStep` when a step failed, and `metrics`.
 *
 * The sentences in `log` are for people; programs read the fields.
 */
import type {
  BuildOutcome,
  LineMessage,
  LogStream,
  Seq,
  StatusMessage,
} from "../shared/wire.ts";

/** Steps in the order they run; `checkout` only when GIT_REF is set. */
export type StepName = "clone" | "checkout" | "install" | "build";

export interface StepFields {
  step: StepName;
  phase: "start" | "end";
  exitCode?: number;
  durationMs?: number;
}

/**
 * Announces lines lost while Valkey was unreachable and the queue was full.
 * It takes the next seq when it is written, so it comes after the gap it
 * explains: `dropped` messages with seqs from `droppedFromSeq` to
 * `droppedToSeq` will never arrive. The range may enclose a few seqs that
 * were not dropped (earlier drop notices are never dropped); those arrive.
 */
export interface DropNotice {
  dropped: number;
  droppedFromSeq: Seq;
  droppedToSeq: Seq;
}

/** Extra fields a line may carry. */
export type LineFields = StepFields | DropNotice;

export type BuilderLineMessage = LineMessage & Partial<StepFields & DropNotice>;

/** Counters of the log publisher, as of the final status. */
export interface PublisherMetrics {
  /** Messages written to the queue (seqs used), status excluded. */
  linesQueued: number;
  /** Messages the publish script accepted, status excluded. */
  linesPublished: number;
  /** Payload bytes of those messages. */
  bytesPublished: number;
  /** Messages dropped because the queue was full. */
  linesDropped: number;
  /** Most messages waiting at once. */
  queueMaxLinesSeen: number;
  /** Successful publish script calls. */
  publishCalls: number;
  /** Failed publish script calls, each retried (not those made before the first connection). */
  publishRetries: number;
  /** Round trip of a successful call: mean and worst. */
  publishLatencyMsAvg: number;
  publishLatencyMsMax: number;
}

export interface BuilderStatusMessage extends StatusMessage {
  failedStep?: StepName;
  metrics?: PublisherMetrics;
}

/** How a build ended, before it becomes a status message. */
export interface BuildResult {
  status: BuildOutcome;
  /** 0 when it succeeded; never 0 when it failed. */
  exitCode: number;
  durationMs: number;
  failedStep?: StepName;
  /** Set when the builder was told to stop. */
  signal?: NodeJS.Signals;
}

export function lineMessage(
  fields: Omit<LineMessage, "type">,
  extra?: LineFields,
): BuilderLineMessage {
  return { type: "line", ...fields, ...extra };
}

/** "1.2 s", "250 ms". */
export function formatDuration(durationMs: number): string {
  if (durationMs < 1000) return `${Math.round(durationMs)} ms`;
  return `${(durationMs / 1000).toFixed(1)} s`;
}

export function stepStartedText(step: StepName, command: string): string {
  return `Step ${step} started: ${command}`;
}

export function stepEndedText(
  step: StepName,
  exitCode: number,
  durationMs: number,
): string {
  const verb = exitCode === 0 ? "succeeded" : "failed";
  return `Step ${step} ${verb} in ${formatDuration(durationMs)} (exit code ${exitCode})`;
}

export function dropNoticeText(notice: DropNotice): string {
  const lines =
    notice.dropped === 1
      ? "1 log line was"
      : `${notice.dropped} log lines were`;
  return (
    `${lines} dropped (seq ${notice.droppedFromSeq} to ${notice.droppedToSeq}) ` +
    "because Valkey was unreachable and the log queue was full"
  );
}

export function statusText(result: BuildResult): string {
  const took = formatDuration(result.durationMs);
  if (result.status === "succeeded") {
    return `Build succeeded in ${took} (exit code 0)`;
  }

  const where = result.signal
    ? ` because the builder got ${result.signal}`
    : result.failedStep
      ? ` at step ${result.failedStep}`
      : "";
  return `Build failed${where} after ${took} (exit code ${result.exitCode})`;
}

/** The stream names a line can carry; `system` lines are the builder's. */
export const OUTPUT_STREAMS = [
  "stdout",
  "stderr",
] as const satisfies readonly LogStream[];
