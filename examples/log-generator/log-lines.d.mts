/** Types of log-lines.mjs. */

export interface GeneratedLine {
  stream: "stdout" | "stderr";
  /** The text, without a line end; may hold ANSI colour codes. */
  text: string;
}

export interface LineSourceOptions {
  /** Same seed, same lines. Default 1. */
  seed?: number;
  /** Every this many lines one is 2-8 KB long; 0 never. Default 250. */
  longLineEvery?: number;
}

export interface LineSource {
  next(): GeneratedLine;
}

export function createLineSource(options?: LineSourceOptions): LineSource;
