/**
 * The one Lua script every log message goes through, so the history stream
 * and the live channel never disagree.
 *
 * For each message of a batch, in seq order, in one round trip:
 *
 *     XADD history:{<slug>}:<buildId> MAXLEN <maxEntries> 0-<seq> m <payload>
 *     PUBLISH logs:<slug> <payload>
 *
 * The script is safe to run again with the same batch (a retry after a
 * lost reply): a message whose seq is not above the stream's last entry is
 * skipped, so it is neither added nor published twice.
 *
 * History caps, per slug:
 * - builds: the first call of a build (`registerBuild`) pushes its id on
 *   `builds:{<slug>}` (newest first, once) and trims the list to
 *   `buildsKept`; the ids that fall off are returned so the caller can
 *   delete their streams. Those streams also expire on their own.
 * - entries: each stream keeps its latest `maxEntries` entries (MAXLEN).
 * - bytes: the caller tracks payload bytes (history-budget.ts) and passes
 *   `trimMinId`; entries below it are removed with XTRIM MINID.
 * - time: every call sets the stream's TTL to `ttlSeconds` and raises the
 *   list's TTL to at least that. While a build runs the caller passes its
 *   expiry plus a margin, refreshed with every call; with the final status
 *   it passes the history's lifetime after the build.
 *
 * Keys are declared in KEYS, so the script runs on Valkey Cluster (all keys
 * of a slug share the `{<slug>}` hash tag); deleting evicted streams is left
 * to the caller for the same reason.
 *
 * The script is sent with EVALSHA and, when the server does not know it
 * (NOSCRIPT, after a restart), with EVAL.
 */
import { createHash } from "node:crypto";
import type { ValkeyClient } from "../shared/valkey-connection.ts";
import type { ChannelName } from "../shared/channel-name.ts";
import type { BuildId, Seq } from "../shared/wire.ts";
import { PublishReplyError } from "./errors.ts";

export const PUBLISH_SCRIPT = `
local stream = KEYS[1]
local builds = KEYS[2]
local channel = ARGV[1]
local build_id = ARGV[2]
local register = ARGV[3] == '1'
local builds_kept = tonumber(ARGV[4])
local max_entries = ARGV[5]
local ttl_seconds = tonumber(ARGV[6])
local trim_min_id = ARGV[7]

local last = 0
local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
if top[1] then
  last = tonumber(string.match(top[1][1], '(%d+)$'))
end

local published = 0
for i = 8, #ARGV, 3 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    redis.call('XADD', stream, 'MAXLEN', max_entries, ARGV[i + 1], 'm', ARGV[i + 2])
    redis.call('PUBLISH', channel, ARGV[i + 2])
    last = seq
    published = published + 1
  end
end

if trim_min_id ~= '' then
  redis.call('XTRIM', stream, 'MINID', trim_min_id)
end

local reply = { published }
if register and not redis.call('LPOS', builds, build_id) then
  redis.call('LPUSH', builds, build_id)
  local evicted = redis.call('LRANGE', builds, builds_kept, -1)
  redis.call('LTRIM', builds, 0, builds_kept - 1)
  for _, id in ipairs(evicted) do
    reply[#reply + 1] = id
  end
end

redis.call('EXPIRE', stream, ttl_seconds)
local list_ttl = redis.call('TTL', builds)
if list_ttl == -1 or (list_ttl >= 0 and list_ttl < ttl_seconds) then
  redis.call('EXPIRE', builds, ttl_seconds)
end

return reply
`;

const PUBLISH_SCRIPT_SHA = createHash("sha1")
  .update(PUBLISH_SCRIPT)
  .digest("hex");

export interface PublishEntry {
  seq: Seq;
  /** `historyEntryId(seq)`: `0-<seq>`. */
  entryId: string;
  payload: string;
}

export interface PublishCall {
  /** `historyKey(slug, buildId)`. */
  historyKey: string;
  /** `buildsKey(slug)`. */
  buildsKey: string;
  channel: ChannelName;
  buildId: BuildId;
  /** Add the build to the builds list (once) and trim the list. */
  registerBuild: boolean;
  buildsKept: number;
  maxEntries: number;
  ttlSeconds: number;
  /** `historyEntryId(seq)` of the oldest entry to keep, or undefined. */
  trimMinId: string | undefined;
  /** In seq order. */
  entries: readonly PublishEntry[];
}

export interface PublishReply {
  /** Entries added and published now; retried ones are not counted. */
  published: number;
  /** Builds that fell off the builds list; their streams may be deleted. */
  evictedBuildIds: string[];
}

/** Runs the publish script once. Rejects when the call fails. */
export async function runPublishScript(
  client: ValkeyClient,
  call: PublishCall,
): Promise<PublishReply> {
  const args: Array<string | number> = [
    call.historyKey,
    call.buildsKey,
    call.channel,
    call.buildId,
    call.registerBuild ? "1" : "0",
    call.buildsKept,
    call.maxEntries,
    call.ttlSeconds,
    call.trimMinId ?? "",
  ];
  for (const entry of call.entries) {
    args.push(entry.seq, entry.entryId, entry.payload);
  }

  let reply: unknown;
  try {
    reply = await client.evalsha(PUBLISH_SCRIPT_SHA, 2, ...args);
  } catch (err) {
    if (!isNoScript(err)) throw err;
    reply = await client.eval(PUBLISH_SCRIPT, 2, ...args);
  }

  return parseReply(reply);
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith("NOSCRIPT");
}

function parseReply(reply: unknown): PublishReply {
  if (!Array.isArray(reply) || typeof reply[0] !== "number") {
    throw new PublishReplyError("publish script reply is not [count, ...ids]");
  }

  const [published, ...evicted] = reply as [number, ...unknown[]];
  return {
    published,
    evictedBuildIds: evicted.map(String),
  };
}
