/**
 * A Valkey connection that dies without a word (a half-open TCP connection
 * after a network cut sends no error for many minutes) is noticed by the
 * heartbeat every relay connection carries, the subscriber's included,
 * within seconds, and handled like any other loss of Valkey: the relay
 * stops being ready, reconnects once the network is back, holds the
 * channel's one subscription again and fills what its viewers missed.
 *
 * The relay reaches Valkey through a BlackholeProxy; the builder and the
 * test's own probe reach Valkey directly, so lines keep being published
 * and counted during the cut.
 */
import { describe, expect, it, onTestFinished } from "vitest";
import type { LogsEvent } from "../shared/viewer-protocol.ts";
import { BlackholeProxy } from "./support/blackhole-proxy.ts";
import { numsub, ownerOf } from "./support/cluster-probe.ts";
import { recordFollower, seqRange } from "./support/follower.ts";
import { sampleValue, scrapeMetrics } from "./support/prometheus-text.ts";
import { startRelay, type RelayHandle } from "./support/relay-process.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";
import { connectStringViewer } from "./support/viewer.ts";
import { waitFor } from "./support/wait-for.ts";
import { useValkey } from "./support/valkey-fixture.ts";

/** What the issue allows between the cut and /readyz answering 503. */
const DETECTION_DEADLINE_MS = 10_000;
const CONNECTIONS = ["commands", "subscriber", "adapter"] as const;

const store = useValkey();

interface Readiness {
  status: number;
  reasons: string[];
}

async function readiness(relay: RelayHandle): Promise<Readiness> {
  const response = await fetch(`${relay.url}/readyz`);
  const body = (await response.json()) as { reasons?: string[] };
  return { status: response.status, reasons: body.reasons ?? [] };
}

async function startBehindProxy(): Promise<{
  proxy: BlackholeProxy;
  relay: RelayHandle;
}> {
  const proxy = await BlackholeProxy.start({ port: store.valkey.port });
  onTestFinished(() => proxy.close());
  const relay = await startRelay(proxy.url);
  return { proxy, relay };
}

/**
 * Cuts the network silently and waits until /readyz names every Valkey
 * connection as not ready; resolves with how long that took.
 */
async function cutAndDetect(
  proxy: BlackholeProxy,
  relay: RelayHandle,
): Promise<number> {
  const cutAt = Date.now();
  proxy.blackhole();

  await waitFor(
    () => readiness(relay),
    ({ status, reasons }) =>
      status === 503 &&
      CONNECTIONS.every((name) => reasons.includes(`valkey ${name} not ready`)),
    {
      timeoutMs: DETECTION_DEADLINE_MS,
      everyMs: 100,
      what: "every Valkey connection seen as lost",
    },
  );
  return Date.now() - cutAt;
}

async function restoreAndRecover(
  proxy: BlackholeProxy,
  relay: RelayHandle,
): Promise<void> {
  proxy.restore();
  await waitFor(
    () => readiness(relay),
    ({ status }) => status === 200,
    { timeoutMs: 30_000, everyMs: 100, what: "ready again after the cut" },
  );
}

describe("half-open Valkey connections", () => {
  it("notices a silent cut within seconds and fills what the viewer missed", async () => {
    const { proxy, relay } = await startBehindProxy();
    const slug = "half-open-lines";
    const buildId = "build-half-open";

    const viewer = recordFollower({ url: relay.url, slug });
    // Every message the relay sent, as sent, to find duplicates the
    // follower would silently drop.
    const sent: string[] = [];
    viewer.follower.socket.on("logs", (event: LogsEvent) => {
      for (const m of event.messages) {
        sent.push(
          m.type === "gap" ? `gap:${m.fromSeq}-${m.toSeq}` : `${m.seq}`,
        );
      }
    });
    let subscriptions = 0;
    viewer.follower.on("subscribed", () => (subscriptions += 1));
    await waitFor(
      () => subscriptions,
      (n) => n === 1,
      { what: "the viewer subscribed" },
    );
    await waitFor(
      () => numsub(store.client, `logs:${slug}`),
      (n) => n === 1,
      { what: "the channel's subscription" },
    );

    const build = syntheticBuild(store.url, slug, buildId);
    build.lines(100);
    await build.flush();
    await waitFor(
      () => viewer.seen.length,
      (n) => n === 100,
      { what: "the first 100 lines" },
    );
    const before = await scrapeMetrics(relay.url);

    const detectedMs = await cutAndDetect(proxy, relay);
    expect(detectedMs).toBeLessThan(DETECTION_DEADLINE_MS);
    expect(proxy.counts().dead).toBeGreaterThanOrEqual(CONNECTIONS.length);

    // Published while the relay cannot hear it; history has it.
    build.lines(100);
    await build.flush();

    await restoreAndRecover(proxy, relay);
    build.lines(100);
    await build.finish();
    await viewer.finished;

    expect(viewer.seen).toEqual(seqRange(buildId, 301));
    expect(sent).toEqual(Array.from({ length: 301 }, (_, i) => `${i + 1}`));
    // The viewer's own connection to the relay was never cut.
    expect(subscriptions).toBe(1);

    const after = await scrapeMetrics(relay.url);
    for (const connection of CONNECTIONS) {
      const reconnects = (scrape: typeof after) =>
        sampleValue(scrape, "relay_valkey_reconnects_total", { connection }) ??
        0;
      expect(
        reconnects(after) - reconnects(before),
        `reconnects of ${connection}`,
      ).toBeGreaterThanOrEqual(1);
      expect(sampleValue(after, "relay_valkey_up", { connection })).toBe(1);
    }
    expect(
      relay.process.logs.filter((r) => r.msg === "unhandled rejection"),
    ).toEqual([]);
  });

  it("leaves exactly one subscriber on the channel after a silent cut", async () => {
    const { proxy, relay } = await startBehindProxy();
    const slug = "half-open-numsub";
    const channel = `logs:${slug}`;

    const viewer = connectStringViewer(relay.url);
    viewer.socket.emit("subscribe", channel);
    await viewer.waitForMessages(1);
    await waitFor(
      () => numsub(store.client, channel),
      (n) => n === 1,
      { what: "the channel's subscription" },
    );

    const cutAt = Date.now();
    await cutAndDetect(proxy, relay);
    await restoreAndRecover(proxy, relay);
    // The lease ran out during the cut; the relay takes the channel again
    // and subscribes on its new subscriber connection.
    await relay.process.waitForLog(
      (r) =>
        r.msg === "channel ownership acquired" && (r.time as number) >= cutAt,
      30_000,
    );
    expect(await ownerOf(store.client, slug)).toBe(relay.nodeId);

    // The old subscriber connection is dead on the relay's side only: to
    // Valkey it is still open and subscribed, as after a real cut, until
    // something closes it.
    const subscriberConnections = async () =>
      ((await store.client.client("LIST")) as string)
        .split("\n")
        .filter((line) => line.includes(` name=${relay.nodeId}:subscriber `));
    await waitFor(
      () => numsub(store.client, channel),
      (n) => n === 1,
      { timeoutMs: 15_000, what: `one subscriber of ${channel}` },
    ).catch(async (err: Error) => {
      const lines = await subscriberConnections();
      throw new Error(
        `${err.message}; the relay's subscriber connections in Valkey:\n${lines.join("\n")}`,
      );
    });

    // And the one subscription is the live one: a line reaches the viewer.
    const line = JSON.stringify({ log: "after the cut" });
    expect(await store.client.publish(channel, line)).toBe(1);
    await viewer.waitForMessages(2);
    expect(viewer.messages).toEqual([`Joined ${channel}`, line]);
  });
});
