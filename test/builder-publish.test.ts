import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { channelName, type Slug } from "../shared/channel-name.ts";
import { LocalValkey } from "../shared/local-valkey.ts";
import { createLogger } from "../shared/logger.ts";
import { createValkeyClient } from "../shared/valkey-connection.ts";
import {
  buildsKey,
  historyEntryId,
  historyKey,
} from "../shared/valkey-keys.ts";
import type { BuildId } from "../shared/wire.ts";
import type { BuilderStatusMessage } from "../builder/build-messages.ts";
import { HistoryBudget } from "../builder/history-budget.ts";
import {
  LogPublisher,
  type LogPublisherOptions,
} from "../builder/log-publisher.ts";
import {
  runPublishScript,
  type PublishCall,
} from "../builder/publish-script.ts";
import {
  LogSubscriber,
  readHistory,
  testClient,
} from "./support/builder-harness.ts";

const logger = createLogger({ service: "builder-test", level: "silent" });

function call(
  slug: Slug,
  buildId: string,
  seqs: number[],
  overrides: Partial<PublishCall> = {},
): PublishCall {
  return {
    historyKey: historyKey(slug, buildId as BuildId),
    buildsKey: buildsKey(slug),
    channel: channelName(slug),
    buildId: buildId as BuildId,
    registerBuild: true,
    buildsKept: 5,
    maxEntries: 1000,
    ttlSeconds: 600,
    trimMinId: undefined,
    entries: seqs.map((seq) => ({
      seq,
      entryId: historyEntryId(seq),
      payload: JSON.stringify({
        type: "line",
        log: `line ${seq}`,
        buildId,
        seq,
        ts: 0,
        stream: "stdout",
      }),
    })),
    ...overrides,
  };
}

describe("publish script", () => {
  let valkey: LocalValkey;

  beforeAll(async () => {
    valkey = await LocalValkey.start();
    return () => valkey.stop();
  });

  it("adds and publishes each message once when the same batch is sent twice", async () => {
    const slug = "retry" as Slug;
    const client = testClient(valkey.url);
    const subscriber = await LogSubscriber.start(valkey.url, slug);

    const first = await runPublishScript(client, call(slug, "b1", [1, 2, 3]));
    const again = await runPublishScript(client, call(slug, "b1", [1, 2, 3]));
    // A later message marks the end: the channel keeps order, so any
    // duplicate would have arrived before it.
    await runPublishScript(client, call(slug, "b1", [4]));
    await subscriber.line("line 4");

    expect(first.published).toBe(3);
    expect(again.published).toBe(0);
    expect(subscriber.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4]);

    const history = await readHistory(client, slug, "b1");
    expect(history.map((e) => e.id)).toEqual(["0-1", "0-2", "0-3", "0-4"]);
    expect(history.map((e) => e.payload)).toEqual(subscriber.payloads);
    expect(await client.lrange(buildsKey(slug), 0, -1)).toEqual(["b1"]);
  });

  it("skips only what a lost reply already applied", async () => {
    const slug = "partial" as Slug;
    const client = testClient(valkey.url);

    await runPublishScript(client, call(slug, "b1", [1, 2]));
    const retry = await runPublishScript(client, call(slug, "b1", [1, 2, 3]));

    expect(retry.published).toBe(1);
    const history = await readHistory(client, slug, "b1");
    expect(history.map((e) => e.id)).toEqual(["0-1", "0-2", "0-3"]);
  });

  it("falls back to EVAL when the server does not know the script", async () => {
    const slug = "noscript" as Slug;
    const client = testClient(valkey.url);

    await runPublishScript(client, call(slug, "b1", [1]));
    await client.script("FLUSH");
    const reply = await runPublishScript(client, call(slug, "b1", [2]));

    expect(reply.published).toBe(1);
  });

  it("keeps the latest entries of a build up to its entry cap", async () => {
    const slug = "maxlen" as Slug;
    const client = testClient(valkey.url);

    await runPublishScript(
      client,
      call(slug, "b1", [1, 2, 3, 4, 5], { maxEntries: 3 }),
    );

    const history = await readHistory(client, slug, "b1");
    expect(history.map((e) => e.id)).toEqual(["0-3", "0-4", "0-5"]);
  });

  it("trims entries below the given id", async () => {
    const slug = "minid" as Slug;
    const client = testClient(valkey.url);

    await runPublishScript(
      client,
      call(slug, "b1", [1, 2, 3, 4], { trimMinId: historyEntryId(3) }),
    );

    const history = await readHistory(client, slug, "b1");
    expect(history.map((e) => e.id)).toEqual(["0-3", "0-4"]);
  });

  it("lists the latest builds newest first and returns the evicted ones", async () => {
    const slug = "builds" as Slug;
    const client = testClient(valkey.url);

    for (const id of ["b1", "b2", "b3"]) {
      await runPublishScript(client, call(slug, id, [1], { buildsKept: 2 }));
    }
    // Registering again (a retry) does not add the build twice.
    const repeat = await runPublishScript(
      client,
      call(slug, "b3", [2], { buildsKept: 2 }),
    );

    expect(repeat.evictedBuildIds).toEqual([]);
    expect(await client.lrange(buildsKey(slug), 0, -1)).toEqual(["b3", "b2"]);
  });

  it("sets the stream's TTL and never lowers the list's", async () => {
    const slug = "ttl" as Slug;
    const client = testClient(valkey.url);

    await runPublishScript(client, call(slug, "b1", [1], { ttlSeconds: 900 }));
    await runPublishScript(client, call(slug, "b2", [1], { ttlSeconds: 300 }));

    const stream = historyKey(slug, "b2" as BuildId);
    expect(await client.ttl(stream)).toBeGreaterThan(290);
    expect(await client.ttl(stream)).toBeLessThanOrEqual(300);
    expect(await client.ttl(buildsKey(slug))).toBeGreaterThan(890);
  });
});

