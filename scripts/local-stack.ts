/**
 * `npm start`: the whole system on one machine, on real input.
 *
 * Brings up Valkey (the configured one; or, when nothing answers at the
 * default URL, a throwaway server from the local binary), one relay and the
 * launcher, starts a build of the example project in examples/site, and
 * streams its log to the terminal through bin/logs. Ctrl-C stops it all.
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `REDIS_URL` (`VALKEY_URL`, `AIVEN_REDIS_URL`) | `redis://127.0.0.1:6379` | Valkey to use |
 * | `RELAY_PORT` | 9002 | the relay's port |
 * | `LAUNCHER_PORT` | 9000 | the launcher's port |
 * | `STACK_HOST` | `127.0.0.1` | the address both listen on; the launcher runs any build command it is sent, so only this machine reaches it unless told otherwise |
 * | `EXAMPLE_SLUG` | `example-site` | slug of the example build |
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { z } from "zod";
import { ConfigError, portVar, readEnv } from "../shared/env-config.ts";
import { LocalValkey } from "../shared/local-valkey.ts";
import { readValkeyConfig, redactUrl } from "../shared/valkey-config.ts";
import { isSlug } from "../shared/channel-name.ts";
import { StackProcess } from "./stack-process.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

const schema = z.object({
  RELAY_PORT: portVar.default(9002),
  LAUNCHER_PORT: portVar.default(9000),
  STACK_HOST: z.string().min(1).default("127.0.0.1"),
  EXAMPLE_SLUG: z
    .string()
    .default("example-site")
    .refine((value) => isSlug(value), "must be a DNS label"),
});

// A closed terminal or pipe must not take the stack down with an EPIPE.
process.stderr.on("error", () => {});
process.stdout.on("error", () => {});

function say(text: string): void {
  process.stderr.write(`\u001b[36m[start]\u001b[0m ${text}\n`);
}

async function answers(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function main(): Promise<void> {
  let vars;
  let valkeyConfig;
  try {
    vars = readEnv(schema, process.env);
    valkeyConfig = readValkeyConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    say(err.message);
    process.exit(2);
  }

  const stopping: Array<() => Promise<void>> = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stopping.reverse()) await stop().catch(() => {});
  };
  process.once("SIGINT", () => {
    say("stopping");
    void stopAll().then(() => process.exit(130));
  });
  process.once("SIGTERM", () => {
    void stopAll().then(() => process.exit(143));
  });

  let valkeyUrl = valkeyConfig.url;
  if (!(await answers(valkeyUrl))) {
    if (valkeyConfig.urlIsExplicit) {
      say(`nothing answers at ${redactUrl(valkeyUrl)}; check REDIS_URL`);
      process.exit(1);
    }
    say(`nothing answers at ${valkeyUrl}; starting a throwaway Valkey`);
    const local = await LocalValkey.start().catch((err: Error) => {
      say(`${err.message}; install valkey-server or redis-server`);
      process.exit(1);
    });
    stopping.push(() => local.stop());
    valkeyUrl = local.url;
    say(`throwaway Valkey listening at ${valkeyUrl}`);
  } else {
    say(`using Valkey at ${redactUrl(valkeyUrl)}`);
  }

  const common = {
    REDIS_URL: valkeyUrl,
    HOST: vars.STACK_HOST,
    LOG_LEVEL: "info",
  };
  const relay = new StackProcess("relay", {
    ...common,
    PORT: String(vars.RELAY_PORT),
  });
  stopping.push(() => relay.stop());
  const launcher = new StackProcess("launcher", {
    ...common,
    PORT: String(vars.LAUNCHER_PORT),
  });
  stopping.push(() => launcher.stop());

  const [relayPort, launcherPort] = await Promise.all([
    relay.ready(),
    launcher.ready(),
  ]).catch(async (err: Error) => {
    say(err.message);
    say("a taken port can be moved with RELAY_PORT and LAUNCHER_PORT");
    await stopAll();
    process.exit(1);
  });
  const relayUrl = `http://127.0.0.1:${relayPort}`;
  const launcherUrl = `http://127.0.0.1:${launcherPort}`;
  say(`relay at ${relayUrl}, launcher at ${launcherUrl}`);

  const request = {
    gitUrl: ROOT,
    startDir: "examples/site",
    installCommand: "npm install --no-audit --no-fund",
    buildCommand: "npm run build",
  };
  const response = await fetch(
    `${launcherUrl}/projects/${vars.EXAMPLE_SLUG}/builds`,
    {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
    },
  );
  const started = (await response.json()) as {
    buildId?: string;
    error?: unknown;
  };
  if (response.status !== 202 || !started.buildId) {
    say(`the launcher refused the example build: ${JSON.stringify(started)}`);
    await stopAll();
    process.exit(1);
  }
  say(
    `build ${started.buildId} of ${vars.EXAMPLE_SLUG} started; its log follows`,
  );

  // Named by id: the slug's latest build in history may still be the one
  // before this, until the builder publishes its first line.
  const viewer = spawn(
    `${ROOT}bin/logs`,
    ["--build", started.buildId, vars.EXAMPLE_SLUG],
    { stdio: "inherit", env: { ...process.env, RELAY_URL: relayUrl } },
  );
  const code = await new Promise<number | null>((resolve) =>
    viewer.on("exit", resolve),
  );
  say(`the build ended with exit code ${code}`);

  say(
    "the stack keeps running; Ctrl-C stops it (after up to 30 s while a build runs). To start another build:",
  );
  process.stderr.write(
    `  curl -X POST ${launcherUrl}/projects/${vars.EXAMPLE_SLUG}/builds \\\n` +
      `    -H 'content-type: application/json' \\\n` +
      `    -d '${JSON.stringify(request)}'\n`,
  );
  say(
    "to watch that build as it runs, with the buildId the launcher answered:",
  );
  process.stderr.write(
    `  RELAY_URL=${relayUrl} bin/logs --build <buildId> ${vars.EXAMPLE_SLUG}\n`,
  );
  say("without --build, bin/logs follows the slug's latest build in history");
}

await main();
