/**
 * The launcher's operational endpoints: `/healthz`, `/readyz` through a
 * Valkey outage and a shutdown, and `/metrics`.
 */
import { once } from "node:events";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { LocalValkey } from "../shared/local-valkey.ts";
import { parseMetrics, TestLauncher } from "./support/launcher-harness.ts";

let valkey: LocalValkey;
let launcher: TestLauncher;

// Each hook returns its clean-up, which vitest runs in reverse order.
beforeAll(async () => {
  valkey = await LocalValkey.start();
  return () => valkey.stop();
});

beforeAll(async () => {
  launcher = await TestLauncher.start(valkey);
  return () => launcher.close();
});

describe("/healthz and /readyz", () => {
  it("says the process is alive", async () => {
    const answer = await launcher.request("GET", "/healthz");

    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ status: "ok" });
  });

  it("is ready while Valkey is connected", async () => {
    const answer = await launcher.request("GET", "/readyz");

    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({
      status: "ready",
      valkey: true,
      accepting: true,
    });
  });

  it("turns unready while Valkey is away, and ready again after", async () => {
    const client = launcher.launcher.store.client;
    const closed = once(client, "close");
    await valkey.pause();
    onTestFinished(() => valkey.resume());
    await closed;

    const unready = await launcher.request("GET", "/readyz");
    expect(unready.status).toBe(503);
    expect(unready.json).toEqual({
      status: "unready",
      valkey: false,
      accepting: true,
    });
    expect((await launcher.request("GET", "/healthz")).status).toBe(200);

    const refused = await launcher.request("POST", "/projects/app/builds", {
      gitUrl: "https://example.com/repo.git",
    });
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe("LAUNCHER_ERR_STORE_UNAVAILABLE");
    expect(launcher.launcher.service.runner.counts()).toEqual({
      queued: 0,
      running: 0,
    });

    const ready = once(client, "ready");
    await valkey.resume();
    await ready;

    expect((await launcher.request("GET", "/readyz")).status).toBe(200);
  });

  it("turns unready and refuses builds once shutdown has begun", async () => {
    const draining = await TestLauncher.start(valkey);
    onTestFinished(() => draining.close());

    draining.launcher.service.stopAccepting();

    const unready = await draining.request("GET", "/readyz");
    expect(unready.status).toBe(503);
    expect(unready.json.accepting).toBe(false);

    const refused = await draining.request("POST", "/projects/app/builds", {
      gitUrl: "https://example.com/repo.git",
    });
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe("LAUNCHER_ERR_DRAINING");
  });
});

describe("/metrics", () => {
  it("serves Prometheus text with the launcher's metrics and process defaults", async () => {
    const answer = await launcher.request("GET", "/metrics");

    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toMatch(/^text\/plain/);
    const names = new Set(parseMetrics(answer.text).map((s) => s.name));
    for (const name of [
      "launcher_builds",
      "launcher_run_task_duration_seconds_count",
      "launcher_process_cpu_user_seconds_total",
      "launcher_nodejs_eventloop_lag_seconds",
    ]) {
      expect(names).toContain(name);
    }
    for (const name of [
      "launcher_builds_started_total",
      "launcher_run_task_failures_total",
    ]) {
      expect(answer.text).toContain(`# TYPE ${name} counter`);
    }
  });

  it("counts a started build exactly once, and a rejected one not at all", async () => {
    const labels = { runner: "local", outcome: "running" };
    const before = await launcher.metric(
      "launcher_builds_started_total",
      labels,
    );

    await launcher.request("POST", "/projects/Bad/builds", {
      gitUrl: "/nowhere",
    });
    const posted = await launcher.request(
      "POST",
      "/projects/metrics-app/builds",
      {
        // No repository here: the build fails fast, whatever the builder is.
        gitUrl: "/nonexistent/repository",
        installCommand: "true",
      },
    );
    expect(posted.status).toBe(202);
    const ended = await launcher.ended(posted.json.buildId);
    expect(ended.json.status).toBe("failed");

    const text = (await launcher.request("GET", "/metrics")).text;
    const samples = parseMetrics(text);
    const started = samples.find(
      (s) =>
        s.name === "launcher_builds_started_total" &&
        s.labels.runner === "local" &&
        s.labels.outcome === "running",
    );
    expect(started?.value).toBe(before + 1);
    expect(
      samples.find(
        (s) => s.name === "launcher_builds" && s.labels.state === "running",
      )?.value,
    ).toBe(0);

    // Neither the slug nor the build id ever becomes a label.
    const labelValues = samples.flatMap((s) => Object.values(s.labels));
    expect(labelValues).not.toContain("metrics-app");
    expect(labelValues).not.toContain(posted.json.buildId);
  });
});
