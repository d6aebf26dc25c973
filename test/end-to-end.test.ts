/**
 * The whole path on one machine: the launcher starts a real build, the
 * builder publishes every line, a relay forwards it, and a viewer using the
 * existing dashboard's contract sees it live.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { LocalValkey } from "../shared/local-valkey.ts";
import { makeRepo } from "./support/builder-harness.ts";
import { startRelay, type RelayHandle } from "./support/relay-process.ts";
import { ROOT, ServiceProcess } from "./support/service-process.ts";
import { connectStringViewer, type StringViewer } from "./support/viewer.ts";

let valkey: LocalValkey;
let relay: RelayHandle;
let launcherUrl: string;

beforeAll(async () => {
  valkey = await LocalValkey.start();
  relay = await startRelay(valkey.url, {}, { cleanup: false });
  const launcher = new ServiceProcess("launcher", [], {
    REDIS_URL: valkey.url,
    PORT: "0",
    HOST: "127.0.0.1",
  });
  launcherUrl = `http://127.0.0.1:${await launcher.ready()}`;

  return async () => {
    await launcher.stop();
    await relay.process.stop();
    await valkey.stop();
  };
});

interface Message {
  type?: string;
  log: string;
  seq: number;
  buildId: string;
  stream: string;
  status?: string;
  exitCode?: number;
}

async function watch(slug: string): Promise<StringViewer> {
  const viewer = connectStringViewer(relay.url);
  viewer.socket.emit("subscribe", `logs:${slug}`);
  await viewer.waitForMessages(1);
  expect(viewer.messages[0]).toBe(`Joined logs:${slug}`);
  return viewer;
}

async function untilStatus(viewer: StringViewer): Promise<Message[]> {
  for (;;) {
    const messages = viewer.messages
      .slice(1)
      .map((m) => JSON.parse(m) as Message);
    if (messages.some((m) => m.type === "status")) return messages;
    await viewer.waitForMessages(viewer.messages.length + 1, 120_000);
  }
}

async function startBuild(slug: string, body: object): Promise<string> {
  const response = await fetch(`${launcherUrl}/projects/${slug}/builds`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(202);
  const answer = (await response.json()) as {
    buildId: string;
    channel: string;
  };
  expect(answer.channel).toBe(`logs:${slug}`);
  return answer.buildId;
}

async function finalRecord(
  buildId: string,
): Promise<{ status: string; exitCode: number }> {
  for (;;) {
    const record = (await fetch(`${launcherUrl}/builds/${buildId}`).then((r) =>
      r.json(),
    )) as {
      status: string;
      exitCode: number;
    };
    if (record.status === "succeeded" || record.status === "failed")
      return record;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("end to end", () => {
  it("streams the example project's build to a dashboard viewer", async () => {
    const viewer = await watch("example-site");
    const buildId = await startBuild("example-site", {
      gitUrl: ROOT,
      startDir: "examples/site",
      installCommand: "npm install --no-audit --no-fund",
    });

    const messages = await untilStatus(viewer);
    expect(messages.map((m) => m.seq)).toEqual(messages.map((_, i) => i + 1));
    expect(new Set(messages.map((m) => m.buildId))).toEqual(new Set([buildId]));
    expect(messages.some((m) => m.stream === "stderr")).toBe(true);
    expect(messages.some((m) => m.stream === "stdout")).toBe(true);

    const status = messages.at(-1)!;
    expect(status).toMatchObject({
      type: "status",
      status: "succeeded",
      exitCode: 0,
    });
    expect(await finalRecord(buildId)).toMatchObject({
      status: "succeeded",
      exitCode: 0,
    });
  });

  it("ends a failing build with its exit code, every line before it delivered", async () => {
    const repo = await makeRepo({
      "package.json": JSON.stringify({
        name: "fails",
        scripts: {
          build:
            "node -e \"for (let i = 1; i <= 50; i++) console.log('step ' + i); console.error('boom'); process.exit(3)\"",
        },
      }),
    });
    const viewer = await watch("failing-site");
    const buildId = await startBuild("failing-site", {
      gitUrl: repo,
      installCommand: "true",
    });

    const messages = await untilStatus(viewer);
    expect(messages.map((m) => m.seq)).toEqual(messages.map((_, i) => i + 1));
    const logs = messages.map((m) => m.log);
    for (let i = 1; i <= 50; i++) expect(logs).toContain(`step ${i}`);
    expect(messages.find((m) => m.log === "boom")?.stream).toBe("stderr");

    expect(messages.at(-1)).toMatchObject({
      type: "status",
      status: "failed",
      exitCode: 3,
    });
    expect(await finalRecord(buildId)).toMatchObject({
      status: "failed",
      exitCode: 3,
    });
  });
});
