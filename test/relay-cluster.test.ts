/**
 * Three relay processes on one Valkey: every viewer on every node gets each
 * line once, and exactly one node holds the channel's SUBSCRIBE.
 */
import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import {
  numsub,
  ownerOf,
  preferredOwner,
  sampleSubscribers,
} from "./support/cluster-probe.ts";
import { startRelay, type RelayHandle } from "./support/relay-process.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";
import { connectStringViewer, type StringViewer } from "./support/viewer.ts";
import { waitFor } from "./support/wait-for.ts";
import { LocalValkey } from "../shared/local-valkey.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const store = useValkey();

async function startCluster(
  size: number,
  env: Record<string, string> = {},
): Promise<RelayHandle[]> {
  return Promise.all(
    Array.from({ length: size }, (_, i) =>
      startRelay(store.url, { RELAY_NODE_ID: `node-${i}`, ...env }),
    ),
  );
}

function payload(i: number, buildId = "b1"): string {
  return JSON.stringify({
    type: "line",
    log: `line ${i}`,
    buildId,
    seq: i,
    ts: Date.now(),
    stream: "stdout",
  });
}

async function subscribeAll(
  viewers: StringViewer[],
  channel: string,
): Promise<void> {
  for (const viewer of viewers) viewer.socket.emit("subscribe", channel);
  await Promise.all(viewers.map((v) => v.waitForMessages(1)));
}

