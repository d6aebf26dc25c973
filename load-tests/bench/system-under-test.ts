/**
 * The three systems the benchmark runs side by side, each as N processes
 * on one Valkey:
 *
 * - `ours`: `bin/relay`, Socket.IO on uWebSockets.js with the sharded
 *   adapter; each channel forwarded by one owner node.
 * - `baseline`: load-tests/baseline, Socket.IO on Node's http server with
 *   `ws` and the classic Redis adapter; node 0 forwards every channel.
 * - `floor`: load-tests/floor, bare uWebSockets.js, no Socket.IO, no
 *   adapter; each node subscribes to its viewers' channels itself.
 *
 * Each knows how its lines cross Valkey, which the benchmark uses to count
 * pub/sub messages (see `pubsubMessages`).
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { channelName, type Slug } from "../../shared/channel-name.ts";
import { ownerKey, presenceKey } from "../../shared/valkey-keys.ts";
import { BenchError, BenchErrorCode } from "./bench-errors.ts";
import { metricTotal, scrapeMetrics } from "./relay-scrape.ts";
import { ServerProcess } from "./server-process.ts";
import type { ValkeySample } from "./valkey-stats.ts";
import { meanNumsub, meanShardNumsub } from "./valkey-stats.ts";

export type SystemKind = "ours" | "baseline" | "floor";

export interface SystemOptions {
  kind: SystemKind;
  nodes: number;
  valkeyUrl: string;
  /** Relay settings (`BATCH_WINDOW_MS` ...) passed to our relays. */
  relayEnv?: Record<string, string>;
  /** A folder to keep each server's output in, for looking into a run. */
  logDir?: string;
}

/** What a run measured, for counting the messages Valkey pushed. */
export interface CrossingContext {
  valkey: Redis;
  slugs: readonly string[];
  /** Every message the builds published (lines and statuses). */
  linesPublished: number;
  delta: ValkeySample;
  /** For ours: the relays' own count of lines read as owners. */
  ownerReads: number;
}

export interface PubsubCrossings {
  messages: number;
  /** Mean nodes a channel's traffic reaches, besides its owner's read. */
  nodesReceivingPerChannel: number;
}

const TSX = ["--import", "tsx"];

export class SystemUnderTest {
  private constructor(
    readonly kind: SystemKind,
    readonly servers: ServerProcess[],
  ) {}

  static async start(options: SystemOptions): Promise<SystemUnderTest> {
    const servers = Array.from({ length: options.nodes }, (_, i) =>
      spawnNode(options, i),
    );
    const system = new SystemUnderTest(options.kind, servers);
    try {
      await Promise.all(servers.map((s) => s.ready()));
    } catch (err) {
      await system.stop();
      throw err;
    }
    return system;
  }

  get urls(): string[] {
    return this.servers.map((s) => `http://127.0.0.1:${s.port}`);
  }

  get pids(): number[] {
    return this.servers.map((s) => s.pid);
  }

  /** Throws when a server died; a run with a dead node means nothing. */
  assertRunning(): void {
    const dead = this.servers.find((s) => !s.running);
    if (dead) {
      throw new BenchError(
        BenchErrorCode.SERVER_START,
        `${dead.name} exited during the run; stderr: ${dead.stderr.join("\n")}`,
      );
    }
  }

  /**
   * True once every slug's lines will reach this system's viewers the way
   * they will for the rest of the run. For ours, that is when the channel
   * is owned by the node it prefers: the first node with viewers takes a
   * channel at once, and hands it to the present node with the highest
   * sha1(`<slug>/<node>`) at its next renewal (relay/channel-lease.ts), so
   * measuring earlier would include one hand-over per channel. The others
   * made their subscriptions before telling viewers they joined.
   */
  async settled(valkey: Redis, slugs: readonly string[]): Promise<boolean> {
    if (this.kind !== "ours") return true;

    const owned = await Promise.all(
      slugs.map(async (slug) => {
        const [owner, present] = await Promise.all([
          valkey.get(ownerKey(slug as Slug)),
          valkey.zrange(presenceKey(slug as Slug), 0, -1),
        ]);
        if (owner === null || present.length === 0) return false;
        const ownerNode = owner.slice(0, owner.lastIndexOf("/"));
        return ownerNode === preferredNode(slug, present);
      }),
    );
    if (owned.includes(false)) return false;
    return (await meanNumsub(valkey, slugs.map(logChannel))) >= 1;
  }

