/**
 * k6 scenario `storm`: a ramping arrival rate of viewers that connect,
 * authenticate (a token in the connect and in the subscribe) and
 * subscribe, as after a deploy or an outage when every open dashboard
 * comes back at once.
 *
 * The rate ramps from 0 to `PEAK_PER_S` connections a second over
 * `RAMP_S`, holds for `HOLD_S`, and each viewer stays subscribed for
 * `STAY_S` before leaving. Viewers spread over `SLUGS` channels.
 * Thresholds: subscribe acknowledged within `READY_P95_MS` at p95, and
 * no refusal or failed connection.
 */
import type { Options } from "k6/options";
import { Rate, Trend } from "k6/metrics";
import { clearTimeout, setTimeout } from "k6/timers";
import { WebSocket } from "k6/websockets";
import type { SubscribeAck } from "../../shared/viewer-protocol.ts";
import { SocketIoSession, websocketUrl } from "../socketio-framing.ts";
import {
  numberSetting,
  relayUrl,
  slugPrefix,
  viewerToken,
} from "./k6-settings.ts";

const PEAK_PER_S = numberSetting("PEAK_PER_S", 200, 1, 100_000);
const RAMP_S = numberSetting("RAMP_S", 60, 1, 3600);
const HOLD_S = numberSetting("HOLD_S", 60, 0, 3600);
const STAY_S = numberSetting("STAY_S", 30, 0, 3600);
const SLUGS = numberSetting("SLUGS", 100, 1, 100_000);
const TIMEOUT_MS = numberSetting("READY_TIMEOUT_MS", 10_000, 100, 600_000);

/** From opening the WebSocket to the subscribe's acknowledgement. */
const readyTime = new Trend("storm_ready_time", true);
const readyOk = new Rate("storm_ready_ok");

export const options: Options = {
  scenarios: {
    storm: {
      executor: "ramping-arrival-rate",
      startRate: 0,
      timeUnit: "1s",
      preAllocatedVUs: Math.ceil(PEAK_PER_S * (STAY_S + 5)),
      maxVUs: Math.ceil(PEAK_PER_S * (STAY_S + 15)),
      stages: [
        { target: PEAK_PER_S, duration: `${RAMP_S}s` },
        { target: PEAK_PER_S, duration: `${HOLD_S}s` },
        { target: 0, duration: "10s" },
      ],
    },
  },
  thresholds: {
    storm_ready_time: [
      `p(95)<${numberSetting("READY_P95_MS", 1000, 1, 600_000)}`,
    ],
    storm_ready_ok: ["rate==1"],
  },
};

interface StormData {
  /** Chosen once in setup, so every VU names the same slugs. */
  prefix: string;
}

export function setup(): StormData {
  return { prefix: slugPrefix() };
}

export default function (data: StormData): Promise<void> {
  const slug = `${data.prefix}-storm-${Math.floor(Math.random() * SLUGS)}`;
  const token = viewerToken();
  const openedAtMs = Date.now();

  return new Promise((resolve) => {
    const ws = new WebSocket(websocketUrl(relayUrl()));
    let settled = false;

    // Once per viewer: subscribed (then stay a while), refused, or too slow.
    const settle = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(giveUp);
      readyOk.add(ok);
      if (!ok) {
        ws.close();
        return;
      }
      readyTime.add(Date.now() - openedAtMs);
      setTimeout(() => ws.close(), STAY_S * 1000);
    };
    const giveUp = setTimeout(() => settle(false), TIMEOUT_MS);

    const session = new SocketIoSession(
      {
        send: (frame) => ws.send(frame),
        connected: () => {
          const request = { channel: `logs:${slug}`, token };
          session.emitWithAck("subscribe", [request], ([ack]) => {
            settle((ack as SubscribeAck).ok);
          });
        },
      },
      { auth: { token } },
    );

    ws.onmessage = (event) => {
      if (typeof event?.data === "string") session.receive(event.data);
    };
    ws.onclose = () => {
      settle(false);
      resolve();
    };
    ws.onerror = () => {
      // onclose follows.
    };
  });
}
