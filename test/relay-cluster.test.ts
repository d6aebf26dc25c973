/**
 * Three relay processes on one Valkey: every viewer on every node gets each
 * line once, and exactly one node holds the channel's SUBSCRIBE.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalValkey } from "../shared/local-valkey.ts";
import { numsub, ownerOf } from "./support/cluster-probe.ts";
import { startRelay, type RelayHandle } from "./support/relay-process.ts";
import { connectStringViewer, type StringViewer } from "./support/viewer.ts";
import { waitFor } from "./support/wait-for.ts";

let valkey: LocalValkey;
let client: Redis;

beforeAll(async () => {
  valkey = await LocalValkey.start();
  client = new Redis(valkey.url);
});

afterAll(async () => {
  client.disconnect();
  await valkey.stop();
});

async function startCluster(size: number): Promise<RelayHandle[]> {
  return Promise.all(
    Array.from({ length: size }, (_, i) =>
      startRelay(valkey.url, { RELAY_NODE_ID: `node-${i}` }),
    ),
  );
}

function payload(i: number, buildId = "b1"): string {
  return JSON.stringify({ type: "line", log: `line ${i}`, buildId, seq: i, ts: Date.now(), stream: "stdout" });
}

async function subscribeAll(viewers: StringViewer[], channel: string): Promise<void> {
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
    await waitFor(() => numsub(client, channel), (n) => n === 1, { what: "NUMSUB 1" });

    const expected: string[] = [];
    let maxSubscribers = 0;
    for (let batch = 0; batch < 10; batch++) {
      const pipeline = client.pipeline();
      for (let i = 1; i <= 1000; i++) {
        const line = payload(batch * 1000 + i);
        expected.push(line);
        pipeline.publish(channel, line);
      }
      const results = await pipeline.exec();
      // PUBLISH answers how many subscribers got the message.
      for (const [, received] of results ?? []) {
        maxSubscribers = Math.max(maxSubscribers, Number(received));
      }
    }

    await Promise.all(viewers.map((v) => v.waitForMessages(10_001, 60_000)));
    for (const viewer of viewers) {
      expect(viewer.messages.slice(1)).toEqual(expected);
    }
    expect(maxSubscribers).toBe(1);
  });

  it("releases the subscription when the last viewer leaves a non-owner", async () => {
    const [a, b] = await startCluster(2);
    const channel = "logs:release";
    const onA = connectStringViewer(a!.url);
    await subscribeAll([onA], channel);
    await waitFor(() => ownerOf(client, "release"), (o) => o === "node-0");

    const onB = connectStringViewer(b!.url);
    await subscribeAll([onB], channel);
    onA.socket.close();
    await client.publish(channel, payload(1));
    await onB.waitForMessages(2);
    expect(await ownerOf(client, "release")).toBe("node-0");

    const leftAt = Date.now();
    onB.socket.close();
    await waitFor(() => numsub(client, channel), (n) => n === 0, { timeoutMs: 10_000 });
    expect(Date.now() - leftAt).toBeLessThan(10_000);
  });

  it("moves ownership to a survivor within 5 s after the owner is killed", async () => {
    const relays = await startCluster(3);
    const channel = "logs:failover";
    const viewers = relays.map((relay) => connectStringViewer(relay.url));
    await subscribeAll(viewers, channel);
    const owner = await waitFor(() => ownerOf(client, "failover"), (o) => o !== null);
    const victim = relays.find((r) => r.nodeId === owner)!;

    const killedAt = Date.now();
    await victim.process.stop("SIGKILL");
    const next = await waitFor(
      () => ownerOf(client, "failover"),
      (o) => o !== null && o !== owner,
      { timeoutMs: 8000, everyMs: 20 },
    );
    expect(Date.now() - killedAt).toBeLessThan(5000);
    await waitFor(() => numsub(client, channel), (n) => n === 1);

    // A line of a build the nodes have not seen: seq 1, so no gap to fill.
    const line = payload(1, "b-failover");
    await client.publish(channel, line);
    const survivors = viewers.filter((_, i) => relays[i] !== victim);
    await Promise.all(survivors.map((v) => v.waitForMessages(2)));
    for (const viewer of survivors) expect(viewer.messages[1]).toBe(line);
    expect(next).not.toBe(owner);
  });
});