  /** Our relays' /metrics, summed over the nodes, for the names asked. */
  async relayTotals(names: readonly string[]): Promise<Record<string, number>> {
    const totals: Record<string, number> = {};
    for (const name of names) totals[name] = 0;
    if (this.kind !== "ours") return totals;

    for (const url of this.urls) {
      const samples = await scrapeMetrics(url);
      for (const name of names) totals[name]! += metricTotal(samples, name);
    }
    return totals;
  }

  /**
   * Pub/sub messages Valkey pushed to this system's nodes during a run:
   * each PUBLISH or SPUBLISH times the subscribers it reached. Valkey 7
   * counts calls per command but not deliveries, so receivers come from
   * subscriber counts sampled after the run (viewers still connected),
   * and for pattern subscriptions (the baseline's) from its known layout.
   */
  async pubsubMessages(context: CrossingContext): Promise<PubsubCrossings> {
    const { valkey, slugs, linesPublished, delta } = context;
    const channels = slugs.map(logChannel);

    switch (this.kind) {
      case "ours": {
        // Lines: one delivery to each channel's owner. Batches: one SPUBLISH
        // to the room's shard channel, pushed to each node with viewers.
        const rooms = channels.map((c) => `socket.io#/#${c}#`);
        const receiving = await meanShardNumsub(valkey, rooms);
        const batches = delta.calls.spublish ?? 0;
        return {
          messages: context.ownerReads + batches * receiving,
          nodesReceivingPerChannel: receiving,
        };
      }
      case "floor": {
        // Every node with viewers of a channel SUBSCRIBEs to it.
        const receiving = await meanNumsub(valkey, channels);
        return {
          messages: linesPublished * receiving,
          nodesReceivingPerChannel: receiving,
        };
      }
      case "baseline": {
        // Node 0's PSUBSCRIBE logs:* gets every line; its re-emits are
        // PUBLISHed to every node's adapter PSUBSCRIBE.
        const emits = (delta.calls.publish ?? 0) - linesPublished;
        return {
          messages: linesPublished + emits * this.servers.length,
          nodesReceivingPerChannel: this.servers.length,
        };
      }
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}

/** The node a slug's lease settles on among `nodes`; see `settled`. */
function preferredNode(slug: string, nodes: readonly string[]): string {
  const rank = (node: string): string =>
    createHash("sha1").update(`${slug}/${node}`).digest("hex");
  return nodes.reduce((best, node) => (rank(node) > rank(best) ? node : best));
}

export function logChannel(slug: string): string {
  return channelName(slug as Slug);
}

function spawnNode(options: SystemOptions, index: number): ServerProcess {
  const name = `${options.kind}-${index}`;
  const logFile =
    options.logDir === undefined
      ? undefined
      : join(options.logDir, `${name}-${Date.now()}.log`);

  const env = {
    REDIS_URL: options.valkeyUrl,
    PORT: "0",
    HOST: "127.0.0.1",
  };

  switch (options.kind) {
    case "ours":
      return new ServerProcess(
        name,
        "bin/relay",
        [],
        {
          ...env,
          RELAY_NODE_ID: `bench-relay-${index}`,
          LOG_LEVEL: "info",
          ...options.relayEnv,
        },
        logFile,
      );
    case "baseline":
      return new ServerProcess(
        name,
        process.execPath,
        [...TSX, "load-tests/baseline/main.ts"],
        { ...env, BASELINE_FORWARDS_LOGS: index === 0 ? "1" : "0" },
        logFile,
      );
    case "floor":
      return new ServerProcess(
        name,
        process.execPath,
        [...TSX, "load-tests/floor/main.ts"],
        {
          ...env,
          BATCH_WINDOW_MS: options.relayEnv?.BATCH_WINDOW_MS ?? "20",
        },
        logFile,
      );
  }
}
