/**
 * The relay cluster on a three-shard Valkey Cluster: the sharded adapter
 * over ioredis's sharded subscribers, leases and history keys on their
 * slugs' slots, and still one subscriber per channel.
 */
import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { numsub, preferredOwner } from "./support/cluster-probe.ts";
import { recordFollower, seqRange } from "./support/follower.ts";
import { startRelay } from "./support/relay-process.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";
import { startValkeyCluster } from "./support/valkey-cluster.ts";
import { connectStringViewer } from "./support/viewer.ts";
import { waitFor } from "./support/wait-for.ts";

describe("on Valkey Cluster", () => {
  it("delivers every line once to viewers on three relays", async () => {
    const cluster = await startValkeyCluster();
    const direct = cluster.nodes.map((node) => new Redis(node.url));
    onTestFinished(() => direct.forEach((client) => client.disconnect()));
    const relays = await Promise.all(
      [0, 1, 2].map((i) =>
        startRelay(cluster.url, {
          RELAY_NODE_ID: `shard-node-${i}`,
          VALKEY_CLUSTER: "true",
        }),
      ),
    );
    const slug = "on-cluster";
    const followers = relays.map((relay) =>
      recordFollower({ url: relay.url, slug }),
    );
    const strings = relays.map((relay) => connectStringViewer(relay.url));
    for (const viewer of strings)
      viewer.socket.emit("subscribe", `logs:${slug}`);
    await Promise.all(strings.map((v) => v.waitForMessages(1)));
    await Promise.all(followers.map((f) => f.subscribed));
    // Plain pub/sub subscriptions live on single nodes of a cluster: the
    // channel's subscriber count is the sum over all of them.
    const subscribers = async () =>
      (
        await Promise.all(
          direct.map((client) => numsub(client, `logs:${slug}`)),
        )
      ).reduce((a, b) => a + b, 0);
    const preferred = preferredOwner(
      slug,
      relays.map((r) => r.nodeId),
    );
    // The owner key lives on the shard of its slot: ask cluster-aware.
    const clusterClient = new Redis.Cluster([
      { host: "127.0.0.1", port: cluster.nodes[0]!.port },
    ]);
    onTestFinished(() => clusterClient.disconnect());
    await waitFor(
      () => clusterClient.get(`owner:{${slug}}`),
      (token) => token?.startsWith(`${preferred}/`) ?? false,
      { what: "ownership settled" },
    );
    await waitFor(subscribers, (n) => n === 1, { what: "one subscriber" });
    const build = syntheticBuild(
      cluster.url,
      slug,
      "cluster-build",
      {},
      { cluster: true },
    );
    build.lines(2000);
    await build.finish();
    await Promise.all(followers.map((f) => f.finished));
    for (const follower of followers) {
      expect(follower.seen).toEqual(seqRange("cluster-build", 2001));
    }
    await Promise.all(strings.map((v) => v.waitForMessages(2002)));
    for (const viewer of strings) {
      expect(viewer.messages.slice(1).map((m) => JSON.parse(m).seq)).toEqual(
        Array.from({ length: 2001 }, (_, i) => i + 1),
      );
    }
    expect(await subscribers()).toBe(1);

    // The adapter's room channel is a sharded one: every relay with viewers
    // holds an SSUBSCRIBE on it, on the shard that owns its slot.
    const roomChannel = `socket.io#/#logs:${slug}#`;
    const shardCounts = await Promise.all(
      direct.map(async (client) => {
        const reply = (await client.pubsub("SHARDNUMSUB", roomChannel)) as [
          string,
          number,
        ];
        return Number(reply[1]);
      }),
    );
    expect(shardCounts.reduce((a, b) => a + b, 0)).toBe(3);
  });
});
