/**
 * Build records in Valkey: their TTL, that a final state is never
 * rewritten, and that a state change made while Valkey is away is written
 * once it is back. A scripted runner stands in for the real ones so the
 * test decides when a build starts and ends.
 */
import { once } from "node:events";
import { pino } from "pino";
import { Redis } from "ioredis";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { Slug } from "../shared/channel-name.ts";
import { LocalValkey } from "../shared/local-valkey.ts";
import { buildRecordKey } from "../shared/valkey-keys.ts";
import type { BuildId } from "../shared/wire.ts";
import type { BuildEvents, BuildRunner } from "../launcher/build-runner.ts";
import { BuildService } from "../launcher/build-service.ts";
import { BuildStore } from "../launcher/build-store.ts";
import { LauncherMetrics } from "../launcher/launcher-metrics.ts";
import { LogTap } from "./support/launcher-harness.ts";

const TTL_SECONDS = 3600;

/** A runner that starts every build at once and ends it when told. */
class ScriptedRunner implements BuildRunner {
  readonly name = "local";

  constructor(readonly events: BuildEvents) {}

  async launch(spec: { buildId: BuildId }) {
    this.events.started(spec.buildId, Date.now());
    return { status: "running" as const };
  }

  async observe() {
    return undefined;
  }

  counts() {
    return { queued: 0, running: 0 };
  }

  stopAccepting(): void {}

  async close(): Promise<void> {}
}

let valkey: LocalValkey;
let inspector: Redis;

// Each hook returns its clean-up, which vitest runs in reverse order.
beforeAll(async () => {
  // Persistent, so the records outlive a pause of the server.
  valkey = await LocalValkey.start({ persistent: true });
  return () => valkey.stop();
});

beforeAll(() => {
  inspector = new Redis(valkey.url);
  inspector.on("error", () => {});
  return async () => {
    await inspector.quit();
  };
});

async function startService() {
  const logs = new LogTap();
  const logger = pino({ level: "debug" }, logs);
  const store = new BuildStore({
    valkey: {
      url: valkey.url,
      caFile: undefined,
      urlIsExplicit: true,
      cluster: false,
    },
    buildRecordTtlSeconds: TTL_SECONDS,
    logger,
  });
  onTestFinished(() => store.close());
  if (!store.ready) await once(store.client, "ready");

  let runner: ScriptedRunner | undefined;
  const service = new BuildService({
    store,
    metrics: new LauncherMetrics(),
    logger,
    createRunner: (events) => (runner = new ScriptedRunner(events)),
  });
  onTestFinished(() => service.close(0));

  return { service, store, logs, runner: runner! };
}

const request = { gitUrl: "https://example.com/repo.git" };

describe("build records", () => {
  it("are created with the configured TTL", async () => {
    const { service, store } = await startService();

    const { buildId } = await service.start("site" as Slug, request);

    const ttl = await inspector.ttl(buildRecordKey(buildId));
    expect(ttl).toBeGreaterThan(TTL_SECONDS - 60);
    expect(ttl).toBeLessThanOrEqual(TTL_SECONDS);
    // The git URL may carry credentials and is not kept.
    const fields = await inspector.hgetall(buildRecordKey(buildId));
    expect(Object.values(fields)).not.toContain(request.gitUrl);
    expect((await store.get(buildId))?.status).toBe("running");
  });

  it("keep their final state against a later report", async () => {
    const { service, store, runner } = await startService();
    const { buildId } = await service.start("site" as Slug, request);

    runner.events.ended(buildId, 0, Date.now());
    expect(await store.transition(buildId, { status: "failed" })).toBe(false);
    expect(
      await store.transition(buildId, { status: "running", startedAt: 1 }),
    ).toBe(false);

    const view = await service.get(buildId);
    expect(view.status).toBe("succeeded");
    expect(view.exitCode).toBe(0);
  });

  it("are not created for a build id nobody started", async () => {
    const { store } = await startService();
    const buildId = "never-started" as BuildId;

    expect(await store.transition(buildId, { status: "running" })).toBe(false);
    expect(await inspector.exists(buildRecordKey(buildId))).toBe(0);
  });

  it("get a state change made while Valkey was away once it is back", async () => {
    const { service, store, runner, logs } = await startService();
    const { buildId } = await service.start("site" as Slug, request);

    const closed = once(store.client, "close");
    await valkey.pause();
    onTestFinished(() => valkey.resume());
    await closed;

    runner.events.ended(buildId, 7, Date.now());
    await logs.waitFor((r) => r.msg === "build record update deferred");

    const ready = once(store.client, "ready");
    await valkey.resume();
    await ready;

    expect(logs.withMsg("writing deferred updates")).toHaveLength(1);
    const view = await service.get(buildId);
    expect(view.status).toBe("failed");
    expect(view.exitCode).toBe(7);
  });
});
