/**
 * One launcher: the build store, the runner the options name, the build
 * service and its HTTP app, started and stopped together.
 */
import type { FastifyInstance } from "fastify";
import type { Logger } from "../shared/logger.ts";
import type { BuildEvents, BuildRunner } from "./build-runner.ts";
import { BuildService } from "./build-service.ts";
import { BuildStore } from "./build-store.ts";
import type { LauncherOptions } from "./config.ts";
import { EcsRunner, type EcsRunnerOptions } from "./ecs-runner.ts";
import { createHttpApp } from "./http-app.ts";
import { LauncherMetrics } from "./launcher-metrics.ts";
import { LocalRunner } from "./local-runner.ts";

export interface LauncherDeps {
  logger: Logger;
  /** Fixed AWS credentials, for an ECS stand-in in tests. */
  ecsCredentials?: EcsRunnerOptions["credentials"];
}

export class Launcher {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly options: LauncherOptions,
    readonly app: FastifyInstance,
    readonly service: BuildService,
    readonly store: BuildStore,
    readonly metrics: LauncherMetrics,
    private readonly logger: Logger,
  ) {}

  /** Starts listening; Valkey may still be connecting when this returns. */
  static async start(
    options: LauncherOptions,
    deps: LauncherDeps,
  ): Promise<Launcher> {
    const { logger } = deps;
    const store = new BuildStore({
      valkey: options.valkey,
      buildRecordTtlSeconds: options.buildRecordTtlSeconds,
      logger,
    });

    const metrics = new LauncherMetrics();
    const service = new BuildService({
      store,
      metrics,
      logger,
      createRunner: (events) => createRunner(options, deps, events, metrics),
    });
    metrics.countBuildsWith(() => service.runner.counts());

    const app = createHttpApp({
      service,
      metrics,
      logger,
      httpBodyLimitBytes: options.httpBodyLimitBytes,
    });
    const launcher = new Launcher(
      options,
      app,
      service,
      store,
      metrics,
      logger,
    );

    try {
      await app.listen({ port: options.port, host: options.host });
    } catch (err) {
      await launcher.close();
      throw err;
    }
    return launcher;
  }

  /** The port the server listens on, once started. */
  get port(): number {
    const address = this.app.server.address();
    return typeof address === "object" && address ? address.port : 0;
  }

  /**
   * Stops taking requests, gives running local builds the grace period,
   * then lets go of Valkey. Safe to call more than once.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.logger.info(
      { graceMs: this.options.shutdownGraceMs },
      "shutting down",
    );

    this.service.stopAccepting();
    await this.app.close();
    await this.service.close(this.options.shutdownGraceMs);
    await this.store.close();
  }
}

function createRunner(
  options: LauncherOptions,
  deps: LauncherDeps,
  events: BuildEvents,
  metrics: LauncherMetrics,
): BuildRunner {
  const common = {
    valkeyUrl: options.valkey.url,
    logLevel: options.logLevel,
    events,
    logger: deps.logger,
  };

  if (options.runner === "ecs" && options.ecs) {
    return new EcsRunner({
      ...common,
      ecs: options.ecs,
      metrics,
      credentials: deps.ecsCredentials,
    });
  }
  return new LocalRunner({
    ...common,
    maxConcurrentBuilds: options.localMaxConcurrentBuilds,
    inheritedEnv: options.inheritedEnv,
  });
}
