/**
 * Publishes a build's log: numbers each message, queues it, and sends the
 * queue through the publish script in batches, in order, never blocking
 * the build.
 *
 * - Seq and ts are given when a line is read: 1, 2, 3 ... per build.
 * - Batches: whatever waits when a call can start, up to `batchMaxLines`
 *   messages or `batchMaxBytes` of payload. One call is in flight at a
 *   time, and a message is in one call only; a failed call is retried with
 *   the same batch (the script skips what a lost reply already applied),
 *   after a backoff of up to `retryMaxDelayMs` or as soon as the client is
 *   ready again.
 * - While Valkey is unreachable messages wait in a bounded queue
 *   (message-queue.ts). When it is full the oldest lines are dropped; when
 *   the next batch is taken (after the call in flight succeeds) or the
 *   final status is queued, whichever comes first, a drop notice takes the
 *   next seq and says how many lines, and which seq range, were lost
 *   (`DropNotice` in build-messages.ts).
 * - `finish` queues the final status; `flush` waits, bounded, for the queue
 *   to empty.
 */
import type { ValkeyClient } from "../shared/valkey-connection.ts";
import { channelName, type ChannelName } from "../shared/channel-name.ts";
import type { Logger } from "../shared/logger.ts";
import {
  buildsKey,
  historyEntryId,
  historyKey,
} from "../shared/valkey-keys.ts";
import type { BuildId, LogStream, Seq } from "../shared/wire.ts";
import {
  dropNoticeText,
  lineMessage,
  statusText,
  type BuildResult,
  type BuilderStatusMessage,
  type DropNotice,
  type LineFields,
  type PublisherMetrics,
} from "./build-messages.ts";
import type { BuilderOptions } from "./config.ts";
import { FlushTimeoutError, PublishError } from "./errors.ts";
import { HistoryBudget } from "./history-budget.ts";
import { MessageQueue, type QueuedMessage } from "./message-queue.ts";
import { runPublishScript, type PublishCall } from "./publish-script.ts";

export type LogPublisherOptions = Pick<
  BuilderOptions,
  | "slug"
  | "buildId"
  | "historyBuildsKept"
  | "historyMaxEntries"
  | "historyMaxBytes"
  | "historyTtlSeconds"
  | "historyRunningMarginSeconds"
  | "queueMaxLines"
  | "queueMaxBytes"
  | "batchMaxLines"
  | "batchMaxBytes"
  | "retryMaxDelayMs"
> & {
  /** Its `error` listener is the caller's; commands must fail fast. */
  client: ValkeyClient;
  logger: Logger;
  /** Milliseconds since the epoch. Default Date.now. */
  clock?: () => number;
};

interface Batch {
  messages: QueuedMessage[];
  call: PublishCall;
}

const FIRST_RETRY_DELAY_MS = 50;

export class LogPublisher {
  private readonly client: ValkeyClient;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly buildId: BuildId;
  private readonly channel: ChannelName;
  private readonly historyKey: string;
  private readonly buildsKey: string;
  private readonly queue: MessageQueue;
  private readonly budget: HistoryBudget;

  private seq: Seq = 0;
  private registered = false;
  private finished = false;
  private closed = false;

  private pumping = false;
  private inFlight: Batch | undefined;
  private wakeRetry: (() => void) | undefined;
  /** The connection has been ready at least once since the build began. */
  private everConnected = false;
  private idleWaiters: Array<() => void> = [];

  // Drops not yet announced by a drop notice.
  private unreported: DropNotice | undefined;
  private status:
    { queued: QueuedMessage; message: BuilderStatusMessage } | undefined;

  private readonly counters = {
    linesDropped: 0,
    linesPublished: 0,
    bytesPublished: 0,
    queueMaxLinesSeen: 0,
    publishCalls: 0,
    publishRetries: 0,
    publishLatencyMsTotal: 0,
    publishLatencyMsMax: 0,
  };

  constructor(private readonly options: LogPublisherOptions) {
    this.client = options.client;
    this.logger = options.logger;
    this.clock = options.clock ?? Date.now;
    this.buildId = options.buildId;
    this.channel = channelName(options.slug);
    this.historyKey = historyKey(options.slug, options.buildId);
    this.buildsKey = buildsKey(options.slug);
    this.queue = new MessageQueue({
      maxLines: options.queueMaxLines,
      maxBytes: options.queueMaxBytes,
    });
    this.budget = new HistoryBudget({
      maxEntries: options.historyMaxEntries,
      maxBytes: options.historyMaxBytes,
    });
  }

  /** Queues one line read at `tsMs`; it takes the next seq. */
  line(
    stream: LogStream,
    text: string,
    tsMs: number,
    fields?: LineFields,
  ): void {
    if (this.finished) return;

    const message = lineMessage(
      {
        log: text,
        buildId: this.buildId,
        seq: this.nextSeq(),
        ts: tsMs,
        stream,
      },
      fields,
    );
    this.enqueue(JSON.stringify(message), message.seq, true);
  }

