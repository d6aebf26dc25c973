/**
 * A relay's /metrics under traffic: counters move by exactly what was
 * published and delivered (N lines to M structured and K string viewers,
 * on one node and across three), the latency histogram observes every
 * line once, refusals are counted by reason, and the page is valid text
 * exposition whose labels are all bounded sets.
 */
import { io } from "socket.io-client";
import { describe, expect, it, onTestFinished } from "vitest";
import { RelayErrorCode } from "../relay/errors.ts";
import type { SubscribeAck } from "../shared/viewer-protocol.ts";
import { numsub, ownerOf, preferredOwner } from "./support/cluster-probe.ts";
import {
  recordFollower,
  seqRange,
  type RecordingFollower,
} from "./support/follower.ts";
import {
  checkWithPromtool,
  fetchMetricsText,
  parsePrometheusText,
  sampleValue,
  scrapeMetrics,
  type Labels,
  type MetricFamily,
} from "./support/prometheus-text.ts";
import { startRelay } from "./support/relay-process.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";
import { lookUpBinary } from "./support/system-binary.ts";
import { connectStringViewer, type StringViewer } from "./support/viewer.ts";
import { waitFor } from "./support/wait-for.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const promtool = lookUpBinary("promtool", "prometheus");

/** Lines per build; the status makes N + 1 messages. */
const N = 500;

const store = useValkey();

type Scrape = Map<string, MetricFamily>;

/**
 * Label names a relay may use: its own (each a small fixed set of values,
 * below) and those of prom-client's default process and Node.js metrics.
 */
const ALLOWED_LABELS = new Set([
  "transport",
  "event",
  "reason",
  "connection",
  "le",
  "quantile",
  "version",
  "major",
  "minor",
  "patch",
  "kind",
  "type",
  "space",
]);

/** Every value the relay's own labels may take. */
const RELAY_LABEL_VALUES: Record<string, ReadonlySet<string>> = {
  transport: new Set(["websocket", "polling"]),
  event: new Set(["message", "logs", "status", "acquired", "lost"]),
  reason: new Set([
    ...Object.values(RelayErrorCode),
    "lease",
    "taken",
    "released",
    "handed-over",
    "expired",
    "shutdown",
  ]),
  connection: new Set(["commands", "subscriber", "adapter"]),
};

/**
 * The rules every relay scrape keeps: names, HELP and TYPE, `_total` on
 * counters, bounded label names and values, and none of `forbidden` (the
 * slugs and build ids in use) anywhere in a label value.
 */
function expectWellFormed(scrape: Scrape, forbidden: string[]): void {
  expect(scrape.size).toBeGreaterThan(0);

  for (const family of scrape.values()) {
    expect(family.name).toMatch(/^relay_[a-z0-9_]+$/);
    expect(family.help, `HELP of ${family.name}`).toBeTruthy();
    expect(family.type, `TYPE of ${family.name}`).toBeDefined();
    if (family.type === "counter") expect(family.name).toMatch(/_total$/);

    for (const sample of family.samples) {
      for (const [name, value] of Object.entries(sample.labels)) {
        expect(ALLOWED_LABELS, `label ${name} of ${sample.name}`).toContain(
          name,
        );
        const allowed = RELAY_LABEL_VALUES[name];
        if (allowed) {
          expect(allowed, `${name}="${value}" on ${sample.name}`).toContain(
            value,
          );
        }
        for (const id of forbidden) {
          expect(value, `${name} of ${sample.name}`).not.toContain(id);
        }
      }
    }
  }
}

function value(scrape: Scrape, name: string, labels: Labels = {}): number {
  return sampleValue(scrape, name, labels) ?? 0;
}

/** How much a series rose between two scrapes of one node. */
function rise(
  before: Scrape,
  after: Scrape,
  name: string,
  labels: Labels = {},
): number {
  return value(after, name, labels) - value(before, name, labels);
}

function uniqueId(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}

function subscribed(viewer: RecordingFollower): Promise<unknown> {
  return new Promise((resolve) => viewer.follower.once("subscribed", resolve));
}

/** A string-form viewer that has its `Joined` line. */
async function joinedViewer(
  url: string,
  slug: string,
  options: Parameters<typeof connectStringViewer>[1] = {},
): Promise<StringViewer> {
  const viewer = connectStringViewer(url, options);
  viewer.socket.emit("subscribe", `logs:${slug}`);
  await viewer.waitForMessages(1);
  expect(viewer.messages[0]).toBe(`Joined logs:${slug}`);
  return viewer;
}

