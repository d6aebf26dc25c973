/**
 * The Valkey side of channel ownership: leases and viewer presence.
 *
 * A node with viewers of a slug keeps itself in the slug's presence set and
 * competes for the slug's lease; the holder of the lease is the one node
 * that SUBSCRIBEs to `logs:<slug>`. All four operations are Lua scripts so
 * each is one atomic round trip, and all read time from Valkey's clock, so
 * nodes with skewed clocks still agree on who is present.
 *
 * Fencing: a holder renews with a check-and-extend that succeeds only while
 * the key still holds its own token, and it forwards a line only while its
 * local deadline (`sent + ttl - margin`, taken before the renewal was sent)
 * lies ahead. The key cannot expire in Valkey before that deadline passes
 * locally, so a second owner can only exist after the first has stopped
 * forwarding. This needs no cooperation from the viewers' nodes, which is
 * why it was chosen over a fencing token checked downstream.
 */
import type { ValkeyClient } from "../shared/valkey-connection.ts";
import type { Slug } from "../shared/channel-name.ts";
import { ownerKey, presenceKey } from "../shared/valkey-keys.ts";

const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// KEYS: owner, presence. ARGV: token, leaseTtlMs, nodeId, presenceTtlMs.
// Refreshes this node's presence and takes the lease when it is free.
// Returns 1 when this token holds the lease afterwards.
const ACQUIRE = `${NOW_MS}
local presenceTtl = tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], now + presenceTtl, ARGV[3])
redis.call('PEXPIRE', KEYS[2], presenceTtl * 2)
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
`;

// KEYS: owner, presence. ARGV: token, leaseTtlMs, nodeId, presenceTtlMs,
// hasLocalViewers, slug, freshWindowMs. Returns 1 renewed, 0 lost to someone else, 2
// released because no node has viewers any more, 3 released to the node
// the slug prefers.
//
// Each slug prefers the present node with the highest sha1(slug, node)
// (rendezvous hashing), so ownership spreads evenly over the nodes that
// have viewers, whatever order they arrived in. The first node to arrive
// owns at once; the renewal hands over when a preferred node is present.
const RENEW = `${NOW_MS}
local presenceTtl = tonumber(ARGV[4])
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[2], now + presenceTtl, ARGV[3])
  redis.call('PEXPIRE', KEYS[2], presenceTtl * 2)
else
  redis.call('ZREM', KEYS[2], ARGV[3])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1])
  return 2
end
-- Only nodes that refreshed lately count: a killed node stays present
-- until its entry expires, and must not be handed anything meanwhile.
local fresh = redis.call('ZRANGEBYSCORE', KEYS[2], now + presenceTtl - tonumber(ARGV[7]), '+inf')
local best, bestNode = '', ARGV[3]
for _, node in ipairs(fresh) do
  local rank = redis.sha1hex(ARGV[6] .. '/' .. node)
  if rank > best then
    best, bestNode = rank, node
  end
end
if bestNode ~= ARGV[3] then
  redis.call('DEL', KEYS[1])
  return 3
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

// KEYS: owner, presence. ARGV: token (or ''), nodeId. Leaves the presence
// set and gives up the lease if this token holds it.
const RELEASE = `
redis.call('ZREM', KEYS[2], ARGV[2])
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

export type RenewResult = "renewed" | "lost" | "released" | "handed-over";

interface LeaseCommands {
  relayAcquire(
    owner: string,
    presence: string,
    token: string,
    leaseTtlMs: number,
    nodeId: string,
    presenceTtlMs: number,
  ): Promise<number>;
  relayRenew(
    owner: string,
    presence: string,
    token: string,
    leaseTtlMs: number,
    nodeId: string,
    presenceTtlMs: number,
    hasLocalViewers: string,
    slug: string,
    freshWindowMs: number,
  ): Promise<number>;
  relayRelease(
    owner: string,
    presence: string,
    token: string,
    nodeId: string,
  ): Promise<number>;
}

export interface ChannelLeaseOptions {
  nodeId: string;
  leaseTtlMs: number;
  presenceTtlMs: number;
  /** A node refreshed within this long counts as alive for hand-over. */
  freshWindowMs: number;
}

export class ChannelLease {
  private readonly client: ValkeyClient & LeaseCommands;

  constructor(
    client: ValkeyClient,
    private readonly options: ChannelLeaseOptions,
  ) {
    defineLeaseCommands(client);
    this.client = client as ValkeyClient & LeaseCommands;
  }

  /** True when `token` holds the slug's lease after the call. */
  async acquire(slug: Slug, token: string): Promise<boolean> {
    const { nodeId, leaseTtlMs, presenceTtlMs } = this.options;
    const result = await this.client.relayAcquire(
      ownerKey(slug),
      presenceKey(slug),
      token,
      leaseTtlMs,
      nodeId,
      presenceTtlMs,
    );
    return result === 1;
  }

  async renew(
    slug: Slug,
    token: string,
    hasLocalViewers: boolean,
  ): Promise<RenewResult> {
    const { nodeId, leaseTtlMs, presenceTtlMs } = this.options;
    const result = await this.client.relayRenew(
      ownerKey(slug),
      presenceKey(slug),
      token,
      leaseTtlMs,
      nodeId,
      presenceTtlMs,
      hasLocalViewers ? "1" : "0",
      slug,
      this.options.freshWindowMs,
    );
    return RENEW_RESULTS[result] ?? "lost";
  }

  /** Leaves the presence set, and gives the lease up when `token` holds it. */
  async release(slug: Slug, token: string | undefined): Promise<void> {
    await this.client.relayRelease(
      ownerKey(slug),
      presenceKey(slug),
      token ?? "",
      this.options.nodeId,
    );
  }

  /** The token that holds the slug's lease, if any. */
  async holder(slug: Slug): Promise<string | null> {
    return this.client.get(ownerKey(slug));
  }
}

const RENEW_RESULTS: Record<number, RenewResult> = {
  0: "lost",
  1: "renewed",
  2: "released",
  3: "handed-over",
};

function defineLeaseCommands(client: ValkeyClient): void {
  if ("relayAcquire" in client) return;
  client.defineCommand("relayAcquire", { numberOfKeys: 2, lua: ACQUIRE });
  client.defineCommand("relayRenew", { numberOfKeys: 2, lua: RENEW });
  client.defineCommand("relayRelease", { numberOfKeys: 2, lua: RELEASE });
}
