/**
 * One structured viewer in k6: a WebSocket speaking Socket.IO through
 * load-tests/socketio-framing.ts, following a channel the way
 * client/log-follower.ts does (subscribe with `since`, resume after a
 * dropped connection) and checking every seq with a DeliveryTracker.
 *
 * Latency is recorded for lines written after the viewer subscribed (an
 * older line, replayed from history, measures history, not delivery), and
 * for one line in `latencyEvery`, so that thousands of viewers of a busy
 * build do not swamp k6 with samples.
 */
import { WebSocket } from "k6/websockets";
import { clearTimeout, setTimeout } from "k6/timers";
import type { LogsEvent, SubscribeAck } from "../../shared/viewer-protocol.ts";
import { DeliveryTracker, type DeliveryCounts } from "../delivery-tracker.ts";
import {
  SocketIoSession,
  eventArgs,
  websocketUrl,
} from "../socketio-framing.ts";
import {
  buildsUnfinished,
  deliveryLatency,
  gapNotices,
  linesDelivered,
  linesDuplicated,
  linesLost,
  subscribeRefused,
  subscribeTime,
  viewerReconnects,
} from "./viewer-metrics.ts";

export interface FollowOptions {
  relayUrl: string;
  /** `logs:<slug>`. */
  channel: string;
  /** The build to follow; the slug's latest when absent. */
  buildId?: string;
  token: string;
  /** Give up after this long, status or not. */
  maxDurationMs: number;
  /** End when the followed build's status arrives. Default true. */
  untilStatus?: boolean;
  /** Record the latency of one line in this many. Default 1. */
  latencyEvery?: number;
  /** Resumes allowed after a dropped connection. Default 10. */
  maxReconnects?: number;
}

export interface FollowResult {
  counts: DeliveryCounts;
  /** The followed build's status arrived. */
  finished: boolean;
  reconnects: number;
}

/** socket.io-client's first reconnection delay. */
const RECONNECT_DELAY_MS = 1000;

/**
 * Follows a channel until the build's status, `maxDurationMs`, or a
 * refusal; adds to the viewer metrics; resolves with what it saw.
 */
export function followChannel(options: FollowOptions): Promise<FollowResult> {
  const tracker = new DeliveryTracker();
  const latencyEvery = Math.max(1, options.latencyEvery ?? 1);
  const maxReconnects = options.maxReconnects ?? 10;
  let followed = options.buildId;
  let statusSeq: number | undefined;
  let subscribedAtMs = 0;
  let sampled = 0;
  let reconnects = 0;
  let socket: WebSocket | undefined;
  let done = false;

  return new Promise((resolve) => {
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      socket?.close();

      const ends: Record<string, number> = {};
      if (followed !== undefined && statusSeq !== undefined) {
        ends[followed] = statusSeq;
      }
      const counts = tracker.settle(ends);
      linesLost.add(counts.lost);
      linesDuplicated.add(counts.duplicates);
      gapNotices.add(counts.gapNotices);
      const finished = statusSeq !== undefined;
      if (!finished && options.untilStatus !== false) buildsUnfinished.add(1);
      resolve({ counts, finished, reconnects });
    };
    const deadline = setTimeout(finish, options.maxDurationMs);

    const onLogs = (event: LogsEvent): void => {
      const now = Date.now();
      let fresh = 0;
      for (const message of event.messages) {
        if (message.type === "gap") {
          tracker.gap(message.buildId, message.toSeq);
          continue;
        }
        if (followed === undefined) followed = message.buildId;
        const isStatus = message.type === "status";
        if (
          tracker.seq(message.buildId, message.seq, isStatus) === "duplicate"
        ) {
          continue;
        }
        fresh += 1;
        if (message.ts >= subscribedAtMs && ++sampled % latencyEvery === 0) {
          deliveryLatency.add(now - message.ts);
        }
        if (isStatus && message.buildId === followed) statusSeq = message.seq;
      }
      linesDelivered.add(fresh);
      if (statusSeq !== undefined && options.untilStatus !== false) finish();
    };

    const subscribe = (session: SocketIoSession): void => {
      const resume = tracker.resumePoint();
      const request = {
        channel: options.channel,
        since: resume?.lastSeq ?? 0,
        buildId: resume?.buildId ?? followed,
        token: options.token,
      };
      const sentAtMs = Date.now();
      session.emitWithAck("subscribe", [request], ([ack]) => {
        const answer = ack as SubscribeAck;
        subscribeTime.add(Date.now() - sentAtMs);
        if (!answer.ok) {
          subscribeRefused.add(1, { code: answer.error.code });
          finish();
          return;
        }
        if (subscribedAtMs === 0) subscribedAtMs = sentAtMs;
      });
    };

    const connect = (): void => {
      const ws = new WebSocket(websocketUrl(options.relayUrl));
      socket = ws;
      const session = new SocketIoSession(
        {
          send: (frame) => ws.send(frame),
          connected: () => subscribe(session),
          event: (name, args) => {
            if (name === "logs") onLogs(eventArgs(args)[0] as LogsEvent);
          },
        },
        { auth: { token: options.token } },
      );

      ws.onmessage = (event) => {
        if (typeof event?.data === "string") session.receive(event.data);
      };
      ws.onclose = () => {
        session.close("transport closed");
        if (done) return;
        if (subscribedAtMs === 0 || reconnects >= maxReconnects) {
          finish();
          return;
        }
        reconnects += 1;
        viewerReconnects.add(1);
        setTimeout(connect, RECONNECT_DELAY_MS * (0.5 + Math.random()));
      };
      ws.onerror = () => {
        // onclose follows and decides.
      };
    };

    connect();
  });
}
