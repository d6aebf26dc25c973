/**
 * What the launcher knows about one build, and how that is laid out in its
 * Valkey hash (`buildRecordKey`) and in HTTP answers.
 *
 * A build goes `queued` → `running` → `succeeded` | `failed`, and may go
 * straight from `queued` to `failed` (ECS refused it, or the launcher shut
 * down before a slot freed). The two last states are final.
 */
import {
  channelName,
  toSlug,
  type ChannelName,
  type Slug,
} from "../shared/channel-name.ts";
import { isBuildId, type BuildId } from "../shared/wire.ts";
import { RUNNER_NAMES, type RunnerName } from "./config.ts";

export const BUILD_STATUSES = [
  "queued",
  "running",
  "succeeded",
  "failed",
] as const;
export type BuildStatus = (typeof BUILD_STATUSES)[number];
export type ActiveStatus = "queued" | "running";

export function isFinal(status: BuildStatus): boolean {
  return status === "succeeded" || status === "failed";
}

/** Times are ms since the epoch. */
export interface BuildRecord {
  buildId: BuildId;
  slug: Slug;
  status: BuildStatus;
  runner: RunnerName;
  createdAt: number;
  startedAt: number | undefined;
  endedAt: number | undefined;
  /** The builder's exit code; null while running or when it never exited. */
  exitCode: number | null;
  /** The ECS task of an `ecs` build, once RunTask has answered. */
  taskArn: string | undefined;
}

/** The fields a state change may set; see BuildStore.transition. */
export type BuildUpdate = Partial<
  Pick<BuildRecord, "status" | "startedAt" | "endedAt" | "exitCode" | "taskArn">
>;

/** The JSON answer of `GET /builds/:buildId`; times are ISO 8601 or null. */
export interface BuildView {
  buildId: BuildId;
  slug: Slug;
  channel: ChannelName;
  status: BuildStatus;
  runner: RunnerName;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  exitCode: number | null;
}

export function toBuildView(record: BuildRecord): BuildView {
  const iso = (ms: number | undefined) =>
    ms === undefined ? null : new Date(ms).toISOString();

  return {
    buildId: record.buildId,
    slug: record.slug,
    channel: channelName(record.slug),
    status: record.status,
    runner: record.runner,
    createdAt: new Date(record.createdAt).toISOString(),
    startedAt: iso(record.startedAt),
    endedAt: iso(record.endedAt),
    exitCode: record.exitCode,
  };
}

/** Hash fields of an update; unset fields are left out, never written. */
export function encodeUpdate(update: BuildUpdate): Record<string, string> {
  const fields: Record<string, string> = {};
  if (update.status !== undefined) fields.status = update.status;
  if (update.startedAt !== undefined) {
    fields.startedAt = String(update.startedAt);
  }
  if (update.endedAt !== undefined) fields.endedAt = String(update.endedAt);
  if (update.exitCode !== undefined && update.exitCode !== null) {
    fields.exitCode = String(update.exitCode);
  }
  if (update.taskArn !== undefined) fields.taskArn = update.taskArn;
  return fields;
}

export function encodeRecord(record: BuildRecord): Record<string, string> {
  return {
    buildId: record.buildId,
    slug: record.slug,
    runner: record.runner,
    createdAt: String(record.createdAt),
    ...encodeUpdate(record),
  };
}

/**
 * Reads a hash back. Returns undefined for an empty hash (no such key) and
 * for one this code did not write, rather than serving half a record.
 */
export function decodeRecord(
  fields: Record<string, string>,
): BuildRecord | undefined {
  const slug = toSlug(fields.slug ?? "");
  const status = BUILD_STATUSES.find((s) => s === fields.status);
  const runner = RUNNER_NAMES.find((r) => r === fields.runner);
  const createdAt = toTime(fields.createdAt);
  if (!isBuildId(fields.buildId) || !slug || !status || !runner) {
    return undefined;
  }
  if (createdAt === undefined) return undefined;

  const exitCode = Number(fields.exitCode);

  return {
    buildId: fields.buildId,
    slug,
    status,
    runner,
    createdAt,
    startedAt: toTime(fields.startedAt),
    endedAt: toTime(fields.endedAt),
    exitCode:
      fields.exitCode !== undefined && Number.isInteger(exitCode)
        ? exitCode
        : null,
    taskArn: fields.taskArn,
  };
}

function toTime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Number(value);
  return Number.isSafeInteger(ms) ? ms : undefined;
}
