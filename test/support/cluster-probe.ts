/**
 * Reads the cluster's ownership state straight from Valkey: who holds a
 * channel's lease and how many subscribers the channel has.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

export async function numsub(client: Redis, channel: string): Promise<number> {
  const reply = (await client.pubsub("NUMSUB", channel)) as [string, number];
  return Number(reply[1]);
}

/** The node id holding the lease of `logs:<slug>`, or null. */
export async function ownerOf(
  client: Redis,
  slug: string,
): Promise<string | null> {
  const token = await client.get(`owner:{${slug}}`);
  return token === null ? null : token.slice(0, token.lastIndexOf("/"));
}

/**
 * The node a slug's lease settles on when all `nodeIds` have viewers of it:
 * the highest sha1(`<slug>/<node>`), as in relay/channel-lease.ts.
 */
export function preferredOwner(
  slug: string,
  nodeIds: readonly string[],
): string {
  const rank = (node: string) =>
    createHash("sha1").update(`${slug}/${node}`).digest("hex");
  return [...nodeIds].sort((a, b) => (rank(a) < rank(b) ? 1 : -1))[0]!;
}

export interface SubscriberSampler {
  /** Counts read so far. */
  readonly samples: number[];
  /** Stops sampling and resolves with every count read. */
  stop(): Promise<number[]>;
}

/**
 * Reads `PUBSUB NUMSUB channel` every `everyMs` until stopped, so a test can
 * check the subscriber count all through a run.
 */
export function sampleSubscribers(
  client: Redis,
  channel: string,
  everyMs = 20,
): SubscriberSampler {
  const samples: number[] = [];
  let sampling = true;
  const loop = (async () => {
    while (sampling) {
      samples.push(await numsub(client, channel));
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();

  return {
    samples,
    async stop() {
      sampling = false;
      await loop;
      return samples;
    },
  };
}