describe("history budget", () => {
  it("names the oldest seq to keep once the bytes are over the cap", () => {
    const budget = new HistoryBudget({ maxEntries: 100, maxBytes: 250 });

    expect(
      budget.add([
        { seq: 1, bytes: 100 },
        { seq: 2, bytes: 100 },
      ]),
    ).toBe(undefined);
    expect(budget.add([{ seq: 3, bytes: 100 }])).toBe(2);
    expect(budget.bytes).toBe(200);
  });

  it("forgets entries the entry cap removes", () => {
    const budget = new HistoryBudget({ maxEntries: 2, maxBytes: 250 });

    budget.add([1, 2, 3].map((seq) => ({ seq, bytes: 100 })));

    expect(budget.entries).toBe(2);
    expect(budget.bytes).toBe(200);
  });

  it("keeps the newest entry even when it alone is over", () => {
    const budget = new HistoryBudget({ maxEntries: 10, maxBytes: 50 });

    expect(
      budget.add([
        { seq: 1, bytes: 10 },
        { seq: 2, bytes: 80 },
      ]),
    ).toBe(2);
    expect(budget.entries).toBe(1);
  });
});

describe("log publisher", () => {
  let valkey: LocalValkey;

  beforeAll(async () => {
    valkey = await LocalValkey.start();
    return () => valkey.stop();
  });

  function publisher(
    slug: string,
    buildId: string,
    overrides: Partial<LogPublisherOptions> = {},
  ): LogPublisher {
    const client = createValkeyClient(
      { url: valkey.url },
      { maxRetriesPerRequest: 0, enableOfflineQueue: false },
    );
    client.on("error", () => {});
    onTestFinished(() => {
      client.disconnect();
    });

    const log = new LogPublisher({
      slug: slug as Slug,
      buildId: buildId as BuildId,
      historyBuildsKept: 5,
      historyMaxEntries: 100_000,
      historyMaxBytes: 64 * 1024 * 1024,
      historyTtlSeconds: 600,
      historyRunningMarginSeconds: 100,
      queueMaxLines: 50_000,
      queueMaxBytes: 64 * 1024 * 1024,
      batchMaxLines: 500,
      batchMaxBytes: 64 * 1024,
      retryMaxDelayMs: 200,
      client,
      logger,
      ...overrides,
    });
    onTestFinished(() => log.close());
    return log;
  }

  it("sends lines read together in few calls, in order", async () => {
    const log = publisher("batches", "b1", { batchMaxLines: 100 });

    for (let i = 1; i <= 1000; i += 1) log.line("stdout", `line ${i}`, i);
    log.finish({ status: "succeeded", exitCode: 0, durationMs: 5 });

    expect(await log.flush(10_000)).toBe(0);
    expect(log.metrics.publishCalls).toBeLessThanOrEqual(12);
    // The first call waits for the connection: no failure, no retry.
    expect(log.metrics.publishRetries).toBe(0);

    const client = testClient(valkey.url);
    const history = await readHistory(client, "batches" as Slug, "b1");
    expect(history.map((e) => e.id)).toEqual(
      Array.from({ length: 1001 }, (_, i) => `0-${i + 1}`),
    );
    const status = JSON.parse(history.at(-1)!.payload) as BuilderStatusMessage;
    expect(status.metrics).toMatchObject({
      linesQueued: 1000,
      linesPublished: 1000,
      linesDropped: 0,
    });
  });

  it("keeps a build's stream under its byte cap", async () => {
    const log = publisher("bytes", "b1", {
      historyMaxBytes: 20_000,
      batchMaxLines: 10,
    });

    for (let i = 1; i <= 200; i += 1) {
      log.line("stdout", `${i} ${"x".repeat(900)}`, i);
    }
    expect(await log.flush(10_000)).toBe(0);

    const client = testClient(valkey.url);
    const history = await readHistory(client, "bytes" as Slug, "b1");
    const bytes = history.reduce((sum, e) => sum + e.payload.length, 0);
    expect(bytes).toBeLessThanOrEqual(20_000);
    expect(history.length).toBeGreaterThan(10);
    expect(history.at(-1)!.id).toBe("0-200");
  });

  it("gives the history a running TTL, then the final one after the status", async () => {
    const slug = "lifetime" as Slug;
    const log = publisher(slug, "b1");
    const client = testClient(valkey.url);
    const stream = historyKey(slug, "b1" as BuildId);

    log.line("stdout", "running", 1);
    await log.flush(10_000);
    expect(await client.ttl(stream)).toBeGreaterThan(600);

    log.finish({ status: "succeeded", exitCode: 0, durationMs: 5 });
    await log.flush(10_000);
    expect(await client.ttl(stream)).toBeLessThanOrEqual(600);
    expect(await client.ttl(buildsKey(slug))).toBeGreaterThan(600);
  });

  it("deletes the history of builds that fall off the list", async () => {
    const slug = "evict" as Slug;
    const client = testClient(valkey.url);

    for (const id of ["b1", "b2", "b3"]) {
      const log = publisher(slug, id, { historyBuildsKept: 2 });
      log.line("stdout", `from ${id}`, 1);
      await log.flush(10_000);
    }

    expect(await client.lrange(buildsKey(slug), 0, -1)).toEqual(["b3", "b2"]);
    expect(await client.exists(historyKey(slug, "b1" as BuildId))).toBe(0);
    expect(await client.exists(historyKey(slug, "b2" as BuildId))).toBe(1);
  });
});
