import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { Slug } from "../shared/channel-name.ts";
import { LocalValkey } from "../shared/local-valkey.ts";
import { createLogger } from "../shared/logger.ts";
import { createValkeyClient } from "../shared/valkey-connection.ts";
import type { BuildId, LogMessage } from "../shared/wire.ts";
import type {
  BuilderLineMessage,
  BuilderStatusMessage,
} from "../builder/build-messages.ts";
import { LogPublisher } from "../builder/log-publisher.ts";
import { MessageQueue, type QueuedMessage } from "../builder/message-queue.ts";
import {
  LogSubscriber,
  makeRepo,
  readHistory,
  startBuilder,
  testClient,
} from "./support/builder-harness.ts";

function message(seq: number, droppable = true, bytes = 10): QueuedMessage {
  return { seq, payload: `m${seq}`, bytes, droppable };
}

const seqsOf = (messages: QueuedMessage[]) => messages.map((m) => m.seq);

describe("message queue", () => {
  it("drops the oldest lines beyond its line bound", () => {
    const queue = new MessageQueue({ maxLines: 3, maxBytes: 1000 });
    const dropped: QueuedMessage[] = [];

    for (let seq = 1; seq <= 5; seq += 1) {
      dropped.push(...queue.push(message(seq)));
    }

    expect(seqsOf(dropped)).toEqual([1, 2]);
    expect(seqsOf(queue.take(10, 1000))).toEqual([3, 4, 5]);
  });

  it("drops the oldest lines beyond its byte bound", () => {
    const queue = new MessageQueue({ maxLines: 100, maxBytes: 25 });

    expect(seqsOf(queue.push(message(1)))).toEqual([]);
    expect(seqsOf(queue.push(message(2)))).toEqual([]);
    expect(seqsOf(queue.push(message(3)))).toEqual([1]);
    expect(queue.bytes).toBe(20);
  });

  it("never drops the builder's own messages", () => {
    const queue = new MessageQueue({ maxLines: 2, maxBytes: 1000 });

    queue.push(message(1));
    queue.push(message(2, false));
    queue.push(message(3));
    const dropped = [...queue.push(message(4)), ...queue.push(message(5))];

    expect(seqsOf(dropped)).toEqual([1, 3]);
    expect(seqsOf(queue.take(10, 1000))).toEqual([2, 4, 5]);
  });

  it("takes batches bounded by count and bytes, at least one message", () => {
    const queue = new MessageQueue({ maxLines: 100, maxBytes: 1000 });
    queue.push(message(1, true, 50));
    queue.push(message(2, true, 10));
    queue.push(message(3, true, 10));
    queue.push(message(4, true, 10));

    expect(seqsOf(queue.take(10, 20))).toEqual([1]);
    expect(seqsOf(queue.take(2, 1000))).toEqual([2, 3]);
    expect(seqsOf(queue.take(10, 1000))).toEqual([4]);
    expect(queue.length).toBe(0);
  });

  it("stays small while dropping for a long time", () => {
    const queue = new MessageQueue({ maxLines: 10, maxBytes: 1_000_000 });
    queue.push(message(0, false));

    let dropped = 0;
    for (let seq = 1; seq <= 100_000; seq += 1) {
      dropped += queue.push(message(seq)).length;
    }

    expect(dropped).toBe(100_000 - 10);
    expect(queue.length).toBe(11);
    expect(seqsOf(queue.take(100, 1_000_000))).toEqual([
      0,
      ...Array.from({ length: 10 }, (_, i) => 99_991 + i),
    ]);
  });
});

