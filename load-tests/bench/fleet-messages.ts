/**
 * The messages between the benchmark and its viewer processes, over the
 * IPC channel of `child_process.fork`. Each request gets exactly one
 * answer of the same `type`.
 */
import type { DeliveryCounts } from "../delivery-tracker.ts";
import type { HistogramData } from "./latency-histogram.ts";
import type { LightViewerOptions } from "./light-viewer.ts";

/** What a channel's viewers should end up with: its build's last seq. */
export type ExpectedEnds = Record<string, { buildId: string; lastSeq: number }>;

export type FleetRequest =
  | {
      type: "connect";
      viewers: LightViewerOptions[];
      /** Connections opened at once; the next starts when one is ready. */
      concurrency: number;
    }
  | { type: "progress"; expected: ExpectedEnds }
  | { type: "report"; expected: ExpectedEnds }
  | { type: "close" };

export interface ConnectAnswer {
  type: "connect";
  ready: number;
  failed: number;
  /** The first few failure reasons, for the log. */
  reasons: string[];
  /** From opening the WebSocket to subscribed, per viewer. */
  readyLatency: HistogramData;
  firstStartMs: number;
  lastReadyMs: number;
}

export interface ProgressAnswer {
  type: "progress";
  /** Viewers holding every seq of their channel's build. */
  complete: number;
  /** Viewers still connected. */
  open: number;
  delivered: number;
  /** When the last log frame arrived, ms since the epoch. */
  lastFrameMs: number;
}

export interface ReportAnswer {
  type: "report";
  counts: DeliveryCounts;
  viewers: number;
  /** Viewers that lost their connection and could not get back. */
  disconnected: number;
  frames: number;
  bytes: number;
  parsedFrames: number;
  /** Connections that ended after subscribing and were opened again. */
  reconnects: number;
  latency: HistogramData;
  lastFrameMs: number;
}

export type FleetAnswer =
  ConnectAnswer | ProgressAnswer | ReportAnswer | { type: "close" };