  /** Queues a line of the builder's own, stamped now. */
  system(text: string, fields?: LineFields): void {
    this.line("system", text, this.clock(), fields);
  }

  /**
   * Queues the final status, after a drop notice if lines were dropped
   * since the last one. Nothing is queued after it.
   */
  finish(result: BuildResult): void {
    if (this.finished) return;

    this.queueDropNotice();
    this.finished = true;

    const status: BuilderStatusMessage = {
      type: "status",
      log: statusText(result),
      buildId: this.buildId,
      seq: this.nextSeq(),
      ts: this.clock(),
      stream: "system",
      status: result.status,
      exitCode: result.exitCode,
      durationMs: result.durationMs,
      ...(result.failedStep ? { failedStep: result.failedStep } : {}),
    };
    // The metrics are added when the status is sent, to count everything
    // published before it.
    const queued = this.enqueue(JSON.stringify(status), status.seq, false);
    this.status = { queued, message: status };
  }

  /**
   * Waits until every queued message is published, or `timeoutMs` passed.
   * Resolves with the number of messages left unpublished (0 when done);
   * logs an error when some are.
   */
  async flush(timeoutMs: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    let waiter: (() => void) | undefined;

    await new Promise<void>((resolve) => {
      if (this.isIdle()) return resolve();
      waiter = resolve;
      this.idleWaiters.push(resolve);
      timer = setTimeout(resolve, timeoutMs);
    });

    clearTimeout(timer);
    this.idleWaiters = this.idleWaiters.filter((w) => w !== waiter);

    const remaining = this.pendingCount();
    if (remaining > 0) {
      const err = new FlushTimeoutError("log lines left unpublished");
      this.logger.error({ err, remaining, timeoutMs }, "log flush timed out");
    }
    return remaining;
  }

  /** Stops publishing; what is still queued is abandoned. */
  close(): void {
    this.closed = true;
    this.wakeRetry?.();
    this.notifyIdle();
  }

  /** Messages queued or in flight. */
  pendingCount(): number {
    return this.queue.length + (this.inFlight?.messages.length ?? 0);
  }

  get metrics(): PublisherMetrics {
    const c = this.counters;
    return {
      linesQueued: this.finished ? this.seq - 1 : this.seq,
      linesPublished: c.linesPublished,
      bytesPublished: c.bytesPublished,
      linesDropped: c.linesDropped,
      queueMaxLinesSeen: c.queueMaxLinesSeen,
      publishCalls: c.publishCalls,
      publishRetries: c.publishRetries,
      publishLatencyMsAvg:
        c.publishCalls === 0
          ? 0
          : Math.round(c.publishLatencyMsTotal / c.publishCalls),
      publishLatencyMsMax: c.publishLatencyMsMax,
    };
  }

  private nextSeq(): Seq {
    this.seq += 1;
    return this.seq;
  }

  private enqueue(
    payload: string,
    seq: Seq,
    droppable: boolean,
  ): QueuedMessage {
    const message: QueuedMessage = {
      seq,
      payload,
      bytes: Buffer.byteLength(payload),
      droppable,
    };

    const dropped = this.queue.push(message);
    for (const lost of dropped) this.recordDrop(lost);

    this.counters.queueMaxLinesSeen = Math.max(
      this.counters.queueMaxLinesSeen,
      this.queue.length,
    );
    this.kick();
    return message;
  }

  private recordDrop(message: QueuedMessage): void {
    this.counters.linesDropped += 1;

    if (!this.unreported) {
      this.logger.warn(
        { queued: this.queue.length, queuedBytes: this.queue.bytes },
        "log queue full, dropping oldest lines",
      );
      this.unreported = {
        dropped: 0,
        droppedFromSeq: message.seq,
        droppedToSeq: message.seq,
      };
    }
    this.unreported.dropped += 1;
    this.unreported.droppedToSeq = message.seq;
  }

  private queueDropNotice(): void {
    const notice = this.unreported;
    if (!notice) return;

    this.unreported = undefined;
    this.logger.warn({ ...notice }, "log lines dropped");

    const message = lineMessage(
      {
        log: dropNoticeText(notice),
        buildId: this.buildId,
        seq: this.nextSeq(),
        ts: this.clock(),
        stream: "system",
      },
      notice,
    );
    this.enqueue(JSON.stringify(message), message.seq, false);
  }

  /** Starts the send loop unless it runs already. */
  private kick(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;

    void this.pump()
      .catch((err: unknown) => {
        this.logger.error({ err }, "log publisher failed");
      })
      .finally(() => {
        this.pumping = false;
        if (this.queue.length > 0 && !this.closed) this.kick();
        else this.notifyIdle();
      });
  }