describe("log publisher while Valkey is down", () => {
  let valkey: LocalValkey;

  beforeAll(async () => {
    valkey = await LocalValkey.start({ persistent: true });
    return () => valkey.stop();
  });

  function pausedPublisher(slug: Slug): LogPublisher {
    const client = createValkeyClient(
      { url: valkey.url },
      { maxRetriesPerRequest: 0, enableOfflineQueue: false },
    );
    client.on("error", () => {});
    onTestFinished(() => client.disconnect());

    const log = new LogPublisher({
      slug,
      buildId: "b1" as BuildId,
      historyBuildsKept: 5,
      historyMaxEntries: 1000,
      historyMaxBytes: 1_000_000,
      historyTtlSeconds: 600,
      historyRunningMarginSeconds: 100,
      queueMaxLines: 10,
      queueMaxBytes: 1_000_000,
      batchMaxLines: 500,
      batchMaxBytes: 65_536,
      retryMaxDelayMs: 100,
      client,
      logger: createLogger({ service: "builder-test", level: "silent" }),
    });
    onTestFinished(() => log.close());
    return log;
  }

  async function history(slug: Slug): Promise<BuilderLineMessage[]> {
    const entries = await readHistory(testClient(valkey.url), slug, "b1");
    return entries.map((e) => JSON.parse(e.payload) as BuilderLineMessage);
  }

  const range = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it("reports exactly which lines it dropped once Valkey is back", async () => {
    const slug = "drops" as Slug;
    await valkey.pause();
    onTestFinished(() => valkey.resume());
    const log = pausedPublisher(slug);

    for (let i = 1; i <= 100; i += 1) log.line("stdout", `line ${i}`, i);
    log.finish({ status: "succeeded", exitCode: 0, durationMs: 1 });
    expect(log.pendingCount()).toBe(12);

    await valkey.resume();
    expect(await log.flush(20_000)).toBe(0);

    const messages = await history(slug);
    expect(messages.map((m) => m.seq)).toEqual([...range(91, 100), 101, 102]);
    expect(messages[10]).toMatchObject({
      stream: "system",
      dropped: 90,
      droppedFromSeq: 1,
      droppedToSeq: 90,
      log: "90 log lines were dropped (seq 1 to 90) because Valkey was unreachable and the log queue was full",
    });
    const status = messages[11] as unknown as BuilderStatusMessage;
    expect(status.metrics?.linesDropped).toBe(90);
  });

  it("announces drops before and after a batch separately", async () => {
    const slug = "drop-runs" as Slug;
    await valkey.pause();
    onTestFinished(() => valkey.resume());
    const log = pausedPublisher(slug);

    for (let i = 1; i <= 15; i += 1) log.line("stdout", `line ${i}`, i);
    // The send loop starts on the next turn of the event loop and takes
    // lines 6-15 (and a notice for 1-5) into the call that keeps failing.
    await new Promise((resolve) => setImmediate(resolve));
    for (let i = 17; i <= 31; i += 1) log.line("stdout", `line ${i}`, i);
    log.finish({ status: "succeeded", exitCode: 0, durationMs: 1 });

    await valkey.resume();
    expect(await log.flush(20_000)).toBe(0);

    const messages = await history(slug);
    expect(messages.map((m) => m.seq)).toEqual([
      ...range(6, 16),
      ...range(22, 33),
    ]);
    expect(messages.filter((m) => m.dropped !== undefined)).toMatchObject([
      { seq: 16, dropped: 5, droppedFromSeq: 1, droppedToSeq: 5 },
      { seq: 32, dropped: 5, droppedFromSeq: 17, droppedToSeq: 21 },
    ]);
  });
});

// Prints, waits for SIGUSR2 (sent once the test has stopped Valkey), then
// prints `LINES` more lines and exits.
const WAITING_BUILD = `
const lines = Number(process.env.LINES);
console.log("before the outage");
console.log("waiting " + process.pid);
const guard = setTimeout(() => process.exit(9), 60000);
process.on("SIGUSR2", () => {
  for (let i = 1; i <= lines; i += 1) console.log("during " + i);
  clearTimeout(guard);
});
`;

