import { describe, expect, it } from "vitest";
import { ConfigError } from "../shared/env-config.ts";
import { isBuildId } from "../shared/wire.ts";
import { readBuilderConfig } from "../builder/config.ts";

const REQUIRED = { PROJECT_ID: "site", GIT_REPOSITORY_URL: "/srv/repo" };

function problems(env: Record<string, string>): string[] {
  try {
    readBuilderConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error("configuration was accepted");
}

describe("builder configuration", () => {
  it("applies the documented defaults", () => {
    const options = readBuilderConfig(REQUIRED);

    expect(options).toMatchObject({
      slug: "site",
      repositoryUrl: "/srv/repo",
      gitRef: undefined,
      startDir: ".",
      installCommand: "npm install",
      buildCommand: "npm run build",
      logLevel: "info",
      historyBuildsKept: 5,
      historyMaxEntries: 100_000,
      historyMaxBytes: 64 * 1024 * 1024,
      historyTtlSeconds: 86_400,
      queueMaxLines: 50_000,
      queueMaxBytes: 64 * 1024 * 1024,
      flushTimeoutMs: 30_000,
    });
    expect(options.valkey.url).toBe("redis://127.0.0.1:6379");
    expect(isBuildId(options.buildId)).toBe(true);
    expect(Object.isFrozen(options)).toBe(true);
  });

  it("takes the build id from BUILD_ID, else DEPLOYMENT_ID", () => {
    expect(
      readBuilderConfig({ ...REQUIRED, BUILD_ID: "b1", DEPLOYMENT_ID: "d1" })
        .buildId,
    ).toBe("b1");
    expect(
      readBuilderConfig({ ...REQUIRED, DEPLOYMENT_ID: "d1" }).buildId,
    ).toBe("d1");
  });

  it("treats empty values as unset", () => {
    const options = readBuilderConfig({
      ...REQUIRED,
      START_DIR: "",
      INSTALL_COMMAND: "",
    });

    expect(options.startDir).toBe(".");
    expect(options.installCommand).toBe("npm install");
  });

  it("normalises START_DIR and refuses paths outside the repository", () => {
    expect(
      readBuilderConfig({ ...REQUIRED, START_DIR: "./web//app/" }).startDir,
    ).toBe("web/app/");

    for (const dir of ["../elsewhere", "/etc", "web/../../x"]) {
      expect(problems({ ...REQUIRED, START_DIR: dir })[0]).toMatch(
        /^START_DIR=.*relative path inside the repository/,
      );
    }
  });

  it("refuses values git would read as options", () => {
    expect(problems({ ...REQUIRED, GIT_REF: "--upload-pack=x" })[0]).toMatch(
      /^GIT_REF=/,
    );
    expect(
      problems({ PROJECT_ID: "site", GIT_REPOSITORY_URL: "-oProxy" })[0],
    ).toMatch(/^GIT_REPOSITORY_URL=/);
  });

  it("names every bad variable at once", () => {
    const found = problems({
      PROJECT_ID: "-bad-",
      BUILD_ID: "has space",
      QUEUE_MAX_LINES: "0",
      FLUSH_TIMEOUT_MS: "soon",
      VALKEY_URL: "mysql://db",
    });

    expect(found.map((p) => p.slice(0, p.indexOf("=")))).toEqual([
      "PROJECT_ID",
      "GIT_REPOSITORY_URL",
      "BUILD_ID",
      "QUEUE_MAX_LINES",
      "FLUSH_TIMEOUT_MS",
      "VALKEY_URL",
    ]);
  });
});