function transportOf(socket: {
  io: { engine: { transport: { name: string } } };
}) {
  return socket.io.engine.transport.name;
}

describe("relay metrics", () => {
  it("counts N lines to M structured and K string viewers exactly", async () => {
    const relay = await startRelay(store.url);
    const slug = uniqueId("metrics");
    const buildId = uniqueId("build");
    const forbidden = [slug, buildId];

    const M = 4;
    const structured = Array.from({ length: M }, () =>
      recordFollower({ url: relay.url, slug }),
    );
    await Promise.all(structured.map(subscribed));
    const strings = [
      await joinedViewer(relay.url, slug),
      await joinedViewer(relay.url, slug, { transports: ["polling"] }),
      await joinedViewer(relay.url, slug, { transports: ["websocket"] }),
    ];
    const K = strings.length;
    await waitFor(
      () => numsub(store.client, `logs:${slug}`),
      (n) => n === 1,
      { what: "the channel's subscription" },
    );
    // Viewers with socket.io-client's defaults start on polling; the
    // transport gauge is read once they have upgraded.
    await waitFor(
      () => [
        ...structured.map((v) => transportOf(v.follower.socket)),
        transportOf(strings[0]!.socket),
      ],
      (names) => names.every((name) => name === "websocket"),
      { what: "default viewers upgraded to WebSocket" },
    );

    const before = await scrapeMetrics(relay.url);
    expectWellFormed(before, forbidden);

    const build = syntheticBuild(store.url, slug, buildId);
    build.lines(N);
    await build.finish();
    await Promise.all(structured.map((v) => v.finished));
    await Promise.all(strings.map((v) => v.waitForMessages(1 + N + 1)));

    const after = await scrapeMetrics(relay.url);
    expectWellFormed(after, forbidden);
    for (const viewer of structured) {
      expect(viewer.seen).toEqual(seqRange(buildId, N + 1));
    }
    for (const viewer of strings) {
      const seqs = viewer.messages.slice(1).map((m) => JSON.parse(m).seq);
      expect(seqs).toEqual(Array.from({ length: N + 1 }, (_, i) => i + 1));
    }

    expect(rise(before, after, "relay_lines_received_total")).toBe(N + 1);
    expect(rise(before, after, "relay_lines_delivered_total")).toBe(
      (N + 1) * (M + K),
    );
    expect(rise(before, after, "relay_delivery_latency_seconds_count")).toBe(
      N + 1,
    );
    expect(
      rise(before, after, "relay_delivery_latency_seconds_bucket", {
        le: "+Inf",
      }),
    ).toBe(N + 1);
    expect(rise(before, after, "relay_replayed_lines_total")).toBe(0);
    // String form: one `message` per payload per node, not per viewer.
    expect(
      rise(before, after, "relay_frames_emitted_total", { event: "message" }),
    ).toBe(N + 1);
    expect(
      rise(before, after, "relay_frames_emitted_total", { event: "status" }),
    ).toBe(1);
    expect(rise(before, after, "relay_malformed_payloads_total")).toBe(0);
    expect(rise(before, after, "relay_subscribe_refusals_total")).toBe(0);

    expect(
      value(after, "relay_connected_clients", { transport: "websocket" }),
    ).toBe(M + 2);
    expect(
      value(after, "relay_connected_clients", { transport: "polling" }),
    ).toBe(1);
    expect(value(after, "relay_channels_owned")).toBe(1);
    expect(value(after, "relay_rooms_with_viewers")).toBe(1);
    for (const connection of ["commands", "subscriber", "adapter"]) {
      expect(value(after, "relay_valkey_up", { connection })).toBe(1);
    }

    // A viewer that comes after the build is served from history only.
    const late = recordFollower({ url: relay.url, slug, since: 0 });
    await late.finished;
    expect(late.seen).toEqual(seqRange(buildId, N + 1));
    const afterLate = await scrapeMetrics(relay.url);
    expectWellFormed(afterLate, forbidden);
    expect(rise(after, afterLate, "relay_replayed_lines_total")).toBe(N + 1);
    expect(rise(after, afterLate, "relay_lines_received_total")).toBe(0);
    expect(rise(after, afterLate, "relay_delivery_latency_seconds_count")).toBe(
      0,
    );
    expect(
      rise(after, afterLate, "relay_frames_emitted_total", {
        event: "message",
      }),
    ).toBe(0);
  });

  it("counts refused subscribes by reason code", async () => {
    const relay = await startRelay(store.url, {
      MAX_CHANNELS_PER_SOCKET: "2",
    });
    const before = await scrapeMetrics(relay.url);

    // The dashboard's string form: refusals come as `error` events.
    const stringForm = connectStringViewer(relay.url);
    for (const request of ["not-a-channel", 42]) {
      const seen = stringForm.errors.length;
      stringForm.socket.emit("subscribe", request);
      await waitFor(
        () => stringForm.errors.length,
        (n) => n > seen,
        { what: `refusal of ${JSON.stringify(request)}` },
      );
    }

    // The structured form: refusals come in the acknowledgement.
    const socket = io(relay.url, { forceNew: true });
    onTestFinished(() => {
      socket.close();
    });
    const ask = (request: unknown) =>
      socket
        .timeout(5000)
        .emitWithAck("subscribe", request) as Promise<SubscribeAck>;
    const codes: string[] = [];
    for (const request of [
      { channel: "logs:Not-A-Slug" },
      { channel: "logs:refusals-a", buildId: "not a build id" },
      { channel: "logs:refusals-a", since: -1 },
      { channel: "logs:refusals-a", since: 1.5 },
      { channel: "logs:refusals-a" },
      { channel: "logs:refusals-b" },
      { channel: "logs:refusals-c" },
    ]) {
      const ack = await ask(request);
      codes.push(ack.ok ? "ok" : ack.error.code);
    }
    expect(stringForm.errors.map((e) => e.code)).toEqual([
      RelayErrorCode.BAD_CHANNEL,
      RelayErrorCode.BAD_REQUEST,
    ]);
    expect(codes).toEqual([
      RelayErrorCode.BAD_CHANNEL,
      RelayErrorCode.BAD_REQUEST,
      RelayErrorCode.BAD_SINCE,
      RelayErrorCode.BAD_SINCE,
      "ok",
      "ok",
      RelayErrorCode.TOO_MANY_CHANNELS,
    ]);

    const after = await scrapeMetrics(relay.url);
    expectWellFormed(after, ["refusals-a", "refusals-b", "refusals-c"]);
    const refused = (reason: string) =>
      rise(before, after, "relay_subscribe_refusals_total", { reason });
    expect(refused(RelayErrorCode.BAD_CHANNEL)).toBe(2);
    expect(refused(RelayErrorCode.BAD_REQUEST)).toBe(2);
    expect(refused(RelayErrorCode.BAD_SINCE)).toBe(2);
    expect(refused(RelayErrorCode.TOO_MANY_CHANNELS)).toBe(1);
    expect(refused(RelayErrorCode.UNAVAILABLE)).toBe(0);
    const reasons = after
      .get("relay_subscribe_refusals_total")!
      .samples.map((s) => s.labels.reason);
    expect(new Set(reasons)).toEqual(
      new Set([
        RelayErrorCode.BAD_CHANNEL,
        RelayErrorCode.BAD_REQUEST,
        RelayErrorCode.BAD_SINCE,
        RelayErrorCode.TOO_MANY_CHANNELS,
      ]),
    );
  });

  it("counts ended connections by Socket.IO's reason", async () => {
    const relay = await startRelay(store.url);
    const count = async (reason: string) =>
      sampleValue(await scrapeMetrics(relay.url), "relay_disconnects_total", {
        reason,
      }) ?? 0;

    const leaving = io(relay.url, { forceNew: true });
    const closing = io(relay.url, {
      forceNew: true,
      transports: ["websocket"],
    });
    onTestFinished(() => {
      leaving.close();
      closing.close();
    });
    await Promise.all(
      [leaving, closing].map(
        (socket) =>
          new Promise<void>((resolve) =>
            socket.once("connect", () => resolve()),
          ),
      ),
    );

    // One leaves the namespace; the other's transport just closes.
    leaving.disconnect();
    closing.io.engine.close();
    await waitFor(
      async () => [
        await count("client namespace disconnect"),
        await count("transport close"),
      ],
      ([left, closed]) => left === 1 && closed === 1,
      { what: "one disconnect of each reason" },
    );
  });

  it("adds up across three nodes, with lines received only on the owner", async () => {
    const suffix = Math.random().toString(36).slice(2, 8);
    const relays = await Promise.all(
      [0, 1, 2].map((i) =>
        startRelay(store.url, { RELAY_NODE_ID: `metrics-${suffix}-${i}` }),
      ),
    );
    const slug = uniqueId("cluster-metrics");
    const buildId = uniqueId("build");
    const channel = `logs:${slug}`;

    // Two structured viewers and one string viewer on every node.
    const structured = relays.map((relay) => [
      recordFollower({ url: relay.url, slug }),
      recordFollower({ url: relay.url, slug }),
    ]);
    await Promise.all(structured.flat().map(subscribed));
    const strings = await Promise.all(
      relays.map((relay) => joinedViewer(relay.url, slug)),
    );
    const viewersOn = (i: number) => structured[i]!.length + 1;

    const owner = preferredOwner(
      slug,
      relays.map((r) => r.nodeId),
    );
    await waitFor(
      () => ownerOf(store.client, slug),
      (o) => o === owner,
      { what: "ownership settled on the preferred node" },
    );
    await waitFor(
      async () => {
        const shard = (await store.client.pubsub(
          "SHARDNUMSUB",
          `socket.io#/#${channel}#`,
        )) as [string, number];
        return [await numsub(store.client, channel), Number(shard[1])];
      },
      ([owners, listeners]) => owners === 1 && listeners === 3,
      { what: "one owner and three listening nodes" },
    );

    const scrapeAll = () =>
      Promise.all(relays.map((r) => scrapeMetrics(r.url)));
    const before = await scrapeAll();

    const build = syntheticBuild(store.url, slug, buildId);
    build.lines(N);
    await build.finish();
    await Promise.all(structured.flat().map((v) => v.finished));
    await Promise.all(strings.map((v) => v.waitForMessages(1 + N + 1)));

    const after = await scrapeAll();
    expect(await ownerOf(store.client, slug)).toBe(owner);
    for (const viewer of structured.flat()) {
      expect(viewer.seen).toEqual(seqRange(buildId, N + 1));
    }

    const perNode = (name: string, labels: Labels = {}) =>
      relays.map((_, i) => rise(before[i]!, after[i]!, name, labels));
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    const isOwner = relays.map((r) => r.nodeId === owner);

    for (const [i, scrape] of after.entries()) {
      expectWellFormed(scrape, [slug, buildId]);
      // Ownership did not move while the build ran.
      expect(
        rise(before[i]!, scrape, "relay_ownership_events_total", {
          event: "acquired",
          reason: "lease",
        }),
      ).toBe(0);
      expect(value(scrape, "relay_channels_owned")).toBe(isOwner[i] ? 1 : 0);
      expect(value(scrape, "relay_rooms_with_viewers")).toBe(1);
    }

    const received = perNode("relay_lines_received_total");
    expect(received).toEqual(isOwner.map((o) => (o ? N + 1 : 0)));
    expect(sum(received)).toBe(N + 1);

    const delivered = perNode("relay_lines_delivered_total");
    expect(delivered).toEqual(relays.map((_, i) => (N + 1) * viewersOn(i)));
    expect(sum(delivered)).toBe(
      (N + 1) * (structured.flat().length + strings.length),
    );

    const observed = perNode("relay_delivery_latency_seconds_count");
    expect(sum(observed)).toBe(N + 1);
    expect(perNode("relay_frames_emitted_total", { event: "message" })).toEqual(
      [N + 1, N + 1, N + 1],
    );
    expect(sum(perNode("relay_replayed_lines_total"))).toBe(0);
  });

  it.skipIf(promtool.skip)(
    "serves a page that Prometheus's own parser and linter accept",
    async () => {
      const relay = await startRelay(store.url);
      const slug = uniqueId("promtool");
      const viewer = await joinedViewer(relay.url, slug);
      viewer.socket.emit("subscribe", "not-a-channel");
      await viewer.waitForError();
      const build = syntheticBuild(store.url, slug, uniqueId("build"));
      build.lines(10);
      await build.finish();
      await viewer.waitForMessages(1 + 11);

      const { text, contentType } = await fetchMetricsText(relay.url);
      expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(parsePrometheusText(text).size).toBeGreaterThan(0);

      // prom-client's default metrics name three gauges `*_total`, which
      // the linter flags; the relay's own metrics must pass clean.
      const { problems } = checkWithPromtool(promtool.path(), text);
      const ownProblems = problems.filter(
        (line) => !/^relay_(nodejs|process)_/.test(line),
      );
      expect(ownProblems).toEqual([]);
    },
  );
});
