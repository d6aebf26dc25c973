/**
 * Starts builds and answers for them: writes each build's record to the
 * store, hands the build to the runner, and turns what the runner reports
 * into state changes of the record.
 *
 * A state change that cannot be written (Valkey is away) is kept and
 * written again when the connection is back. Changes only move a record
 * forward (see BuildStore.transition), so a late write never undoes a
 * newer one.
 */
import { randomUUID } from "node:crypto";
import {
  channelName,
  type ChannelName,
  type Slug,
} from "../shared/channel-name.ts";
import type { Logger } from "../shared/logger.ts";
import type { BuildId } from "../shared/wire.ts";
import {
  isFinal,
  toBuildView,
  type BuildRecord,
  type BuildUpdate,
  type BuildView,
} from "./build-record.ts";
import type { BuildRequest } from "./build-request.ts";
import type {
  BuildEvents,
  BuildObservation,
  BuildRunner,
} from "./build-runner.ts";
import type { BuildStore } from "./build-store.ts";
import { BuildNotFoundError, DrainingError } from "./errors.ts";
import type { LauncherMetrics } from "./launcher-metrics.ts";

export interface BuildServiceOptions {
  store: BuildStore;
  metrics: LauncherMetrics;
  logger: Logger;
  /** Makes the runner, which reports back to the service it is given. */
  createRunner: (events: BuildEvents) => BuildRunner;
}

/** The answer to a build request. */
export interface AcceptedBuild {
  buildId: BuildId;
  slug: Slug;
  channel: ChannelName;
  status: "queued" | "running";
}

export class BuildService implements BuildEvents {
  readonly runner: BuildRunner;
  private readonly store: BuildStore;
  private readonly metrics: LauncherMetrics;
  private readonly logger: Logger;
  private readonly writes = new Set<Promise<void>>();
  private readonly unsaved = new Map<BuildId, BuildUpdate>();
  private acceptingBuilds = true;

  constructor(options: BuildServiceOptions) {
    this.store = options.store;
    this.metrics = options.metrics;
    this.logger = options.logger;
    this.runner = options.createRunner(this);

    this.store.client.on("ready", () => this.writeUnsaved());
  }

  /** False from the start of shutdown on. */
  get accepting(): boolean {
    return this.acceptingBuilds;
  }

  get storeConnected(): boolean {
    return this.store.ready;
  }

  async start(slug: Slug, request: BuildRequest): Promise<AcceptedBuild> {
    if (!this.acceptingBuilds) throw new DrainingError();

    const buildId = randomUUID() as BuildId;
    const runner = this.runner;
    await this.store.create({
      buildId,
      slug,
      status: "queued",
      runner: runner.name,
      createdAt: Date.now(),
      startedAt: undefined,
      endedAt: undefined,
      exitCode: null,
      taskArn: undefined,
    });

    let launched;
    try {
      launched = await runner.launch({
        buildId,
        slug,
        gitUrl: request.gitUrl,
        ref: request.ref,
        startDir: request.startDir,
        installCommand: request.installCommand,
        buildCommand: request.buildCommand,
      });
    } catch (err) {
      this.metrics.buildStarted(runner.name, "failed");
      await this.save(buildId, { status: "failed", endedAt: Date.now() });
      throw err;
    }

    this.metrics.buildStarted(runner.name, launched.status);
    if (launched.taskArn !== undefined) {
      await this.save(buildId, { taskArn: launched.taskArn });
    }
    this.logger.info(
      { buildId, slug, runner: runner.name, status: launched.status },
      "build accepted",
    );

    return {
      buildId,
      slug,
      channel: channelName(slug),
      status: launched.status,
    };
  }

  /**
   * The record of a build. One that has not ended is first looked at where
   * it runs, when the runner can see it from here.
   */
  async get(buildId: BuildId): Promise<BuildView> {
    const record = await this.store.get(buildId);
    if (!record) throw new BuildNotFoundError();
    if (isFinal(record.status)) return toBuildView(record);

    const seen = await this.runner.observe(record);
    const update = seen ? updateFrom(record, seen) : undefined;
    if (!update) return toBuildView(record);

    await this.save(buildId, update);
    return toBuildView({ ...record, ...update });
  }

  started(buildId: BuildId, startedAt: number): void {
    this.logger.info({ buildId }, "build started");
    void this.save(buildId, { status: "running", startedAt });
  }

  ended(buildId: BuildId, exitCode: number | null, endedAt: number): void {
    const status = exitCode === 0 ? "succeeded" : "failed";

    // Logged before the write is sent: a GET to this launcher after this
    // line reads over the same connection, after the write.
    this.logger.info({ buildId, status, exitCode }, "build ended");
    void this.save(buildId, { status, endedAt, exitCode });
  }

  /** Refuses builds from now on; the readiness check turns false. */
  stopAccepting(): void {
    this.acceptingBuilds = false;
    this.runner.stopAccepting();
  }

  /**
   * Lets the runner finish within `graceMs`, then waits for the record
   * writes that its last reports caused.
   */
  async close(graceMs: number): Promise<void> {
    this.stopAccepting();
    await this.runner.close(graceMs);
    await Promise.all(this.writes);

    if (this.unsaved.size > 0) {
      this.logger.error(
        { builds: this.unsaved.size },
        "build records left out of date",
      );
    }
  }

  /** Writes a state change; never rejects, keeps it for later instead. */
  private save(buildId: BuildId, update: BuildUpdate): Promise<void> {
    const write = this.store.transition(buildId, update).then(
      () => undefined,
      (err: unknown) => {
        this.logger.warn({ err, buildId }, "build record update deferred");
        this.unsaved.set(buildId, { ...this.unsaved.get(buildId), ...update });
      },
    );

    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
    return write;
  }

  private writeUnsaved(): void {
    const updates = [...this.unsaved.entries()];
    this.unsaved.clear();
    if (updates.length === 0) return;

    this.logger.info({ builds: updates.length }, "writing deferred updates");
    for (const [buildId, update] of updates) {
      void this.save(buildId, update);
    }
  }
}

/** The change a fresh look at a build makes to its record, if any. */
function updateFrom(
  record: BuildRecord,
  seen: BuildObservation,
): BuildUpdate | undefined {
  if (seen.status === "ended") {
    const exitCode = seen.exitCode ?? null;
    return {
      status: exitCode === 0 ? "succeeded" : "failed",
      startedAt: record.startedAt ?? seen.startedAt,
      endedAt: seen.endedAt ?? Date.now(),
      exitCode,
    };
  }
  if (seen.status === "running" && record.status === "queued") {
    return { status: "running", startedAt: seen.startedAt ?? Date.now() };
  }
  return undefined;
}
