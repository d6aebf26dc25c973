/**
 * The launcher's HTTP contract for bad input: every rejected request gets
 * `{ error: { code, message } }` with a stable code, and starts nothing.
 */
import { Redis } from "ioredis";
import { beforeAll, describe, expect, it } from "vitest";
import { LocalValkey } from "../shared/local-valkey.ts";
import { TestLauncher } from "./support/launcher-harness.ts";

let valkey: LocalValkey;
let launcher: TestLauncher;
let inspector: Redis;

// Each hook returns its clean-up, which vitest runs in reverse order.
beforeAll(async () => {
  valkey = await LocalValkey.start();
  return () => valkey.stop();
});

beforeAll(async () => {
  launcher = await TestLauncher.start(valkey, {
    HTTP_BODY_LIMIT_BYTES: "16384",
  });
  return () => launcher.close();
});

beforeAll(() => {
  inspector = new Redis(valkey.url);
  inspector.on("error", () => {});
  return async () => {
    await inspector.quit();
  };
});

/** Asserts that no build was recorded, counted or started. */
async function expectNothingStarted(): Promise<void> {
  expect(await inspector.keys("build:*")).toEqual([]);
  expect(launcher.launcher.service.runner.counts()).toEqual({
    queued: 0,
    running: 0,
  });
  const answer = await launcher.request("GET", "/metrics");
  expect(answer.text).not.toMatch(/^launcher_builds_started_total\{/m);
  expect(launcher.logs.withMsg("build accepted")).toEqual([]);
}

const goodBody = { gitUrl: "https://example.com/repo.git" };

describe("POST /projects/:slug/builds", () => {
  it.each([
    ["an uppercase slug", "Foo"],
    ["a slug starting with a hyphen", "-a"],
    ["a slug ending with a hyphen", "a-"],
    ["a 64-character slug", "a".repeat(64)],
    ["a slug with an underscore", "a_b"],
  ])("rejects %s with LAUNCHER_ERR_BAD_SLUG", async (_name, slug) => {
    const answer = await launcher.request(
      "POST",
      `/projects/${slug}/builds`,
      goodBody,
    );

    expect(answer.status).toBe(400);
    expect(answer.json.error.code).toBe("LAUNCHER_ERR_BAD_SLUG");
    expect(answer.json.error.message).toEqual(expect.any(String));
    await expectNothingStarted();
  });

  it.each([
    ["no gitUrl", {}],
    ["an empty gitUrl", { gitUrl: "" }],
    ["a gitUrl that is not a string", { gitUrl: 42 }],
    ["a gitUrl over 2048 characters", { gitUrl: "h".repeat(2049) }],
    ["a gitUrl that reads as an option", { gitUrl: "--upload-pack=x" }],
    ["a startDir climbing out", { ...goodBody, startDir: "../x" }],
    ["a startDir climbing out midway", { ...goodBody, startDir: "a/../../x" }],
    ["an absolute startDir", { ...goodBody, startDir: "/etc" }],
    ["a ref with a space", { ...goodBody, ref: "main; rm" }],
    ["a ref that reads as an option", { ...goodBody, ref: "-b" }],
    [
      "a buildCommand over 4096",
      { ...goodBody, buildCommand: "x".repeat(4097) },
    ],
    [
      "an installCommand that is not a string",
      { ...goodBody, installCommand: 1 },
    ],
    ["a command with a NUL", { ...goodBody, buildCommand: "a\0b" }],
    ["an unknown field", { ...goodBody, gitURL: "typo" }],
    ["a body that is an array", [goodBody]],
    ["a body that is null", null],
  ])("rejects %s with LAUNCHER_ERR_BAD_REQUEST", async (_name, body) => {
    const answer = await launcher.request("POST", "/projects/app/builds", body);

    expect(answer.status).toBe(400);
    expect(answer.json.error.code).toBe("LAUNCHER_ERR_BAD_REQUEST");
    await expectNothingStarted();
  });

  it("names the bad field in the message", async () => {
    const answer = await launcher.request("POST", "/projects/app/builds", {
      ...goodBody,
      startDir: "../x",
    });

    expect(answer.json.error.message).toContain("startDir");
  });

  it.each([
    [
      "a gitUrl over 2,048 characters",
      { gitUrl: "x".repeat(2049) },
      "gitUrl: gitUrl must be at most 2048 characters",
    ],
    [
      "an empty startDir",
      { ...goodBody, startDir: "" },
      "startDir: startDir must not be empty",
    ],
    ["a null ref", { ...goodBody, ref: null }, "ref: ref must be a string"],
    [
      "a command over 4,096 characters",
      { ...goodBody, buildCommand: "x".repeat(4097) },
      "buildCommand: commands must be at most 4096 characters",
    ],
  ])("says what is wrong with %s", async (_name, body, message) => {
    const answer = await launcher.request("POST", "/projects/app/builds", body);

    expect(answer.status).toBe(400);
    expect(answer.json.error).toEqual({
      code: "LAUNCHER_ERR_BAD_REQUEST",
      message,
    });
    await expectNothingStarted();
  });

  it("names prototype keys among the reasons for LAUNCHER_ERR_BAD_JSON", async () => {
    const answer = await launcher.request(
      "POST",
      "/projects/app/builds",
      '{"gitUrl": "x", "__proto__": {"a": 1}}',
    );

    expect(answer.status).toBe(400);
    expect(answer.json.error.code).toBe("LAUNCHER_ERR_BAD_JSON");
    expect(answer.json.error.message).toContain("__proto__");
    await expectNothingStarted();
  });

  it("rejects a request without a body with LAUNCHER_ERR_BAD_REQUEST", async () => {
    const answer = await launcher.request("POST", "/projects/app/builds");

    expect(answer.status).toBe(400);
    expect(answer.json.error).toEqual({
      code: "LAUNCHER_ERR_BAD_REQUEST",
      message: "the body must be a JSON object, at least { gitUrl }",
    });
    await expectNothingStarted();
  });

  it("rejects malformed JSON with LAUNCHER_ERR_BAD_JSON", async () => {
    const answer = await launcher.request(
      "POST",
      "/projects/app/builds",
      '{"gitUrl": "x",',
    );

    expect(answer.status).toBe(400);
    expect(answer.json.error.code).toBe("LAUNCHER_ERR_BAD_JSON");
    await expectNothingStarted();
  });

  it("rejects an empty JSON body with LAUNCHER_ERR_BAD_JSON", async () => {
    const answer = await launcher.request("POST", "/projects/app/builds", "");

    expect(answer.status).toBe(400);
    expect(answer.json.error.code).toBe("LAUNCHER_ERR_BAD_JSON");
  });

  it("rejects a body that is not JSON with LAUNCHER_ERR_UNSUPPORTED_MEDIA_TYPE", async () => {
    const answer = await launcher.request(
      "POST",
      "/projects/app/builds",
      "gitUrl=x",
      { "content-type": "text/plain" },
    );

    expect(answer.status).toBe(415);
    expect(answer.json.error.code).toBe("LAUNCHER_ERR_UNSUPPORTED_MEDIA_TYPE");
    await expectNothingStarted();
  });

  it("rejects a body over the limit with LAUNCHER_ERR_BODY_TOO_LARGE", async () => {
    const answer = await launcher.request("POST", "/projects/app/builds", {
      gitUrl: "https://example.com/repo.git",
      padding: "x".repeat(20_000),
    });

    expect(answer.status).toBe(413);
    expect(answer.json.error.code).toBe("LAUNCHER_ERR_BODY_TOO_LARGE");
    await expectNothingStarted();
  });
});

describe("GET /builds/:buildId", () => {
  it("answers an unknown build with LAUNCHER_ERR_BUILD_NOT_FOUND", async () => {
    const answer = await launcher.request(
      "GET",
      "/builds/00000000-0000-4000-8000-000000000000",
    );

    expect(answer.status).toBe(404);
    expect(answer.json.error.code).toBe("LAUNCHER_ERR_BUILD_NOT_FOUND");
  });

  it("answers an id that cannot be a build id with LAUNCHER_ERR_BUILD_NOT_FOUND", async () => {
    const answer = await launcher.request("GET", "/builds/a%20b");

    expect(answer.status).toBe(404);
    expect(answer.json.error.code).toBe("LAUNCHER_ERR_BUILD_NOT_FOUND");
  });
});

describe("URLs Fastify refuses before routing", () => {
  it.each([
    ["a broken percent-escape", "GET", "/builds/%ZZ"],
    ["a broken percent-escape in the slug", "POST", "/projects/%ZZ/builds"],
    [
      "a path segment over the length limit",
      "GET",
      `/builds/${"a".repeat(5000)}`,
    ],
  ])(
    "answers %s with JSON LAUNCHER_ERR_BAD_REQUEST",
    async (_name, method, path) => {
      const answer = await launcher.request(method, path);

      expect(answer.status).toBe(400);
      expect(answer.json.error.code).toBe("LAUNCHER_ERR_BAD_REQUEST");
      expect(JSON.stringify(answer.json)).not.toContain("aaaaaaaaaa");
    },
  );
});

describe("routes", () => {
  it("answers an unknown route with JSON LAUNCHER_ERR_NOT_FOUND", async () => {
    const answer = await launcher.request("GET", "/nope");

    expect(answer.status).toBe(404);
    expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
    expect(answer.json.error.code).toBe("LAUNCHER_ERR_NOT_FOUND");
  });

  it("answers a wrong method with JSON LAUNCHER_ERR_NOT_FOUND", async () => {
    const answer = await launcher.request("DELETE", "/projects/app/builds");

    expect(answer.status).toBe(404);
    expect(answer.json.error.code).toBe("LAUNCHER_ERR_NOT_FOUND");
  });
});
