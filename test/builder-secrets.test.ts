import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { Slug } from "../shared/channel-name.ts";
import { LocalValkey } from "../shared/local-valkey.ts";
import type { BuilderLineMessage } from "../builder/build-messages.ts";
import { buildEnvironment } from "../builder/build-environment.ts";
import {
  hasUrlCredentials,
  maskUrlCredentials,
  stripUrlCredentials,
} from "../builder/url-credentials.ts";
import {
  LogSubscriber,
  makeRepo,
  startBuilder,
} from "./support/builder-harness.ts";

const SECRETS = {
  REDIS_URL: "redis://:hunter2@127.0.0.1:1",
  VALKEY_URL: "redis://127.0.0.1:2",
  AIVEN_REDIS_URL: "rediss://default:pw@aiven.example:3",
  VALKEY_CA_FILE: "/etc/ca.pem",
  AWS_ACCESS_KEY_ID: "AKIA0000",
  AWS_SECRET_ACCESS_KEY: "shh",
  AWS_REGION: "eu-west-1",
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/v2/credentials/x",
  GITHUB_TOKEN: "ghp_x",
  npm_config__authToken: "npm_x",
  STRIPE_SECRET: "sk_x",
  DB_PASSWORD: "pw",
  API_KEY: "key",
  SSH_PRIVATE_KEY: "-----BEGIN",
  DATABASE_URL: "postgres://app:pw@db.example/app",
  GIT_REPOSITORY_URL: "https://x-access-token:ghs_x@github.com/org/repo.git",
};

const KEPT = {
  PATH: "/usr/bin:/bin",
  HOME: "/home/build",
  LANG: "C.UTF-8",
  NODE_ENV: "production",
  PROJECT_ID: "site",
  START_DIR: "web",
  PUBLIC_URL: "https://site.example/",
  SSH_URL: "ssh://git@github.com/org/repo.git",
};

describe("build environment", () => {
  it("removes the Valkey, AWS and secret-named variables and keeps the rest", () => {
    expect(buildEnvironment({ ...SECRETS, ...KEPT })).toEqual(KEPT);
  });

  it("skips unset variables", () => {
    expect(buildEnvironment({ PATH: "/bin", EMPTY: undefined })).toEqual({
      PATH: "/bin",
    });
  });

  it("recognises credentials in URLs and masks them", () => {
    expect(hasUrlCredentials("https://ghp_x@github.com/org/repo")).toBe(true);
    expect(hasUrlCredentials("https://github.com/org/repo")).toBe(false);
    expect(hasUrlCredentials("git@github.com:org/repo.git")).toBe(false);
    expect(hasUrlCredentials("/srv/repos/site")).toBe(false);

    expect(maskUrlCredentials("https://user:tok@github.com/org/repo.git")).toBe(
      "https://***@github.com/org/repo.git",
    );
    expect(maskUrlCredentials("/srv/repos/site")).toBe("/srv/repos/site");
    expect(stripUrlCredentials("https://tok@github.com/org/repo.git")).toBe(
      "https://github.com/org/repo.git",
    );
  });
});

describe("build processes", () => {
  let valkey: LocalValkey;

  beforeAll(async () => {
    valkey = await LocalValkey.start();
    return () => valkey.stop();
  });

  it("do not see the builder's Valkey URL, AWS keys or tokens", async () => {
    const slug = "secrets" as Slug;
    const repo = await makeRepo({ "README.md": "env test\n" });
    const subscriber = await LogSubscriber.start(valkey.url, slug);

    // REDIS_URL wins, so the other URL variables only need to look valid.
    const builder = startBuilder({
      ...SECRETS,
      REDIS_URL: valkey.url,
      VALKEY_URL: valkey.url,
      AIVEN_REDIS_URL: valkey.url,
      GIT_REPOSITORY_URL: repo,
      PROJECT_ID: slug,
      BUILD_ID: "build-env",
      INSTALL_COMMAND: "true",
      BUILD_COMMAND: "env",
      NODE_ENV: "production",
    });
    const status = await subscriber.status();

    expect(status).toMatchObject({ status: "succeeded" });
    expect(await builder.exit()).toBe(0);

    const printed = (subscriber.messages as BuilderLineMessage[])
      .filter((m) => m.stream === "stdout")
      .map((m) => m.log.slice(0, m.log.indexOf("=")));

    expect(printed).toContain("PATH");
    expect(printed).toContain("HOME");
    expect(printed).toContain("NODE_ENV");
    expect(printed).toContain("PROJECT_ID");
    for (const name of Object.keys(SECRETS)) {
      if (name === "GIT_REPOSITORY_URL") continue;
      expect(printed).not.toContain(name);
    }
    // A local path carries no credential, so it is kept.
    expect(printed).toContain("GIT_REPOSITORY_URL");
  });

  it("do not find the repository's credentials in the clone", async () => {
    const slug = "clone-secret" as Slug;
    const repo = await makeRepo({ "README.md": "private\n" });
    const url = "https://x-access-token:s3cr3t@git.example.invalid/site.git";

    // git fetches that URL from the local repository instead.
    const home = await mkdtemp(join(tmpdir(), "codebay-test-home-"));
    onTestFinished(() => rm(home, { recursive: true, force: true }));
    await writeFile(
      join(home, ".gitconfig"),
      `[url "${repo}"]\n\tinsteadOf = ${url}\n`,
    );
    const subscriber = await LogSubscriber.start(valkey.url, slug);

    const builder = startBuilder({
      HOME: home,
      REDIS_URL: valkey.url,
      GIT_REPOSITORY_URL: url,
      PROJECT_ID: slug,
      BUILD_ID: "build-clone-secret",
      INSTALL_COMMAND: "true",
      BUILD_COMMAND: "cat README.md .git/config; env",
    });
    const status = await subscriber.status();

    expect(status).toMatchObject({ status: "succeeded" });
    expect(await builder.exit()).toBe(0);

    const logs = subscriber.messages.map((m) => m.log);
    expect(logs).toContain("private");
    expect(logs).toContain(
      "Step clone started: git clone https://***@git.example.invalid/site.git",
    );
    expect(logs).toContainEqual(
      expect.stringContaining("url = https://git.example.invalid/site.git"),
    );
    expect(logs.filter((log) => log.includes("s3cr3t"))).toEqual([]);
  });
});