describe("relay cluster", () => {
  it("delivers 10,000 lines to viewers on three nodes exactly once, in order", async () => {
    const relays = await startCluster(3);
    const channel = "logs:fanout";
    const viewers = relays.flatMap((relay) => [
      connectStringViewer(relay.url),
      connectStringViewer(relay.url, { transports: ["polling"] }),
      connectStringViewer(relay.url, { transports: ["websocket"] }),
    ]);
    await subscribeAll(viewers, channel);
    const preferred = preferredOwner(
      "fanout",
      relays.map((r) => r.nodeId),
    );
    await waitFor(
      () => ownerOf(store.client, "fanout"),
      (o) => o === preferred,
      {
        what: "ownership settled on the preferred node",
      },
    );
    await waitFor(
      () => numsub(store.client, channel),
      (n) => n === 1,
      { what: "NUMSUB 1" },
    );

    // Sample the subscriber count all through the run.
    const sampler = sampleSubscribers(store.client, channel);
    const samples = sampler.samples;

    const build = syntheticBuild(store.url, "fanout", "b-fanout");
    for (let chunk = 0; chunk < 10; chunk++) {
      build.lines(1000);
      await build.flush();
      // At least one sample per chunk, however busy the event loop is.
      samples.push(await numsub(store.client, channel));
    }
    await build.finish();

    await Promise.all(viewers.map((v) => v.waitForMessages(10_002, 60_000)));
    await sampler.stop();

    const expected = Array.from({ length: 10_001 }, (_, i) => i + 1);
    for (const viewer of viewers) {
      expect(viewer.messages.slice(1).map((m) => JSON.parse(m).seq)).toEqual(
        expected,
      );
    }
    expect(samples.length).toBeGreaterThanOrEqual(10);
    expect(new Set(samples)).toEqual(new Set([1]));
  });

  it("releases the subscription when the last viewer leaves a non-owner", async () => {
    const relays = await startCluster(2);
    const channel = "logs:release";
    const viewers = relays.map((relay) => connectStringViewer(relay.url));
    await subscribeAll(viewers, channel);
    const owner = await waitFor(
      () => ownerOf(store.client, "release"),
      (o) => o !== null,
    );

    // The owner's viewer leaves first; the other node's viewer still gets lines.
    const ownerIndex = relays.findIndex((r) => r.nodeId === owner);
    const remaining = viewers[1 - ownerIndex]!;
    viewers[ownerIndex]!.socket.close();
    // Published through history, as the builder does, so a hand-over of
    // the channel at this moment loses nothing.
    const build = syntheticBuild(store.url, "release", "b-release");
    build.lines(3);
    await build.flush();
    await remaining.waitForMessages(4);
    expect(remaining.messages.slice(1).map((m) => JSON.parse(m).seq)).toEqual([
      1, 2, 3,
    ]);

    const leftAt = Date.now();
    remaining.socket.close();
    await waitFor(
      () => numsub(store.client, channel),
      (n) => n === 0,
      { timeoutMs: 10_000 },
    );
    expect(Date.now() - leftAt).toBeLessThan(10_000);
    expect(await ownerOf(store.client, "release")).toBeNull();
  });

  it("moves ownership to a survivor within 5 s after the owner is killed", async () => {
    const relays = await startCluster(3);
    const channel = "logs:failover";
    const viewers = relays.map((relay) => connectStringViewer(relay.url));
    await subscribeAll(viewers, channel);
    const owner = await waitFor(
      () => ownerOf(store.client, "failover"),
      (o) => o !== null,
    );
    const victim = relays.find((r) => r.nodeId === owner)!;

    const killedAt = Date.now();
    await victim.process.stop("SIGKILL");
    const next = await waitFor(
      () => ownerOf(store.client, "failover"),
      (o) => o !== null && o !== owner,
      { timeoutMs: 8000, everyMs: 20 },
    );
    expect(Date.now() - killedAt).toBeLessThan(5000);
    await waitFor(
      () => numsub(store.client, channel),
      (n) => n === 1,
    );

    const build = syntheticBuild(store.url, "failover", "b-failover");
    build.lines(5);
    await build.flush();
    const survivors = viewers.filter((_, i) => relays[i] !== victim);
    await Promise.all(survivors.map((v) => v.waitForMessages(6)));
    for (const viewer of survivors) {
      expect(viewer.messages.slice(1).map((m) => JSON.parse(m).seq)).toEqual([
        1, 2, 3, 4, 5,
      ]);
    }
    expect(next).not.toBe(owner);
  });

  it("spreads the ownership of 1,000 channels over three nodes", async () => {
    const relays = await startCluster(3, { MAX_CHANNELS_PER_SOCKET: "1000" });
    const slugs = Array.from({ length: 1000 }, (_, i) => `spread-${i}`);
    const channels = slugs.map((slug) => `logs:${slug}`);

    // Viewers arrive node by node, the order that would hand every channel
    // to the first node without hand-over.
    for (const relay of relays) {
      const viewer = connectStringViewer(relay.url);
      for (const channel of channels) viewer.socket.emit("subscribe", channel);
      await viewer.waitForMessages(1000);
    }

    const owners = await waitFor(
      async () => {
        const tokens = await store.client.mget(
          ...slugs.map((slug) => `owner:{${slug}}`),
        );
        const counts = new Map<string, number>();
        for (const token of tokens) {
          const node =
            token === null ? "none" : token.slice(0, token.lastIndexOf("/"));
          counts.set(node, (counts.get(node) ?? 0) + 1);
        }
        return Object.fromEntries(counts);
      },
      (counts) =>
        counts.none === undefined &&
        Object.values(counts).every((n) => n <= 500) &&
        Object.keys(counts).length === 3,
      { timeoutMs: 20_000, everyMs: 250, what: "spread ownership" },
    );
    expect(Object.keys(owners).sort()).toEqual(["node-0", "node-1", "node-2"]);

    // A lease is taken a moment before its owner's SUBSCRIBE lands.
    const subscribers = await waitFor(
      async () => {
        const reply = (await store.client.pubsub(
          "NUMSUB",
          ...channels,
        )) as Array<string | number>;
        return reply.filter((_, i) => i % 2 === 1).map(Number);
      },
      (counts) => counts.every((n) => n === 1),
      { what: "one subscriber on every channel" },
    );
    expect(subscribers).toHaveLength(1000);
  });

  it("ends with one subscriber per channel after Valkey is down for 5 s", async () => {
    const store = await LocalValkey.start({ persistent: true });
    onTestFinished(() => store.stop());
    const probe = new Redis(store.url, { retryStrategy: () => 100 });
    probe.on("error", () => {});
    onTestFinished(() => probe.disconnect());

    const relays = await Promise.all(
      [0, 1, 2].map((i) =>
        startRelay(store.url, { RELAY_NODE_ID: `outage-${i}` }),
      ),
    );
    const slugs = ["outage-a", "outage-b", "outage-c", "outage-d"];
    const viewers = relays.map((relay) => connectStringViewer(relay.url));
    for (const viewer of viewers) {
      for (const slug of slugs) viewer.socket.emit("subscribe", `logs:${slug}`);
    }
    await Promise.all(viewers.map((v) => v.waitForMessages(slugs.length)));
    for (const slug of slugs) {
      await waitFor(
        () => numsub(probe, `logs:${slug}`),
        (n) => n === 1,
      );
    }

    await store.pause();
    await waitFor(
      () =>
        Promise.all(
          relays.map((r) => fetch(`${r.url}/readyz`).then((res) => res.status)),
        ),
      (statuses) => statuses.every((s) => s === 503),
      { what: "not ready while Valkey is down" },
    );
    // The outage itself: the scenario is five seconds without Valkey.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    await store.resume();

    await waitFor(
      () =>
        Promise.all(
          relays.map((r) => fetch(`${r.url}/readyz`).then((res) => res.status)),
        ),
      (statuses) => statuses.every((s) => s === 200),
      { what: "ready again" },
    );
    for (const slug of slugs) {
      await waitFor(
        () => numsub(probe, `logs:${slug}`),
        (n) => n === 1,
        {
          what: `one subscriber of ${slug}`,
        },
      );
    }

    const line = payload(1, "after-outage");
    let maxReceivers = 0;
    for (const slug of slugs) {
      maxReceivers = Math.max(
        maxReceivers,
        await probe.publish(`logs:${slug}`, line),
      );
    }
    expect(maxReceivers).toBe(1);
    await Promise.all(viewers.map((v) => v.waitForMessages(2 * slugs.length)));
    for (const viewer of viewers) {
      expect(viewer.messages.filter((m) => m === line)).toHaveLength(
        slugs.length,
      );
    }
    for (const relay of relays) {
      expect(
        relay.process.logs.filter((r) => r.msg === "unhandled rejection"),
      ).toEqual([]);
    }
  });
});
