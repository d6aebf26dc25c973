/**
 * `bin/launcher` as a real process: its usage text, its exit status on a
 * bad configuration, its `ready` line, and a SIGTERM that lets running
 * local builds finish (or stops them once the grace period is over).
 *
 * A clean exit after SIGTERM also shows that nothing was left open: the
 * launcher never calls process.exit on that path, so a leaked server,
 * socket or timer would keep it alive and fail the test.
 */
import { execFile } from "node:child_process";
import { constants, existsSync } from "node:fs";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { LocalValkey } from "../shared/local-valkey.ts";
import { buildRecordKey } from "../shared/valkey-keys.ts";
import type { BuildId } from "../shared/wire.ts";
import { ROOT, ServiceProcess } from "./support/service-process.ts";

const run = promisify(execFile);
const HAS_BUILDER = existsSync(join(ROOT, "builder/main.ts"));

let valkey: LocalValkey;
let inspector: Redis;

// Each hook returns its clean-up, which vitest runs in reverse order.
beforeAll(async () => {
  valkey = await LocalValkey.start();
  return () => valkey.stop();
});

beforeAll(() => {
  inspector = new Redis(valkey.url);
  inspector.on("error", () => {});
  return async () => {
    await inspector.quit();
  };
});

function startLauncher(env: Record<string, string> = {}): ServiceProcess {
  const launcher = new ServiceProcess("launcher", [], {
    PORT: "0",
    HOST: "127.0.0.1",
    REDIS_URL: valkey.url,
    ...env,
  });
  onTestFinished(async () => {
    await launcher.stop("SIGKILL");
  });
  return launcher;
}

describe("bin/launcher", () => {
  it("prints usage naming every variable for --help", async () => {
    const { stdout } = await run(join(ROOT, "bin/launcher"), ["--help"], {
      cwd: ROOT,
    });

    for (const name of [
      "PORT",
      "HOST",
      "LOG_LEVEL",
      "RUNNER",
      "LOCAL_MAX_CONCURRENT_BUILDS",
      "SHUTDOWN_GRACE_MS",
      "BUILD_RECORD_TTL_SECONDS",
      "HTTP_BODY_LIMIT_BYTES",
      "REDIS_URL",
      "VALKEY_CA_FILE",
      "ECS_CLUSTER",
      "ECS_TASK_DEFINITION",
      "ECS_SUBNETS",
      "ECS_SECURITY_GROUPS",
      "ECS_ASSIGN_PUBLIC_IP",
      "ECS_CONTAINER_NAME",
      "AWS_REGION",
      "AWS_ENDPOINT_URL_ECS",
      "ECS_POLL_INTERVAL_MS",
      "ECS_MAX_ATTEMPTS",
    ]) {
      expect(stdout).toContain(name);
    }
  });

  it.each([
    ["a port out of range", { PORT: "70000" }, "PORT"],
    ["an unknown runner", { RUNNER: "docker" }, "RUNNER"],
    ["ECS without a cluster", { RUNNER: "ecs" }, "ECS_CLUSTER"],
    ["a bad Valkey URL", { REDIS_URL: "http://x" }, "REDIS_URL"],
  ])("exits 2 naming the variable for %s", async (_name, env, variable) => {
    const launcher = startLauncher(env);

    expect(await launcher.exit()).toBe(2);
    expect(launcher.stderr.join("\n")).toContain(variable);
  });

  it("logs ready with its port, serves, and exits 0 on SIGTERM", async () => {
    const launcher = startLauncher();
    const port = await launcher.ready();

    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(await health.json()).toEqual({ status: "ok" });

    expect(await launcher.stop("SIGTERM")).toBe(0);
    expect(launcher.logs.map((r) => r.msg)).toContain("stopped");
  });
});

/** A one-commit repository whose build script is `buildScript`. */
async function makeRepo(buildScript: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "launcher-repo-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));

  const pkg = {
    name: "site",
    version: "1.0.0",
    scripts: { build: buildScript },
  };
  await writeFile(join(dir, "package.json"), JSON.stringify(pkg));

  const git = (...args: string[]) =>
    run(
      "git",
      ["-c", "user.name=test", "-c", "user.email=t@example.com", ...args],
      { cwd: dir },
    );
  await git("init", "-q");
  await git("add", "package.json");
  await git("commit", "-q", "-m", "site");
  return `file://${dir}`;
}

/**
 * A FIFO a build blocks on with `cat`. `release` opens it to write, which
 * waits until the build reads. Clean-up frees both sides whatever state
 * the test left them in: a waiting writer by opening to read, a waiting
 * reader by writing, neither of which blocks.
 */
async function makeGate() {
  const dir = await mkdtemp(join(tmpdir(), "launcher-gate-"));
  const path = join(dir, "gate");
  await run("mkfifo", [path]);
  onTestFinished(async () => {
    const reader = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const writer = await open(
        path,
        constants.O_WRONLY | constants.O_NONBLOCK,
      );
      await writer.write("go\n");
      await writer.close();
    } finally {
      await reader.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  return {
    path,
    release: async () => {
      const writer = await open(path, "w");
      await writer.write("go\n");
      await writer.close();
    },
  };
}

async function postBuild(port: number, gitUrl: string): Promise<BuildId> {
  const response = await fetch(
    `http://127.0.0.1:${port}/projects/site/builds`,
    {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ gitUrl, installCommand: "true" }),
    },
  );
  expect(response.status).toBe(202);
  const body = (await response.json()) as { buildId: BuildId };
  return body.buildId;
}

describe.skipIf(!HAS_BUILDER)(
  HAS_BUILDER
    ? "bin/launcher shutdown with local builds"
    : "bin/launcher shutdown with local builds (skipped: no builder/main.ts yet)",
  () => {
    it("lets a running build finish after SIGTERM, then exits 0", async () => {
      const gate = await makeGate();
      const gitUrl = await makeRepo(`echo waiting && cat ${gate.path}`);
      const launcher = startLauncher({ SHUTDOWN_GRACE_MS: "60000" });
      const port = await launcher.ready();
      const buildId = await postBuild(port, gitUrl);
      await launcher.waitForLog(
        (r) => r.msg === "build started" && r.buildId === buildId,
      );

      launcher.child.kill("SIGTERM");
      await launcher.waitForLog((r) => r.msg === "waiting for local builds");
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
      await gate.release();

      expect(await launcher.exit()).toBe(0);
      const record = await inspector.hgetall(buildRecordKey(buildId));
      expect(record.status).toBe("succeeded");
      expect(record.exitCode).toBe("0");
    });

    it("stops a build still running when the grace period is over", async () => {
      const gate = await makeGate();
      const gitUrl = await makeRepo(`echo waiting && cat ${gate.path}`);
      const launcher = startLauncher({ SHUTDOWN_GRACE_MS: "0" });
      const port = await launcher.ready();
      const buildId = await postBuild(port, gitUrl);
      // The build is blocked once the gate has a reader.
      await launcher.waitForLog(
        (r) => r.msg === "build started" && r.buildId === buildId,
      );

      launcher.child.kill("SIGTERM");

      expect(await launcher.exit()).toBe(0);
      expect(launcher.logs.map((r) => r.msg)).toContain(
        "grace period over, stopping local builds",
      );
      const record = await inspector.hgetall(buildRecordKey(buildId));
      expect(record.status).toBe("failed");
      expect(record.exitCode).not.toBe("0");
    });
  },
);
