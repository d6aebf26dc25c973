/**
 * Every Valkey key this system writes, each from one function.
 *
 * All keys of a slug carry the hash tag `{<slug>}`, so on Valkey Cluster
 * they live in one slot and one script can touch them together.
 *
 * | key | type | holds |
 * | --- | --- | --- |
 * | `history:{<slug>}:<buildId>` | stream | every message of a build, entry id `0-<seq>`, field `m` = the JSON payload |
 * | `builds:{<slug>}` | list | build ids of the slug, newest first, capped |
 * | `owner:{<slug>}` | string | the relay node that forwards `logs:<slug>`, with a TTL (the lease) |
 * | `viewers:{<slug>}` | sorted set | relay nodes with viewers of the slug, scored by presence expiry (ms) |
 * | `build:{<buildId>}` | hash | the launcher's record of one build (status, runner, timestamps, exit code), with a TTL |
 */
import type { Slug } from "./channel-name.ts";
import type { BuildId } from "./wire.ts";

export function historyKey(slug: Slug, buildId: BuildId): string {
  return `history:{${slug}}:${buildId}`;
}

export function buildsKey(slug: Slug): string {
  return `builds:{${slug}}`;
}

export function ownerKey(slug: Slug): string {
  return `owner:{${slug}}`;
}

/**
 * The launcher's record of a build. It is looked up by build id alone, so it
 * carries its own hash tag rather than the slug's.
 */
export function buildRecordKey(buildId: BuildId): string {
  return `build:{${buildId}}`;
}

/** The stream entry id of a message: `0-<seq>`, so ranges are by seq. */
export function historyEntryId(seq: number): string {
  return `0-${seq}`;
}

/**
 * The relay nodes that have viewers of a slug: a sorted set of node ids
 * scored by when their presence expires, in Valkey's clock (ms).
 */
export function presenceKey(slug: Slug): string {
  return `viewers:{${slug}}`;
}
