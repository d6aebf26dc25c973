/**
 * What Valkey itself counts, read before and after a run: commands
 * processed, bytes sent, calls per command, and how many clients a set of
 * channels has.
 */
import type { Redis } from "ioredis";

export interface ValkeySample {
  commands: number;
  netOutputBytes: number;
  /** Calls per command name, lowercase (`publish`, `spublish`, `evalsha`). */
  calls: Record<string, number>;
}

export async function sampleValkey(client: Redis): Promise<ValkeySample> {
  const stats = parseInfo(await client.info("stats"));
  const commandStats = parseInfo(await client.info("commandstats"));

  const calls: Record<string, number> = {};
  for (const [key, value] of Object.entries(commandStats)) {
    const name = /^cmdstat_(.+)$/.exec(key)?.[1];
    const count = /(?:^|,)calls=(\d+)/.exec(value)?.[1];
    if (name && count) calls[name] = Number(count);
  }

  return {
    commands: Number(stats.total_commands_processed ?? 0),
    netOutputBytes: Number(stats.total_net_output_bytes ?? 0),
    calls,
  };
}

/** `after - before`, per field. */
export function valkeyDelta(
  before: ValkeySample,
  after: ValkeySample,
): ValkeySample {
  const calls: Record<string, number> = {};
  for (const [name, count] of Object.entries(after.calls)) {
    calls[name] = count - (before.calls[name] ?? 0);
  }
  return {
    commands: after.commands - before.commands,
    netOutputBytes: after.netOutputBytes - before.netOutputBytes,
    calls,
  };
}

/** The mean subscriber count of `channels` (PUBSUB NUMSUB). */
export async function meanNumsub(
  client: Redis,
  channels: readonly string[],
): Promise<number> {
  return meanCounts(client, "NUMSUB", channels);
}

/** The mean subscriber count of sharded `channels` (PUBSUB SHARDNUMSUB). */
export async function meanShardNumsub(
  client: Redis,
  channels: readonly string[],
): Promise<number> {
  return meanCounts(client, "SHARDNUMSUB", channels);
}

async function meanCounts(
  client: Redis,
  subcommand: "NUMSUB" | "SHARDNUMSUB",
  channels: readonly string[],
): Promise<number> {
  if (channels.length === 0) return 0;
  const reply = (await client.call("PUBSUB", subcommand, ...channels)) as Array<
    string | number
  >;

  let total = 0;
  for (let i = 1; i < reply.length; i += 2) total += Number(reply[i]);
  return total / channels.length;
}

function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split("\r\n")) {
    const at = line.indexOf(":");
    if (at > 0 && !line.startsWith("#")) {
      fields[line.slice(0, at)] = line.slice(at + 1);
    }
  }
  return fields;
}
