/**
 * The k6 metrics every viewer scenario reports, and the thresholds the
 * issue asks for. Names are k6 custom metrics, shown in k6's summary and
 * sent to whatever output k6 is given.
 */
import { Counter, Trend } from "k6/metrics";
import { numberSetting } from "./k6-settings.ts";

/** From a line's `ts` (when the builder read it) to a viewer holding it. */
export const deliveryLatency = new Trend("delivery_latency", true);
/** From sending `subscribe` to its acknowledgement. */
export const subscribeTime = new Trend("subscribe_time", true);

export const linesDelivered = new Counter("lines_delivered");
export const linesLost = new Counter("lines_lost");
export const linesDuplicated = new Counter("lines_duplicated");
export const gapNotices = new Counter("gap_notices");
/** Connections that ended after subscribing and were resumed. */
export const viewerReconnects = new Counter("viewer_reconnects");
export const subscribeRefused = new Counter("subscribe_refused");
/** Viewers that gave up before their build's status arrived. */
export const buildsUnfinished = new Counter("builds_unfinished");

/**
 * p99 latency under `P99_MS` (default 50, the batch window included),
 * and not one line lost, duplicated or left unfinished.
 */
export function viewerThresholds(): Record<string, string[]> {
  const p99Ms = numberSetting("P99_MS", 50, 1, 600_000);
  return {
    delivery_latency: [`p(99)<${p99Ms}`],
    lines_lost: ["count==0"],
    lines_duplicated: ["count==0"],
    builds_unfinished: ["count==0"],
    subscribe_refused: ["count==0"],
  };
}
