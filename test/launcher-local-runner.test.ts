/**
 * Local builds end to end: the launcher spawns the real `bin/builder`,
 * which clones a throwaway git repository, runs its build script and
 * publishes to Valkey, and the launcher records how it ended.
 *
 * These tests need the builder (builder/main.ts). Where it is absent they
 * are skipped, and say so in their name.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { constants } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { LocalValkey } from "../shared/local-valkey.ts";
import { historyKey } from "../shared/valkey-keys.ts";
import type { Slug } from "../shared/channel-name.ts";
import type { BuildId } from "../shared/wire.ts";
import { TestLauncher } from "./support/launcher-harness.ts";
import { ROOT } from "./support/service-process.ts";

const run = promisify(execFile);

const HAS_BUILDER = existsSync(join(ROOT, "builder/main.ts"));
const suite = HAS_BUILDER
  ? "local runner"
  : "local runner (skipped: builder/main.ts is not there yet)";

/**
 * A git repository with one commit: a package.json whose `build` script is
 * `buildScript`. Removed after the test.
 */
async function makeRepo(buildScript: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "launcher-repo-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));

  const pkg = {
    name: "site",
    version: "1.0.0",
    scripts: { build: buildScript },
  };
  await writeFile(join(dir, "package.json"), JSON.stringify(pkg, null, 2));

  const git = (...args: string[]) =>
    run(
      "git",
      ["-c", "user.name=test", "-c", "user.email=t@example.com", ...args],
      {
        cwd: dir,
      },
    );
  await git("init", "-q");
  await git("add", "package.json");
  await git("commit", "-q", "-m", "site");
  return `file://${dir}`;
}

/**
 * A FIFO a build script can block on (`cat <fifo>`) until `release` writes
 * to it. Opening it to write waits for the reader, so `release` returns
 * once the build has got that far. Clean-up opens it to read without
 * blocking, which frees a writer still waiting if the test failed.
 */
async function makeGate(): Promise<{
  path: string;
  release: () => Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), "launcher-gate-"));
  const path = join(dir, "gate");
  await run("mkfifo", [path]);
  onTestFinished(async () => {
    const unblock = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    await unblock.close();
    await rm(dir, { recursive: true, force: true });
  });

  const release = async () => {
    const writer = await open(path, "w");
    await writer.write("go\n");
    await writer.close();
  };
  return { path, release };
}

function expectOrdered(...isoTimes: string[]): void {
  const ms = isoTimes.map((t) => Date.parse(t));
  expect(ms.every((t) => Number.isFinite(t))).toBe(true);
  expect(ms).toEqual([...ms].sort((a, b) => a - b));
}

describe.skipIf(!HAS_BUILDER)(suite, () => {
  let valkey: LocalValkey;
  let launcher: TestLauncher;
  let inspector: Redis;

  // Each hook returns its clean-up, which vitest runs in reverse order.
  beforeAll(async () => {
    valkey = await LocalValkey.start();
    return () => valkey.stop();
  });

  beforeAll(async () => {
    launcher = await TestLauncher.start(valkey, { LOG_LEVEL: "info" });
    return () => launcher.close();
  });

  beforeAll(() => {
    inspector = new Redis(valkey.url);
    inspector.on("error", () => {});
    return async () => {
      await inspector.quit();
    };
  });

  it("runs a build with bin/builder and records it as succeeded", async () => {
    const gitUrl = await makeRepo("echo line one && echo line two");

    const posted = await launcher.request("POST", "/projects/site/builds", {
      gitUrl,
      installCommand: "true",
    });

    expect(posted.status).toBe(202);
    expect(posted.json).toEqual({
      buildId: expect.any(String),
      slug: "site",
      channel: "logs:site",
      status: "running",
    });
    const { buildId } = posted.json;

    const ended = await launcher.ended(buildId);
    expect(ended.json).toEqual({
      buildId,
      slug: "site",
      channel: "logs:site",
      status: "succeeded",
      runner: "local",
      createdAt: expect.any(String),
      startedAt: expect.any(String),
      endedAt: expect.any(String),
      exitCode: 0,
    });
    expectOrdered(
      ended.json.createdAt,
      ended.json.startedAt,
      ended.json.endedAt,
    );

    // The builder got the build's id, slug and Valkey: its log is there.
    const entries = await inspector.xrange(
      historyKey("site" as Slug, buildId as BuildId),
      "-",
      "+",
    );
    const lines = entries.map(([, fields]) => JSON.parse(fields[1]!).log);
    expect(lines).toContain("line one");
    expect(lines).toContain("line two");
  });

  it("records a build whose script exits 3 as failed with exit code 3", async () => {
    const gitUrl = await makeRepo("echo about to fail && exit 3");

    const posted = await launcher.request("POST", "/projects/site/builds", {
      gitUrl,
      installCommand: "true",
    });
    const ended = await launcher.ended(posted.json.buildId);

    expect(ended.json.status).toBe("failed");
    expect(ended.json.exitCode).toBe(3);
    expectOrdered(
      ended.json.createdAt,
      ended.json.startedAt,
      ended.json.endedAt,
    );
  });

  it("queues builds beyond LOCAL_MAX_CONCURRENT_BUILDS and starts them in turn", async () => {
    const single = await TestLauncher.start(valkey, {
      LOG_LEVEL: "info",
      LOCAL_MAX_CONCURRENT_BUILDS: "1",
    });
    onTestFinished(() => single.close());
    const gate = await makeGate();
    const blocked = await makeRepo(`echo waiting && cat ${gate.path}`);
    const quick = await makeRepo("echo quick");

    const first = await single.request("POST", "/projects/first/builds", {
      gitUrl: blocked,
      installCommand: "true",
    });
    const second = await single.request("POST", "/projects/second/builds", {
      gitUrl: quick,
      installCommand: "true",
    });

    expect(first.json.status).toBe("running");
    expect(second.json.status).toBe("queued");
    const waiting = await single.request(
      "GET",
      `/builds/${second.json.buildId}`,
    );
    expect(waiting.json.status).toBe("queued");
    expect(waiting.json.startedAt).toBeNull();
    expect(await single.metric("launcher_builds", { state: "queued" })).toBe(1);
    expect(await single.metric("launcher_builds", { state: "running" })).toBe(
      1,
    );

    await gate.release();
    const firstEnded = await single.ended(first.json.buildId);
    const secondEnded = await single.ended(second.json.buildId);

    expect(firstEnded.json.status).toBe("succeeded");
    expect(secondEnded.json.status).toBe("succeeded");
    expectOrdered(firstEnded.json.endedAt, secondEnded.json.startedAt);
    expect(await single.metric("launcher_builds", { state: "running" })).toBe(
      0,
    );
  });
});
