/**
 * examples/log-generator: lines of realistic shape, the same for the same
 * seed, printed at the rate asked for, and usable as a build's command
 * with nothing installed.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type {
  BuilderLineMessage,
  BuilderStatusMessage,
} from "../builder/build-messages.ts";
import { createLineSource } from "../examples/log-generator/log-lines.mjs";
import type { Slug } from "../shared/channel-name.ts";
import { LocalValkey } from "../shared/local-valkey.ts";
import {
  LogSubscriber,
  makeRepo,
  readHistory,
  startBuilder,
  testClient,
} from "./support/builder-harness.ts";
import { ROOT } from "./support/service-process.ts";

const run = promisify(execFile);
const GENERATOR = join(ROOT, "examples/log-generator");

describe("log lines", () => {
  it("mixes npm, webpack and tsc output, ANSI colours, stderr and long lines", () => {
    const source = createLineSource({ seed: 5 });
    const lines = Array.from({ length: 2000 }, () => source.next());

    const text = lines.map((l) => l.text);
    expect(text.some((t) => t.startsWith("npm http fetch GET 200"))).toBe(true);
    expect(text.some((t) => t.includes("[built]"))).toBe(true);
    expect(text.some((t) => /error.*TS\d{4}/.test(t))).toBe(true);
    expect(text.filter((t) => t.includes("\u001b[")).length).toBeGreaterThan(
      200,
    );
    expect(lines.filter((l) => l.stream === "stderr").length).toBeGreaterThan(
      50,
    );

    const long = text.filter((t) => t.length >= 2048);
    expect(long.length).toBe(8);
    expect(Math.max(...text.map((t) => t.length))).toBeLessThan(9000);
    expect(text.every((t) => !t.includes("\n"))).toBe(true);
  });

  it("gives the same lines for the same seed", () => {
    const take = (seed: number) => {
      const source = createLineSource({ seed });
      return Array.from({ length: 300 }, () => source.next());
    };
    expect(take(9)).toEqual(take(9));
    expect(take(9)).not.toEqual(take(10));
  });
});

describe("generate.mjs", () => {
  it("prints the lines asked for, no faster than the rate", async () => {
    const startedAt = Date.now();
    const { stdout, stderr } = await run(
      process.execPath,
      ["generate.mjs", "--rate", "2000", "--lines", "600", "--seed", "4"],
      { cwd: GENERATOR },
    );
    const elapsedMs = Date.now() - startedAt;

    const printed = [...stdout.split("\n"), ...stderr.split("\n")];
    expect(printed.filter((l) => l !== "").length).toBe(600);
    // 600 lines at 2,000 a second: the last is due 300 ms after the first.
    expect(elapsedMs).toBeGreaterThanOrEqual(290);
  });

  it("refuses a bad rate with status 2", async () => {
    const failed = run(process.execPath, ["generate.mjs", "--rate", "fast"], {
      cwd: GENERATOR,
    });
    await expect(failed).rejects.toMatchObject({ code: 2 });
  });
});

describe("generate.mjs as a build command", () => {
  let valkey: LocalValkey;

  beforeAll(async () => {
    valkey = await LocalValkey.start();
  });

  afterAll(async () => {
    await valkey.stop();
  });

  it("runs in a builder from a clone with nothing installed", async () => {
    const files: Record<string, string> = {};
    for (const name of ["generate.mjs", "log-lines.mjs", "package.json"]) {
      files[`examples/log-generator/${name}`] = await readFile(
        join(GENERATOR, name),
        "utf8",
      );
    }
    const repo = await makeRepo(files);
    const slug = "generator-build" as Slug;
    const subscriber = await LogSubscriber.start(valkey.url, slug);

    const builder = startBuilder({
      PROJECT_ID: slug,
      BUILD_ID: "gen-1",
      GIT_REPOSITORY_URL: repo,
      START_DIR: "examples/log-generator",
      INSTALL_COMMAND: "true",
      BUILD_COMMAND: "node generate.mjs --rate 5000 --lines 1000",
      REDIS_URL: valkey.url,
    });
    const status = (await subscriber.status()) as BuilderStatusMessage;

    expect(await builder.exit()).toBe(0);
    expect(status.status).toBe("succeeded");
    // Lines between the build step's start and end (git prints its own).
    const messages = subscriber.messages as BuilderLineMessage[];
    const start = messages.findIndex((m) => m.step === "build");
    const printed = messages
      .slice(start + 1)
      .filter((m) => m.stream === "stdout" || m.stream === "stderr");
    expect(printed.length).toBe(1000);

    const history = await readHistory(testClient(valkey.url), slug, "gen-1");
    expect(history.length).toBe(subscriber.messages.length);
  });
});