describe("builder while Valkey is down", () => {
  let valkey: LocalValkey;

  beforeAll(async () => {
    valkey = await LocalValkey.start({ persistent: true });
    return () => valkey.stop();
  });

  /** Starts a build, stops Valkey, and lets the build print its lines. */
  async function buildThroughOutage(slug: Slug, env: Record<string, string>) {
    const repo = await makeRepo({ "build.mjs": WAITING_BUILD });
    const subscriber = await LogSubscriber.start(valkey.url, slug);

    const builder = startBuilder({
      PROJECT_ID: slug,
      BUILD_ID: "b1",
      GIT_REPOSITORY_URL: repo,
      INSTALL_COMMAND: "true",
      BUILD_COMMAND: "node build.mjs",
      REDIS_URL: valkey.url,
      ...env,
    });

    const waiting = await subscriber.waitFor((m) =>
      m.log.startsWith("waiting "),
    );
    await valkey.pause();
    onTestFinished(() => valkey.resume());
    process.kill(Number(waiting.log.split(" ")[1]), "SIGUSR2");

    // The build ends while Valkey is still down: logging never blocks it.
    await builder.waitForLog((r) => r.msg === "build finished");
    expect(builder.child.exitCode).toBe(null);
    return builder;
  }

  function seqs(messages: LogMessage[]): number[] {
    return messages.map((m) => m.seq);
  }

  it("publishes every line in order once Valkey is back", async () => {
    const slug = "outage" as Slug;
    const builder = await buildThroughOutage(slug, { LINES: "300" });

    await valkey.resume();
    expect(await builder.exit()).toBe(0);

    const history = await readHistory(testClient(valkey.url), slug, "b1");
    const messages = history.map((e) => JSON.parse(e.payload) as LogMessage);
    expect(seqs(messages)).toEqual(messages.map((_, i) => i + 1));
    expect(
      messages.filter((m) => m.log.startsWith("during ")).map((m) => m.log),
    ).toEqual(Array.from({ length: 300 }, (_, i) => `during ${i + 1}`));
    expect(messages.at(-1)).toMatchObject({
      type: "status",
      status: "succeeded",
    });
  });

  it("says exactly how many lines it dropped when the queue was full", async () => {
    const slug = "overflow" as Slug;
    const builder = await buildThroughOutage(slug, {
      LINES: "500",
      QUEUE_MAX_LINES: "20",
    });

    await valkey.resume();
    expect(await builder.exit()).toBe(0);

    const history = await readHistory(testClient(valkey.url), slug, "b1");
    const messages = history.map(
      (e) => JSON.parse(e.payload) as BuilderLineMessage,
    );
    const status = messages.at(-1) as unknown as BuilderStatusMessage;
    const notices = messages.filter((m) => m.dropped !== undefined);
    expect(notices.length).toBeGreaterThan(0);

    const present = new Set(seqs(messages));
    const missing: number[] = [];
    for (let seq = 1; seq <= status.seq; seq += 1) {
      if (!present.has(seq)) missing.push(seq);
    }

    // Each notice comes after the run of seqs it announces, and together
    // they account for every missing seq, exactly.
    const announced: number[] = [];
    for (const notice of notices) {
      const from = notice.droppedFromSeq!;
      const to = notice.droppedToSeq!;
      expect(notice.seq).toBeGreaterThan(to);
      const lost = missing.filter((seq) => seq >= from && seq <= to);
      expect(lost).toHaveLength(notice.dropped!);
      announced.push(...lost);
      expect(notice.log).toBe(
        `${notice.dropped} log lines were dropped (seq ${from} to ${to}) because Valkey was unreachable and the log queue was full`,
      );
    }
    expect(announced).toEqual(missing);
    expect(missing.length).toBeGreaterThan(400);
    expect(status.metrics?.linesDropped).toBe(missing.length);
    // The newest lines were kept.
    expect(messages.map((m) => m.log)).toContain("during 500");
  });

  it("exits with the build's status when the flush times out", async () => {
    const slug = "no-flush" as Slug;
    const builder = await buildThroughOutage(slug, {
      LINES: "10",
      FLUSH_TIMEOUT_MS: "200",
    });

    const timedOut = await builder.waitForLog(
      (r) => r.msg === "log flush timed out",
    );
    expect(timedOut.remaining).toBeGreaterThan(10);
    expect(await builder.exit()).toBe(0);
  });
});
