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
