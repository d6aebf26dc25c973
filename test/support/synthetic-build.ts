/**
 * Publishes a build's log the way the real builder does, through the
 * builder's own LogPublisher (history and live in one script), without
 * cloning or running anything: for relay tests that need many lines at a
 * known rate.
 */
import { pino } from "pino";
import { onTestFinished } from "vitest";
import { readBuilderConfig } from "../../builder/config.ts";
import { LogPublisher } from "../../builder/log-publisher.ts";
import { createValkeyClient } from "../../shared/valkey-connection.ts";

export interface SyntheticBuild {
  publisher: LogPublisher;
  /** Queues `count` stdout lines `line <n>`; returns the last seq used. */
  lines(count: number): void;
  /** Queues the final status and waits until everything is published. */
  finish(exitCode?: number): Promise<void>;
  /** Waits until everything queued so far is published. */
  flush(): Promise<void>;
  close(): void;
}

export function syntheticBuild(
  valkeyUrl: string,
  slug: string,
  buildId: string,
  env: Record<string, string> = {},
  { cluster = false } = {},
): SyntheticBuild {
  const options = readBuilderConfig({
    PROJECT_ID: slug,
    GIT_REPOSITORY_URL: "synthetic",
    BUILD_ID: buildId,
    ...env,
  });
  // A cluster client queues until it has read the slot map.
  const client = createValkeyClient(
    { url: valkeyUrl, cluster },
    {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: cluster,
      retryStrategy: () => 100,
    },
  );
  client.on("error", () => {});

  const publisher = new LogPublisher({
    ...options,
    client,
    logger: pino({ level: "silent" }),
  });
  let written = 0;
  const startedAt = Date.now();

  const build: SyntheticBuild = {
    publisher,
    lines(count) {
      for (let i = 0; i < count; i++) {
        written += 1;
        publisher.line("stdout", `line ${written}`, Date.now());
      }
    },
    async finish(exitCode = 0) {
      publisher.finish({
        status: exitCode === 0 ? "succeeded" : "failed",
        exitCode,
        durationMs: Date.now() - startedAt,
      });
      await build.flush();
    },
    async flush() {
      const left = await publisher.flush(30_000);
      if (left > 0) throw new Error(`${left} messages left unpublished`);
    },
    close() {
      publisher.close();
      client.disconnect();
    },
  };
  onTestFinished(() => build.close());
  return build;
}
