/**
 * The benchmark viewers' fast reader of log frames: it must see exactly
 * what a JSON parse of the same frame sees, for frames built the way the
 * builder and the relay build them, and give up (so the viewer parses)
 * on anything else.
 */
import { describe, expect, it } from "vitest";
import { lineMessage } from "../builder/build-messages.ts";
import { createLineSource } from "../examples/log-generator/log-lines.mjs";
import {
  LogFrameScanner,
  type MessageVisitor,
} from "../load-tests/bench/log-frame-scanner.ts";
import { encodeEvent } from "../load-tests/socketio-framing.ts";
import type { BuildId } from "../shared/wire.ts";

const BUILD = "b-7f3a" as BuildId;

/** Payloads as the builder publishes them, with generated text. */
function payloads(count: number, texts: string[] = []): string[] {
  const source = createLineSource({ seed: 3, longLineEvery: 5 });
  const lines = Array.from({ length: count }, (_, i) =>
    JSON.stringify(
      lineMessage({
        log: texts[i] ?? source.next().text,
        buildId: BUILD,
        seq: i + 1,
        ts: 1_700_000_000_000 + i,
        stream: "stdout",
      }),
    ),
  );
  const status = JSON.stringify({
    type: "status",
    log: "Build succeeded",
    buildId: BUILD,
    seq: count + 1,
    ts: 1_700_000_000_999,
    stream: "system",
    status: "succeeded",
    exitCode: 0,
    durationMs: 12,
    metrics: { linesQueued: count },
  });
  return [...lines, status];
}

function scan(
  frame: string,
  start: number,
  escaped: boolean,
  scanner = new LogFrameScanner(),
) {
  const seen: Array<[string, number, number, boolean]> = [];
  const visit: MessageVisitor = (id, seq, ts, status) => {
    seen.push([id, seq, ts, status]);
  };
  const known = scanner.scan(
    Buffer.from(frame).toString("latin1"),
    start,
    escaped,
    visit,
  );
  return { known, seen };
}

function expected(messages: string[]) {
  return messages.map((p) => {
    const m = JSON.parse(p) as {
      buildId: string;
      seq: number;
      ts: number;
      type: string;
    };
    return [m.buildId, m.seq, m.ts, m.type === "status"];
  });
}

// Text that looks like the fields it searches for, and non-ASCII text.
const TRICKY = [
  '{"type":"line","buildId":"fake","seq":999,"ts":1}',
  'a ,"buildId":"x","seq":5,"ts":6 and \\"seq\\":7',
  "caf\u00e9 \u2713 \u{1f680} \u001b[32mok\u001b[0m",
];

describe("log frame scanner", () => {
  it("reads a logs batch exactly as JSON.parse does", () => {
    const messages = payloads(50, TRICKY);
    const frame = `42["logs",{"channel":"logs:a","messages":[${messages.join(",")}]}]`;

    const { known, seen } = scan(frame, 10, false);
    expect(known).toBe(true);
    expect(seen).toEqual(expected(messages));
  });

  it("reads a string-form message frame, one escaping level deeper", () => {
    for (const payload of payloads(10, TRICKY)) {
      const frame = encodeEvent("message", [payload]);
      const { known, seen } = scan(frame, 14, true);
      expect(known).toBe(true);
      expect(seen).toEqual(expected([payload]));
    }
  });

  it("reads each message's own build id when ids change, one scanner for many frames", () => {
    const scanner = new LogFrameScanner();
    // Ids that share a start with the one read before: the scanner's
    // remembered id must not be taken for a longer or shorter one.
    const ids = ["b-7f3a", "b-7f3ab", "b-7f3", "b-7f3", "", "b-7f3a"];
    const messages = ids.map((buildId, i) =>
      JSON.stringify(
        lineMessage({
          log: `line ${i}`,
          buildId: buildId as BuildId,
          seq: i + 1,
          ts: 1_700_000_000_000 + i,
          stream: "stdout",
        }),
      ),
    );
    const batch = `42["logs",{"channel":"logs:a","messages":[${messages.join(",")}]}]`;

    for (let round = 0; round < 2; round++) {
      const { known, seen } = scan(batch, 10, false, scanner);
      expect(known).toBe(true);
      expect(seen.map(([id]) => id)).toEqual(ids);
      expect(seen).toEqual(expected(messages));
    }
    for (const message of messages) {
      const frame = encodeEvent("message", [message]);
      expect(scan(frame, 14, true, scanner).seen).toEqual(expected([message]));
    }
  });

  it("gives up on a gap notice, so the viewer parses the frame", () => {
    const gap = JSON.stringify({
      type: "gap",
      buildId: BUILD,
      fromSeq: 1,
      toSeq: 9,
      stream: "system",
      log: "9 log lines are no longer kept",
    });
    const frame = `42["logs",{"channel":"logs:a","messages":[${gap}]}]`;
    expect(scan(frame, 10, false).known).toBe(false);
  });

  it("gives up on fields in another order", () => {
    const odd = JSON.stringify({
      type: "line",
      seq: 1,
      buildId: BUILD,
      ts: 2,
      log: "x",
    });
    const frame = `42["logs",{"channel":"logs:a","messages":[${odd}]}]`;
    expect(scan(frame, 10, false).known).toBe(false);
  });
});
