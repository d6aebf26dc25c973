/**
 * The builder's entry point (bin/builder): runs one build, publishes its
 * log, and exits 0 when the build succeeded, otherwise with the build's
 * exit code (1 when unknown). A bad configuration exits 2 before anything
 * runs. `--help` prints the variables it reads.
 */
import { ConfigError } from "../shared/env-config.ts";
import { createLogger, type Logger } from "../shared/logger.ts";
import { redactUrl } from "../shared/valkey-config.ts";
import {
  createValkeyClient,
  type ValkeyClient,
} from "../shared/valkey-connection.ts";
import { buildEnvironment } from "./build-environment.ts";
import { BuildRunner } from "./build-runner.ts";
import {
  processEnv,
  readBuilderConfig,
  USAGE,
  type BuilderOptions,
} from "./config.ts";
import { LogPublisher } from "./log-publisher.ts";
import { maskUrlCredentials } from "./url-credentials.ts";

const EXIT_BAD_CONFIG = 2;
const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"];

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return 0;
  }

  let options: Readonly<BuilderOptions>;
  try {
    options = readBuilderConfig(processEnv());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`builder: ${err.message}\n`);
    return EXIT_BAD_CONFIG;
  }

  const logger = createLogger({
    service: "builder",
    level: options.logLevel,
    bindings: { slug: options.slug, buildId: options.buildId },
  });
  return runBuild(options, logger);
}

async function runBuild(
  options: Readonly<BuilderOptions>,
  logger: Logger,
): Promise<number> {
  const valkey = openValkey(options, logger);
  const publisher = new LogPublisher({
    ...options,
    client: valkey.client,
    logger,
  });
  const runner = new BuildRunner({
    ...options,
    env: buildEnvironment(processEnv()),
    log: publisher,
    logger,
  });

  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, "stop requested");
    runner.stop(signal);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);

  logger.info(
    {
      repository: maskUrlCredentials(options.repositoryUrl),
      gitRef: options.gitRef,
      startDir: options.startDir,
      valkey: redactUrl(options.valkey.url),
    },
    "build started",
  );
  publisher.system(`Build ${options.buildId} of ${options.slug} started`);

  const result = await runner.run();
  publisher.finish(result);
  logger.info({ ...result }, "build finished");

  const remaining = await publisher.flush(options.flushTimeoutMs);
  publisher.close();
  logger.info({ remaining, ...publisher.metrics }, "log publisher closed");

  await valkey.close();
  for (const signal of STOP_SIGNALS) process.off(signal, onSignal);

  if (result.status === "succeeded") return 0;
  return result.exitCode === 0 ? 1 : result.exitCode;
}

interface ValkeyLink {
  client: ValkeyClient;
  close(): Promise<void>;
}

/**
 * A client whose commands fail at once while disconnected: the publisher's
 * queue is the only buffer, and it decides what to keep.
 */
function openValkey(
  options: Readonly<BuilderOptions>,
  logger: Logger,
): ValkeyLink {
  const client = createValkeyClient(
    {
      url: options.valkey.url,
      caFile: options.valkey.caFile,
      cluster: options.valkey.cluster,
      connectionName: "codebay-builder",
    },
    {
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      // disconnect() during a reconnect waits this long for a 'close' that
      // already happened; the default 2000 would hold the exit that long.
      disconnectTimeout: 100,
    },
  );

  // Each reconnect attempt of an outage reports an error; the first one is
  // the news.
  let connected = false;
  let closing = false;
  client.on("ready", () => {
    connected = true;
    logger.info("valkey connected");
  });
  client.on("error", (err: Error) => {
    if (connected && !closing) logger.warn({ err }, "valkey connection failed");
    else logger.debug({ err }, "valkey connection failed");
    connected = false;
  });
  client.on("close", () => {
    if (connected && !closing) logger.warn("valkey connection lost");
    connected = false;
  });

  const close = async () => {
    closing = true;
    if (client.status === "ready") {
      try {
        await client.quit();
        return;
      } catch {
        // Fall through to a hard close.
      }
    }
    client.disconnect();
  };
  return { client, close };
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`builder: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
