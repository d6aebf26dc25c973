/**
 * A structured viewer built on the client library, recording what it was
 * handed so tests can check seq continuity.
 */
import { onTestFinished } from "vitest";
import {
  LogFollower,
  type LogFollowerOptions,
} from "../../client/log-follower.ts";
import type { StatusMessage } from "../../shared/wire.ts";

export interface RecordingFollower {
  follower: LogFollower;
  /** `${buildId}:${seq}` of every line and status handed over, in order. */
  seen: string[];
  /** Raw `logs` events received, with their message counts. */
  batchSizes: number[];
  statuses: StatusMessage[];
  /** Resolves once the build's final status has been handed over. */
  finished: Promise<StatusMessage>;
  /** Resolves at the first accepted subscription. */
  subscribed: Promise<unknown>;
}

export function recordFollower(options: LogFollowerOptions): RecordingFollower {
  const follower = new LogFollower(options);
  onTestFinished(() => follower.close());

  const seen: string[] = [];
  const batchSizes: number[] = [];
  const statuses: StatusMessage[] = [];
  follower.on("line", (m) => seen.push(`${m.buildId}:${m.seq}`));
  follower.on("status", (m) => {
    seen.push(`${m.buildId}:${m.seq}`);
    statuses.push(m);
  });
  follower.socket.on("logs", (event: { messages: unknown[] }) => {
    batchSizes.push(event.messages.length);
  });

  const finished = new Promise<StatusMessage>((resolve) => {
    follower.on("status", resolve);
  });
  const subscribed = new Promise((resolve) => {
    follower.once("subscribed", resolve);
  });
  return { follower, seen, batchSizes, statuses, finished, subscribed };
}

/** `${buildId}:1` .. `${buildId}:${last}`. */
export function seqRange(buildId: string, last: number): string[] {
  return Array.from({ length: last }, (_, i) => `${buildId}:${i + 1}`);
}
