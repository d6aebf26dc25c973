import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import type { Slug } from "../shared/channel-name.ts";
import { LocalValkey } from "../shared/local-valkey.ts";
import { buildsKey, historyKey } from "../shared/valkey-keys.ts";
import type { BuildId, LogMessage } from "../shared/wire.ts";
import type {
  BuilderLineMessage,
  BuilderStatusMessage,
} from "../builder/build-messages.ts";
import {
  commitFiles,
  git,
  LogSubscriber,
  makeRepo,
  readHistory,
  startBuilder,
  testClient,
} from "./support/builder-harness.ts";
import { ROOT } from "./support/service-process.ts";

const run = promisify(execFile);

// Writes to stdout and stderr, with colour codes and a progress line.
const PRINTING_BUILD = `
const out = (text) => process.stdout.write(text + "\\n");
const err = (text) => process.stderr.write(text + "\\n");
for (let i = 1; i <= 20; i += 1) out("out " + i);
err("err 1");
out("\\u001b[32mgreen\\u001b[0m");
err("err 2");
process.stdout.write("progress 1\\rprogress 2\\rprogress done\\n");
err("err 3");
process.stdout.write("last line without newline");
`;

const FAILING_BUILD = `
for (let i = 1; i <= 5; i += 1) console.log("step " + i);
console.error("something broke");
process.exit(3);
`;

/** The committed files of examples/site, by path. */
async function exampleSite(): Promise<Record<string, string>> {
  const root = join(ROOT, "examples/site");
  const files: Record<string, string> = {};
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name).slice(root.length + 1);
    if (path.startsWith("dist/") || path.startsWith("node_modules/")) continue;
    files[path] = await readFile(join(root, path), "utf8");
  }
  return files;
}

function lines(messages: LogMessage[], stream: string): string[] {
  return messages.filter((m) => m.stream === stream).map((m) => m.log);
}

/** The lines a step printed to `stream`, between its start and its end. */
function stepOutput(
  messages: LogMessage[],
  step: string,
  stream: string,
): string[] {
  const all = messages as BuilderLineMessage[];
  const start = all.findIndex((m) => m.step === step && m.phase === "start");
  const end = all.findIndex((m) => m.step === step && m.phase === "end");
  return lines(all.slice(start + 1, end), stream);
}

function stepLines(messages: LogMessage[]): BuilderLineMessage[] {
  return (messages as BuilderLineMessage[]).filter((m) => m.step);
}

