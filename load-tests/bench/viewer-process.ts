/**
 * A benchmark viewer process: forked by viewer-fleet.ts, it holds many
 * light viewers and answers the fleet's requests (fleet-messages.ts) over
 * IPC. Viewers run in their own processes so that their CPU is not the
 * relays', and so that the sockets of one run spread over several event
 * loops.
 */
import type { DeliveryCounts, DeliveryTracker } from "../delivery-tracker.ts";
import type {
  ConnectAnswer,
  ExpectedEnds,
  FleetAnswer,
  FleetRequest,
  ProgressAnswer,
  ReportAnswer,
} from "./fleet-messages.ts";
import { LatencyHistogram } from "./latency-histogram.ts";
import {
  LightViewer,
  type FleetCounters,
  type LightViewerOptions,
} from "./light-viewer.ts";

const MAX_REASONS = 5;

const latency = new LatencyHistogram();
const counters: FleetCounters = {
  frames: 0,
  bytes: 0,
  parsedFrames: 0,
  lastFrameMs: 0,
  reconnects: 0,
};
const viewers: LightViewer[] = [];
let disconnected = 0;

function answer(message: FleetAnswer): void {
  process.send?.(message);
}

/**
 * Opens the viewers, `concurrency` at a time, and answers once each is
 * subscribed or has failed.
 */
function connect(options: LightViewerOptions[], concurrency: number): void {
  const readyLatency = new LatencyHistogram();
  const reasons: string[] = [];
  const firstStartMs = Date.now();
  let lastReadyMs = firstStartMs;
  let next = 0;
  let settled = 0;
  let ready = 0;

  const finishOne = (): void => {
    settled += 1;
    if (next < options.length) open(options[next++]!);
    if (settled < options.length) return;

    const result: ConnectAnswer = {
      type: "connect",
      ready,
      failed: options.length - ready,
      reasons,
      readyLatency: readyLatency.toData(),
      firstStartMs,
      lastReadyMs,
    };
    answer(result);
  };

  const open = (viewerOptions: LightViewerOptions): void => {
    let settledThis = false;
    const viewer = new LightViewer(viewerOptions, latency, counters, {
      ready: (v) => {
        settledThis = true;
        ready += 1;
        lastReadyMs = Date.now();
        readyLatency.record(lastReadyMs - v.startedAtMs);
        finishOne();
      },
      failed: (_v, reason) => {
        if (reasons.length < MAX_REASONS) reasons.push(reason);
        if (settledThis) {
          disconnected += 1;
          return;
        }
        settledThis = true;
        finishOne();
      },
    });
    viewers.push(viewer);
  };

  if (options.length === 0) {
    answer({ ...emptyConnect(), firstStartMs, lastReadyMs });
    return;
  }
  while (next < options.length && next < concurrency) open(options[next++]!);
}

function emptyConnect(): ConnectAnswer {
  return {
    type: "connect",
    ready: 0,
    failed: 0,
    reasons: [],
    readyLatency: [],
    firstStartMs: 0,
    lastReadyMs: 0,
  };
}

function progress(expected: ExpectedEnds): ProgressAnswer {
  let complete = 0;
  let open = 0;
  let delivered = 0;

  for (const viewer of viewers) {
    if (!viewer.ready) continue;
    open += 1;
    delivered += viewer.tracker.snapshot().delivered;
    const end = expected[viewer.options.channel];
    if (end && viewer.tracker.lastSeq(end.buildId) >= end.lastSeq) {
      complete += 1;
    }
  }
  return {
    type: "progress",
    complete,
    open,
    delivered,
    lastFrameMs: counters.lastFrameMs,
  };
}

function report(expected: ExpectedEnds): ReportAnswer {
  const total: DeliveryCounts = {
    delivered: 0,
    lost: 0,
    undelivered: 0,
    duplicates: 0,
    gapNotices: 0,
    finishedBuilds: 0,
  };

  for (const viewer of viewers) {
    const end = expected[viewer.options.channel];
    const counts = settle(viewer.tracker, end, viewer.missedForGood);
    for (const key of Object.keys(total) as Array<keyof DeliveryCounts>) {
      total[key] += counts[key];
    }
  }
  return {
    type: "report",
    counts: total,
    viewers: viewers.length,
    disconnected,
    frames: counters.frames,
    bytes: counters.bytes,
    parsedFrames: counters.parsedFrames,
    reconnects: counters.reconnects,
    latency: latency.toData(),
    lastFrameMs: counters.lastFrameMs,
  };
}

function settle(
  tracker: DeliveryTracker,
  end: ExpectedEnds[string] | undefined,
  shortfallIsLost: boolean,
): DeliveryCounts {
  const ends = end ? { [end.buildId]: end.lastSeq } : {};
  return tracker.settle(ends, shortfallIsLost);
}

process.on("message", (request: FleetRequest) => {
  switch (request.type) {
    case "connect":
      connect(request.viewers, request.concurrency);
      break;
    case "progress":
      answer(progress(request.expected));
      break;
    case "report":
      answer(report(request.expected));
      break;
    case "close":
      for (const viewer of viewers) viewer.close();
      answer({ type: "close" });
      process.disconnect();
      break;
  }
});

// The fleet going away (killed, crashed) ends this process too.
process.on("disconnect", () => {
  for (const viewer of viewers) viewer.close();
  process.exit(0);
});
