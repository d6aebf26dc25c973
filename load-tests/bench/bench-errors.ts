/**
 * The benchmark's failures, each with a stable code. The quick run's test
 * branches on `code`, never on `message`.
 */

export const BenchErrorCode = {
  /** A command-line flag has a value it cannot take. */
  BAD_FLAG: "BENCH_ERR_BAD_FLAG",
  /** A server under test did not start, or died during a run. */
  SERVER_START: "BENCH_ERR_SERVER_START",
  /** A viewer process died or did not answer. */
  VIEWER_PROCESS: "BENCH_ERR_VIEWER_PROCESS",
  /** The publisher process died or could not publish. */
  PUBLISHER: "BENCH_ERR_PUBLISHER",
  /** Viewers could not all connect and subscribe. */
  VIEWERS_NOT_READY: "BENCH_ERR_VIEWERS_NOT_READY",
  /** The system did not get ready to forward a channel in time. */
  NOT_SETTLED: "BENCH_ERR_NOT_SETTLED",
} as const;

export type BenchErrorCode =
  (typeof BenchErrorCode)[keyof typeof BenchErrorCode];

export class BenchError extends Error {
  constructor(
    readonly code: BenchErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "BenchError";
  }
}
