/**
 * The benchmark's builds: a process, forked by build-publisher.ts, that
 * publishes lines of examples/log-generator's shapes for many builds at
 * once, each at a set rate, through the builder's own LogPublisher (one
 * script call writes history and PUBLISHes, as in production). Every
 * system under test reads the same Valkey channel, so every one sees
 * exactly the same traffic.
 */
import { Redis } from "ioredis";
import { pino } from "pino";
import { createLineSource } from "../../examples/log-generator/log-lines.mjs";
import { readBuilderConfig } from "../../builder/config.ts";
import { LogPublisher } from "../../builder/log-publisher.ts";
import type { PublishedBuild, PublisherRequest } from "./build-publisher.ts";

const TICK_MS = 5;
const FLUSH_TIMEOUT_MS = 60_000;

interface RunningBuild {
  slug: string;
  buildId: string;
  publisher: LogPublisher;
  source: ReturnType<typeof createLineSource>;
  written: number;
}

async function run(request: Extract<PublisherRequest, { type: "run" }>) {
  const client = new Redis(request.valkeyUrl, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
  });
  client.on("error", () => {
    // The publisher retries; a lasting failure shows as a flush timeout.
  });
  await new Promise<void>((resolve) => client.once("ready", resolve));

  const logger = pino({ level: "silent" });
  const builds: RunningBuild[] = request.builds.map((build, i) => {
    const options = readBuilderConfig({
      PROJECT_ID: build.slug,
      GIT_REPOSITORY_URL: "synthetic",
      BUILD_ID: build.buildId,
    });
    return {
      ...build,
      publisher: new LogPublisher({ ...options, client, logger }),
      source: createLineSource({ seed: request.seed + i }),
      written: 0,
    };
  });

  const linesPerBuild = Math.floor(
    (request.durationMs / 1000) * request.linesPerSecondPerBuild,
  );
  const startedAtMs = Date.now();

  while (builds.some((b) => b.written < linesPerBuild)) {
    const elapsedMs = Date.now() - startedAtMs;
    const due = Math.min(
      linesPerBuild,
      Math.floor((elapsedMs / 1000) * request.linesPerSecondPerBuild) + 1,
    );
    const now = Date.now();
    for (const build of builds) {
      for (; build.written < due; build.written++) {
        const line = build.source.next();
        build.publisher.line(line.stream, line.text, now);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
  }

  for (const build of builds) {
    build.publisher.finish({
      status: "succeeded",
      exitCode: 0,
      durationMs: Date.now() - startedAtMs,
    });
  }
  const left = await Promise.all(
    builds.map((b) => b.publisher.flush(FLUSH_TIMEOUT_MS)),
  );
  const publishedAtMs = Date.now();

  for (const build of builds) build.publisher.close();
  client.disconnect();

  const published: PublishedBuild[] = builds.map((b, i) => ({
    slug: b.slug,
    buildId: b.buildId,
    // The lines, then the status.
    lastSeq: b.written + 1,
    unpublished: left[i]!,
  }));
  return { startedAtMs, publishedAtMs, builds: published };
}

process.on("message", (request: PublisherRequest) => {
  if (request.type !== "run") return;
  run(request).then(
    (result) => process.send?.({ type: "done", ...result }),
    (err: unknown) => {
      process.send?.({ type: "failed", message: String(err) });
    },
  );
});

process.on("disconnect", () => process.exit(0));