describe("builder run", () => {
  let valkey: LocalValkey;

  beforeAll(async () => {
    valkey = await LocalValkey.start();
    return () => valkey.stop();
  });

  function builderEnv(slug: string, buildId: string, repo: string) {
    return {
      PROJECT_ID: slug,
      BUILD_ID: buildId,
      GIT_REPOSITORY_URL: repo,
      INSTALL_COMMAND: "echo installing",
      BUILD_COMMAND: "node build.mjs",
      REDIS_URL: valkey.url,
    };
  }

  it("publishes every line of a build in order, live and to history", async () => {
    const slug = "run-ok" as Slug;
    const repo = await makeRepo({ "build.mjs": PRINTING_BUILD });
    const subscriber = await LogSubscriber.start(valkey.url, slug);

    const builder = startBuilder(builderEnv(slug, "build-ok", repo));
    const status = (await subscriber.status()) as BuilderStatusMessage;

    expect(await builder.exit()).toBe(0);
    expect(status).toMatchObject({
      type: "status",
      status: "succeeded",
      exitCode: 0,
      buildId: "build-ok",
      stream: "system",
    });
    expect(status.durationMs).toBeGreaterThan(0);
    expect(status.log).toMatch(/succeeded/);

    const messages = subscriber.messages;
    expect(messages.map((m) => m.seq)).toEqual(messages.map((_, i) => i + 1));
    expect(messages.at(-1)).toBe(status);
    for (const message of messages) {
      expect(message.buildId).toBe("build-ok");
      expect(typeof message.ts).toBe("number");
    }

    expect(stepOutput(messages, "install", "stdout")).toEqual(["installing"]);
    expect(stepOutput(messages, "build", "stdout")).toEqual([
      ...Array.from({ length: 20 }, (_, i) => `out ${i + 1}`),
      "\u001b[32mgreen\u001b[0m",
      "progress 1",
      "progress done",
      "last line without newline",
    ]);
    expect(stepOutput(messages, "build", "stderr")).toEqual([
      "err 1",
      "err 2",
      "err 3",
    ]);

    expect(
      stepLines(messages).map((m) => [m.step, m.phase, m.exitCode]),
    ).toEqual([
      ["clone", "start", undefined],
      ["clone", "end", 0],
      ["install", "start", undefined],
      ["install", "end", 0],
      ["build", "start", undefined],
      ["build", "end", 0],
    ]);
    for (const end of stepLines(messages).filter((m) => m.phase === "end")) {
      expect(end.durationMs).toBeGreaterThanOrEqual(0);
    }

    const client = testClient(valkey.url);
    const history = await readHistory(client, slug, "build-ok");
    expect(history.map((entry) => entry.id)).toEqual(
      messages.map((m) => `0-${m.seq}`),
    );
    expect(history.map((entry) => entry.payload)).toEqual(subscriber.payloads);

    expect(status.metrics).toMatchObject({
      linesQueued: messages.length - 1,
      linesPublished: messages.length - 1,
      linesDropped: 0,
    });
    expect(await client.lrange(buildsKey(slug), 0, -1)).toEqual(["build-ok"]);

    const streamTtl = await client.ttl(historyKey(slug, "build-ok" as BuildId));
    expect(streamTtl).toBeGreaterThan(86_400 - 60);
    expect(streamTtl).toBeLessThanOrEqual(86_400);
    expect(await client.ttl(buildsKey(slug))).toBeGreaterThanOrEqual(streamTtl);
  });

  it("reports a failing build with its exit code after all its lines", async () => {
    const slug = "run-fail" as Slug;
    const repo = await makeRepo({ "build.mjs": FAILING_BUILD });
    const subscriber = await LogSubscriber.start(valkey.url, slug);

    const builder = startBuilder(builderEnv(slug, "build-fail", repo));
    const status = (await subscriber.status()) as BuilderStatusMessage;

    expect(await builder.exit()).toBe(3);
    expect(status).toMatchObject({
      status: "failed",
      exitCode: 3,
      failedStep: "build",
    });
    expect(status.log).toMatch(/failed.*exit code 3/);

    const messages = subscriber.messages;
    expect(messages.map((m) => m.seq)).toEqual(messages.map((_, i) => i + 1));
    expect(stepOutput(messages, "build", "stdout")).toEqual([
      "step 1",
      "step 2",
      "step 3",
      "step 4",
      "step 5",
    ]);
    expect(stepOutput(messages, "build", "stderr")).toEqual([
      "something broke",
    ]);
    expect(stepLines(messages).at(-1)).toMatchObject({
      step: "build",
      phase: "end",
      exitCode: 3,
    });
  });

  it("fails the build when the clone fails, saying why", async () => {
    const slug = "run-no-repo" as Slug;
    const subscriber = await LogSubscriber.start(valkey.url, slug);

    const builder = startBuilder(
      builderEnv(slug, "build-no-repo", "/nonexistent/codebay-repo"),
    );
    const status = (await subscriber.status()) as BuilderStatusMessage;

    expect(status).toMatchObject({
      status: "failed",
      exitCode: 128,
      failedStep: "clone",
    });
    expect(await builder.exit()).toBe(128);

    const messages = subscriber.messages;
    expect(lines(messages, "stderr").join("\n")).toMatch(/does not exist/);
    expect(stepLines(messages).map((m) => [m.step, m.phase])).toEqual([
      ["clone", "start"],
      ["clone", "end"],
    ]);
  });

  it("fails the build when the install fails, and skips the build step", async () => {
    const slug = "run-install" as Slug;
    const repo = await makeRepo({ "build.mjs": PRINTING_BUILD });
    const subscriber = await LogSubscriber.start(valkey.url, slug);

    const builder = startBuilder({
      ...builderEnv(slug, "build-install", repo),
      INSTALL_COMMAND: "echo 'no registry' >&2; exit 4",
    });
    const status = (await subscriber.status()) as BuilderStatusMessage;

    expect(status).toMatchObject({
      status: "failed",
      exitCode: 4,
      failedStep: "install",
    });
    expect(await builder.exit()).toBe(4);
    expect(stepOutput(subscriber.messages, "install", "stderr")).toEqual([
      "no registry",
    ]);
    expect(stepLines(subscriber.messages).map((m) => m.step)).not.toContain(
      "build",
    );
  });

  it("checks out GIT_REF and builds in START_DIR", async () => {
    const slug = "run-ref" as Slug;
    const repo = await makeRepo({
      "site/build.mjs": 'console.log("version one")',
    });
    await git(repo, "tag", "v1");
    await commitFiles(repo, { "site/build.mjs": 'console.log("version two")' });
    const subscriber = await LogSubscriber.start(valkey.url, slug);

    const builder = startBuilder({
      ...builderEnv(slug, "build-ref", repo),
      GIT_REF: "v1",
      START_DIR: "site",
    });
    const status = await subscriber.status();

    expect(status).toMatchObject({ status: "succeeded" });
    expect(await builder.exit()).toBe(0);
    expect(lines(subscriber.messages, "stdout")).toContain("version one");
    expect(stepLines(subscriber.messages).map((m) => m.step)).toContain(
      "checkout",
    );
  });

  it("fails the build when START_DIR is not in the repository", async () => {
    const slug = "run-no-dir" as Slug;
    const repo = await makeRepo({ "build.mjs": "" });
    const subscriber = await LogSubscriber.start(valkey.url, slug);

    const builder = startBuilder({
      ...builderEnv(slug, "build-no-dir", repo),
      START_DIR: "missing/folder",
    });
    const status = await subscriber.status();

    expect(status).toMatchObject({ status: "failed", exitCode: 1 });
    expect(await builder.exit()).toBe(1);
    expect(lines(subscriber.messages, "system")).toContain(
      "START_DIR missing/folder is not a folder in the repository",
    );
  });

  it("builds the example site with the default commands", async () => {
    const slug = "example-site" as Slug;
    const repo = await makeRepo(await exampleSite());
    const subscriber = await LogSubscriber.start(valkey.url, slug);

    const builder = startBuilder({
      PROJECT_ID: slug,
      BUILD_ID: "build-site",
      GIT_REPOSITORY_URL: repo,
      REDIS_URL: valkey.url,
    });
    const status = await subscriber.status();

    expect(status).toMatchObject({ status: "succeeded", exitCode: 0 });
    expect(await builder.exit()).toBe(0);

    const messages = subscriber.messages;
    expect(stepLines(messages).map((m) => m.log)).toContain(
      "Step build started: npm run build",
    );
    const stdout = stepOutput(messages, "build", "stdout");
    expect(stdout.length).toBeGreaterThan(20);
    expect(stdout.some((line) => line.includes("\u001b[32m"))).toBe(true);
    expect(stdout).toContainEqual(
      expect.stringMatching(/rendering.*\[#{24}\] 6\/6/),
    );
    expect(stepOutput(messages, "build", "stderr")).toContainEqual(
      expect.stringMatching(/warning.*no description/),
    );
  });

  it("stops the running step on SIGTERM and reports the build failed", async () => {
    const slug = "run-stop" as Slug;
    const repo = await makeRepo({
      "build.mjs": `
        console.log("waiting");
        setTimeout(() => console.log("not stopped"), 60000);
      `,
    });
    const subscriber = await LogSubscriber.start(valkey.url, slug);

    const builder = startBuilder(builderEnv(slug, "build-stop", repo));
    await subscriber.line("waiting");
    builder.child.kill("SIGTERM");
    const status = (await subscriber.status()) as BuilderStatusMessage;

    expect(status).toMatchObject({
      status: "failed",
      exitCode: 143,
      failedStep: "build",
    });
    expect(status.log).toMatch(/SIGTERM/);
    expect(await builder.exit()).toBe(143);
    expect(stepLines(subscriber.messages).at(-1)).toMatchObject({
      step: "build",
      phase: "end",
      exitCode: 143,
    });
  });

  it("stops at start with exit code 2 naming each bad variable", async () => {
    const builder = startBuilder({
      GIT_REPOSITORY_URL: "/tmp/repo",
      LOG_LEVEL: "loud",
      HISTORY_BUILDS: "many",
      REDIS_URL: "http://127.0.0.1:1",
    });

    expect(await builder.exit()).toBe(2);
    const stderr = builder.stderr.join("\n");
    expect(stderr).toMatch(/PROJECT_ID=unset/);
    expect(stderr).toMatch(/LOG_LEVEL="loud"/);
    expect(stderr).toMatch(/HISTORY_BUILDS="many"/);
    expect(stderr).toMatch(/REDIS_URL="http:\/\/127.0.0.1:1"/);
  });

  it("rejects a slug that is not a DNS label", async () => {
    const builder = startBuilder({
      PROJECT_ID: "Not_A_Slug",
      GIT_REPOSITORY_URL: "/tmp/repo",
    });

    expect(await builder.exit()).toBe(2);
    expect(builder.stderr.join("\n")).toMatch(/PROJECT_ID="Not_A_Slug"/);
  });

  it("prints usage listing every variable for --help", async () => {
    const { stdout } = await run(`${ROOT}bin/builder`, ["--help"], {
      env: { PATH: process.env.PATH },
    });

    for (const name of [
      "PROJECT_ID",
      "GIT_REPOSITORY_URL",
      "GIT_REF",
      "START_DIR",
      "BUILD_ID",
      "DEPLOYMENT_ID",
      "INSTALL_COMMAND",
      "BUILD_COMMAND",
      "LOG_LEVEL",
      "REDIS_URL",
      "VALKEY_URL",
      "AIVEN_REDIS_URL",
      "HISTORY_BUILDS",
      "HISTORY_MAX_ENTRIES",
      "HISTORY_MAX_BYTES",
      "HISTORY_TTL_SECONDS",
      "QUEUE_MAX_LINES",
      "QUEUE_MAX_BYTES",
      "FLUSH_TIMEOUT_MS",
    ]) {
      expect(stdout).toContain(name);
    }
  });
});
