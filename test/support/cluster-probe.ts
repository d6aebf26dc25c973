/**
 * Reads the cluster's ownership state straight from Valkey: who holds a
 * channel's lease and how many subscribers the channel has.
 */
import type { Redis } from "ioredis";

export async function numsub(client: Redis, channel: string): Promise<number> {
  const reply = (await client.pubsub("NUMSUB", channel)) as [string, number];
  return Number(reply[1]);
}

/** The node id holding the lease of `logs:<slug>`, or null. */
export async function ownerOf(client: Redis, slug: string): Promise<string | null> {
  const token = await client.get(`owner:{${slug}}`);
  return token === null ? null : token.slice(0, token.lastIndexOf("/"));
}
