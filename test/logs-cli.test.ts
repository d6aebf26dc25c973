/**
 * `bin/logs`, the terminal viewer: prints a build's lines as they arrive
 * (stderr and system lines marked) and exits with the build's exit code.
 */
import { expect, it, onTestFinished } from "vitest";
import { spawn } from "node:child_process";
import { startRelay } from "./support/relay-process.ts";
import { ROOT } from "./support/service-process.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";
import { waitFor } from "./support/wait-for.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const store = useValkey();

function runLogs(args: string[], relayUrl: string) {
  const child = spawn(`${ROOT}bin/logs`, args, {
    env: { PATH: process.env.PATH ?? "", RELAY_URL: relayUrl },
    stdio: ["ignore", "pipe", "pipe"],
  });
  onTestFinished(() => {
    child.kill("SIGKILL");
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", resolve),
  );
  return { exited, output: () => ({ stdout, stderr }) };
}

/**
 * Starts build `<slug>-1` with 3 lines, runs bin/logs with `args` until
 * it has printed them, and hands back the second build of the slug, not
 * yet started.
 */
async function followFirstOfTwo(
  relayUrl: string,
  slug: string,
  args: string[],
) {
  const first = syntheticBuild(store.url, slug, `${slug}-1`);
  const second = syntheticBuild(store.url, slug, `${slug}-2`);
  onTestFinished(() => {
    first.close();
    second.close();
  });
  first.lines(3);
  await first.flush();
  const logs = runLogs(args, relayUrl);
  await waitFor(
    () => logs.output().stdout,
    (text) => text.trimEnd().split("\n").length === 3,
    { what: "the first build's 3 lines" },
  );
  return { logs, second };
}

it("prints a failing build with stderr marked and exits with its code", async () => {
  const relay = await startRelay(store.url);
  const build = syntheticBuild(store.url, "cli-view", "cli-build");
  build.lines(3);
  build.publisher.line("stderr", "\u001b[31mboom\u001b[0m", Date.now());
  await build.flush();

  // Started after the first lines: it shows them from history all the same.
  const logs = runLogs(["cli-view"], relay.url);
  build.lines(2);
  await build.finish(7);

  expect(await logs.exited).toBe(7);
  const lines = logs.output().stdout.trimEnd().split("\n");
  expect(lines.slice(0, 6)).toEqual([
    "line 1",
    "line 2",
    "line 3",
    "stderr | \u001b[31mboom\u001b[0m",
    "line 4",
    "line 5",
  ]);
  expect(lines.at(-1)).toMatch(/^system \| /);
  expect(lines).toHaveLength(7);
});

it("starts after --since and refuses a bad slug with usage", async () => {
  const relay = await startRelay(store.url);
  const build = syntheticBuild(store.url, "cli-since", "since-build");
  build.lines(10);
  await build.finish();

  const logs = runLogs(["--since", "8", "--json", "cli-since"], relay.url);
  expect(await logs.exited).toBe(0);
  const seqs = logs
    .output()
    .stdout.trimEnd()
    .split("\n")
    .map((line) => (JSON.parse(line) as { seq: number }).seq);
  expect(seqs).toEqual([9, 10, 11]);

  const bad = runLogs(["Not_A_Slug"], relay.url);
  expect(await bad.exited).toBe(2);
  expect(bad.output().stderr).toContain("Usage: logs");
});

it("ends quietly when its reader closes the pipe, as `| head -1` does", async () => {
  const relay = await startRelay(store.url);
  const build = syntheticBuild(store.url, "cli-pipe", "pipe-build");
  build.lines(2000);
  await build.flush();

  const child = spawn(`${ROOT}bin/logs`, ["cli-pipe"], {
    env: { PATH: process.env.PATH ?? "", RELAY_URL: relay.url },
    stdio: ["ignore", "pipe", "pipe"],
  });
  onTestFinished(() => {
    child.kill("SIGKILL");
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", resolve),
  );

  await new Promise((resolve) => child.stdout.once("data", resolve));
  child.stdout.destroy();

  expect(await exited).toBe(0);
  expect(stderr).toBe("");
});

it("says when it waits, and stops with 75 rather than print another build as the one named", async () => {
  const relay = await startRelay(store.url);

  const none = runLogs(["cli-nothing-yet"], relay.url);
  await waitFor(
    () => none.output().stderr,
    (text) => text.includes("has no build in history yet; waiting"),
    { what: "the waiting note" },
  );

  const { logs, second } = await followFirstOfTwo(relay.url, "cli-overlap", [
    "--json",
    "--build",
    "cli-overlap-1",
    "cli-overlap",
  ]);
  second.lines(2);
  await second.finish(0);

  expect(await logs.exited).toBe(75);
  const printed = logs
    .output()
    .stdout.trimEnd()
    .split("\n")
    .map((line) => (JSON.parse(line) as { buildId: string }).buildId);
  expect(printed).toEqual(Array(3).fill("cli-overlap-1"));
  // Said once, though the batch that showed it held more of the new build.
  expect(logs.output().stderr.match(/a newer build of/g)).toEqual([
    "a newer build of",
  ]);
  expect(logs.output().stderr).toContain(
    "a newer build of cli-overlap (cli-overlap-2) started while cli-overlap-1 ran",
  );
});

it("following a slug, says when it moves to a newer build before the one it printed ended", async () => {
  const relay = await startRelay(store.url);
  const { logs, second } = await followFirstOfTwo(relay.url, "cli-switch", [
    "--json",
    "cli-switch",
  ]);
  second.lines(2);
  await second.finish(4);

  // It ends with the build it moved to, and said so once.
  expect(await logs.exited).toBe(4);
  const printed = logs
    .output()
    .stdout.trimEnd()
    .split("\n")
    .map((line) => {
      const message = JSON.parse(line) as { buildId: string; seq: number };
      return `${message.buildId}:${message.seq}`;
    });
  expect(printed).toEqual([
    "cli-switch-1:1",
    "cli-switch-1:2",
    "cli-switch-1:3",
    "cli-switch-2:1",
    "cli-switch-2:2",
    "cli-switch-2:3",
  ]);
  expect(logs.output().stderr).toBe(
    "logs: a newer build of cli-switch (cli-switch-2) started while cli-switch-1 ran; " +
      "following cli-switch-2 (the rest of cli-switch-1: logs --build cli-switch-1 cli-switch)\n",
  );
});

it("says so when --since is at or past the end of the build", async () => {
  const relay = await startRelay(store.url);
  const build = syntheticBuild(store.url, "cli-past", "cli-past-1");
  onTestFinished(() => build.close());
  build.lines(3);
  await build.finish(0);

  for (const since of ["4", "9"]) {
    const logs = runLogs(["--since", since, "cli-past"], relay.url);
    await waitFor(
      () => logs.output().stderr,
      (text) => text.includes("waiting"),
      { what: `the note for --since ${since}` },
    );
    expect(logs.output().stderr).toBe(
      `logs: build cli-past-1 of cli-past has nothing after line ${since} (its last is 4); waiting for more, or for the next build\n`,
    );
    expect(logs.output().stdout).toBe("");
  }
});
