/**
 * Reads the builder's per-build history streams (see shared/valkey-keys.ts):
 * the latest build of a slug, the last seq it has, and ranges by seq.
 */
import type { ValkeyClient } from "../shared/valkey-connection.ts";
import type { Slug } from "../shared/channel-name.ts";
import {
  buildsKey,
  historyEntryId,
  historyKey,
} from "../shared/valkey-keys.ts";
import { isBuildId, type BuildId, type Seq } from "../shared/wire.ts";

export interface HistoryEnd {
  buildId: BuildId;
  /** The last seq in history, 0 when the stream is empty or gone. */
  seq: Seq;
}

export interface HistoryEntry {
  seq: Seq;
  payload: string;
}

type StreamReply = Array<[id: string, fields: string[]]>;

export class HistoryReader {
  constructor(private readonly client: ValkeyClient) {}

  /** The slug's latest build, or undefined when it has none in history. */
  async latestBuild(slug: Slug): Promise<BuildId | undefined> {
    const buildId = await this.client.lindex(buildsKey(slug), 0);
    return isBuildId(buildId) ? buildId : undefined;
  }

  /** True when the build is one of the slug's builds in history. */
  async hasBuild(slug: Slug, buildId: BuildId): Promise<boolean> {
    const position = await this.client.lpos(buildsKey(slug), buildId);
    return position !== null;
  }

  async end(slug: Slug): Promise<HistoryEnd | undefined> {
    const buildId = await this.latestBuild(slug);
    if (buildId === undefined) return undefined;
    return { buildId, seq: await this.lastSeq(slug, buildId) };
  }

  async lastSeq(slug: Slug, buildId: BuildId): Promise<Seq> {
    const reply = (await this.client.xrevrange(
      historyKey(slug, buildId),
      "+",
      "-",
      "COUNT",
      1,
    )) as StreamReply;
    return reply.length === 0 ? 0 : seqOf(reply[0]![0]);
  }

  /** Entries with `fromSeq <= seq <= toSeq`, at most `limit`, in order. */
  async range(
    slug: Slug,
    buildId: BuildId,
    fromSeq: Seq,
    toSeq: Seq | undefined,
    limit: number,
  ): Promise<HistoryEntry[]> {
    const reply = (await this.client.xrange(
      historyKey(slug, buildId),
      historyEntryId(fromSeq),
      toSeq === undefined ? "+" : historyEntryId(toSeq),
      "COUNT",
      limit,
    )) as StreamReply;

    return reply.map(([id, fields]) => ({
      seq: seqOf(id),
      payload: fieldValue(fields, "m") ?? "",
    }));
  }
}

function seqOf(entryId: string): Seq {
  return Number(entryId.slice(entryId.indexOf("-") + 1));
}

function fieldValue(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === name) return fields[i + 1];
  }
  return undefined;
}