  private async pump(): Promise<void> {
    // Let the lines of the chunk being read join the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));

    while (!this.closed) {
      const batch = this.nextBatch();
      if (!batch) return;

      this.inFlight = batch;
      const sent = await this.send(batch);
      this.inFlight = undefined;
      if (!sent) return;
    }
  }

  private nextBatch(): Batch | undefined {
    // Lines dropped since the last batch are announced before the next one
    // is taken, so each notice covers one unbroken run of dropped seqs.
    this.queueDropNotice();

    const messages = this.queue.take(
      this.options.batchMaxLines,
      this.options.batchMaxBytes,
    );
    if (messages.length === 0) return undefined;

    const last = messages.at(-1)!;
    const final = last === this.status?.queued;
    if (final) this.addMetrics(messages.slice(0, -1));

    const trimSeq = this.budget.add(messages);
    const o = this.options;
    const call: PublishCall = {
      historyKey: this.historyKey,
      buildsKey: this.buildsKey,
      channel: this.channel,
      buildId: this.buildId,
      registerBuild: !this.registered,
      buildsKept: o.historyBuildsKept,
      maxEntries: o.historyMaxEntries,
      ttlSeconds: final
        ? o.historyTtlSeconds
        : o.historyTtlSeconds + o.historyRunningMarginSeconds,
      trimMinId: trimSeq === undefined ? undefined : historyEntryId(trimSeq),
      entries: messages.map((m) => ({
        seq: m.seq,
        entryId: historyEntryId(m.seq),
        payload: m.payload,
      })),
    };
    return { messages, call };
  }

  /** Counts the messages sent with the status as already published. */
  private addMetrics(sentWith: readonly QueuedMessage[]): void {
    const status = this.status!;
    const metrics = this.metrics;
    for (const message of sentWith) {
      metrics.linesPublished += 1;
      metrics.bytesPublished += message.bytes;
    }

    status.queued.payload = JSON.stringify({ ...status.message, metrics });
    status.queued.bytes = Buffer.byteLength(status.queued.payload);
  }

  /** Sends a batch until it is accepted; false when closed before that. */
  private async send(batch: Batch): Promise<boolean> {
    let attempt = 0;

    while (!this.closed) {
      const startedMs = performance.now();
      const wasReady = this.client.status === "ready";
      if (wasReady) this.everConnected = true;
      try {
        const reply = await runPublishScript(this.client, batch.call);
        this.recordSuccess(batch, performance.now() - startedMs);
        await this.deleteEvicted(reply.evictedBuildIds);
        return true;
      } catch (cause) {
        if (this.closed) return false;

        attempt += 1;
        // A call made before the connection was ever up waits for it; it
        // is no failure of a publish.
        if (this.everConnected) this.counters.publishRetries += 1;
        const err = new PublishError("publish script call failed", { cause });
        // A call refused while disconnected is the outage the connection's
        // own listeners report; a call failing on a live connection is news,
        // once.
        const level = wasReady && attempt === 1 ? "warn" : "debug";
        this.logger[level](
          { err, attempt, queued: this.pendingCount() },
          "log publish failed, retrying",
        );
        await this.waitBeforeRetry(attempt);
      }
    }
    return false;
  }

  private recordSuccess(batch: Batch, latencyMs: number): void {
    const c = this.counters;
    c.publishCalls += 1;
    c.publishLatencyMsTotal += latencyMs;
    c.publishLatencyMsMax = Math.max(
      c.publishLatencyMsMax,
      Math.round(latencyMs),
    );

    for (const message of batch.messages) {
      if (message === this.status?.queued) continue;
      c.linesPublished += 1;
      c.bytesPublished += message.bytes;
    }

    if (batch.call.registerBuild) this.registered = true;
    this.logger.trace(
      { messages: batch.messages.length, latencyMs },
      "log batch published",
    );
  }

  /** Deletes the streams of builds that fell off the builds list. */
  private async deleteEvicted(buildIds: readonly string[]): Promise<void> {
    if (buildIds.length === 0) return;

    const keys = buildIds.map((id) =>
      historyKey(this.options.slug, id as BuildId),
    );
    try {
      await this.client.unlink(...keys);
      this.logger.info({ evicted: buildIds }, "old build history deleted");
    } catch (err) {
      // The streams expire on their own; deleting them is only sooner.
      this.logger.warn({ err, evicted: buildIds }, "old build history kept");
    }
  }

  private waitBeforeRetry(attempt: number): Promise<void> {
    const delayMs = Math.min(
      FIRST_RETRY_DELAY_MS * 2 ** (attempt - 1),
      this.options.retryMaxDelayMs,
    );

    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.client.off("ready", wake);
        this.wakeRetry = undefined;
        resolve();
      };
      const timer = setTimeout(wake, delayMs);
      this.client.on("ready", wake);
      this.wakeRetry = wake;
    });
  }

  private isIdle(): boolean {
    return this.closed || (!this.pumping && this.queue.length === 0);
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
