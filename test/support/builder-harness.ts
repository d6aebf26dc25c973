/**
 * What the builder tests share: a throwaway git repository, a subscriber
 * that collects a slug's live messages, the history of a build, and the
 * builder itself as a child process.
 */
import { execFile } from "node:child_process";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { onTestFinished } from "vitest";
import { channelName, type Slug } from "../../shared/channel-name.ts";
import { historyKey } from "../../shared/valkey-keys.ts";
import {
  parseLogMessage,
  type BuildId,
  type LogMessage,
} from "../../shared/wire.ts";
import { ServiceProcess } from "./service-process.ts";

const run = promisify(execFile);

/**
 * A git repository in a temporary folder holding `files` in one commit.
 * Removed when the test finishes.
 */
export async function makeRepo(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "codebay-test-repo-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));

  await git(dir, "init", "--quiet");
  await commitFiles(dir, files);
  return dir;
}

/** Writes `files` into the repository and commits them. */
export async function commitFiles(
  repo: string,
  files: Record<string, string>,
): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(repo, path)), { recursive: true });
    await writeFile(join(repo, path), content);
  }
  await git(repo, "add", ".");
  await git(repo, "commit", "--quiet", "-m", "test files");
}

/** Runs git in `repo` as a test identity. */
export async function git(repo: string, ...args: string[]): Promise<void> {
  const identity = ["-c", "user.name=test", "-c", "user.email=t@example.com"];
  await run("git", [...identity, ...args], { cwd: repo });
}

/** Runs bin/builder with `env`; stopped when the test finishes. */
export function startBuilder(env: Record<string, string>): ServiceProcess {
  const builder = new ServiceProcess("builder", [], env);
  onTestFinished(async () => {
    await builder.stop();
  });
  return builder;
}

/** An ioredis client for a test; closed when the test finishes. */
export function testClient(url: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on("error", () => {
    // A paused server is part of some tests; commands report it.
  });
  onTestFinished(() => {
    client.disconnect();
  });
  return client;
}

/**
 * Collects every message published on a slug's channel, as raw payloads
 * and parsed, and resolves waiters on the messages they wait for.
 */
export class LogSubscriber {
  readonly payloads: string[] = [];
  readonly messages: LogMessage[] = [];
  private waiters: Array<{
    match: (message: LogMessage) => boolean;
    resolve: (message: LogMessage) => void;
    timer: NodeJS.Timeout;
  }> = [];

  private constructor(client: Redis) {
    onTestFinished(() => {
      for (const waiter of this.waiters) clearTimeout(waiter.timer);
      this.waiters = [];
    });

    client.on("message", (_channel: string, payload: string) => {
      const message = parseLogMessage(payload);
      if (!message) throw new Error(`not a log message: ${payload}`);

      this.payloads.push(payload);
      this.messages.push(message);
      this.waiters = this.waiters.filter((waiter) => {
        if (!waiter.match(message)) return true;
        waiter.resolve(message);
        return false;
      });
    });
  }

  /** Subscribes to `logs:<slug>`; unsubscribes when the test finishes. */
  static async start(url: string, slug: Slug): Promise<LogSubscriber> {
    const client = testClient(url);
    await client.subscribe(channelName(slug));
    return new LogSubscriber(client);
  }

  /** The first message, past or future, that matches. */
  waitFor(
    match: (message: LogMessage) => boolean,
    timeoutMs = 30_000,
  ): Promise<LogMessage> {
    const seen = this.messages.find(match);
    if (seen) return Promise.resolve(seen);

    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no matching message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push({
        match,
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
        timer,
      });
    });
  }

  /** The status message that ends a build. */
  status(timeoutMs?: number): Promise<LogMessage> {
    return this.waitFor((message) => message.type === "status", timeoutMs);
  }

  /** The first line with exactly this text. */
  line(text: string): Promise<LogMessage> {
    return this.waitFor((message) => message.log === text);
  }
}

export interface HistoryEntry {
  id: string;
  payload: string;
}

/** Every entry of a build's history stream, oldest first. */
export async function readHistory(
  client: Redis,
  slug: Slug,
  buildId: string,
): Promise<HistoryEntry[]> {
  const reply = await client.xrange(
    historyKey(slug, buildId as BuildId),
    "-",
    "+",
  );
  return reply.map(([id, fields]) => {
    if (fields[0] !== "m" || fields[1] === undefined) {
      throw new Error(`unexpected history entry ${id}: ${fields.join(" ")}`);
    }
    return { id, payload: fields[1] };
  });
}
