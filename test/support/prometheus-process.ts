/**
 * Runs Debian's prometheus with deploy/prometheus.yml scraping local relays.
 *
 * The file is used as written except for what only a deployment knows: the
 * `relay` job's Docker DNS discovery becomes a static list of local relays,
 * the other jobs (whose targets exist only inside compose) are dropped, and
 * scrapes happen every second so a test need not wait long.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parse, stringify } from "yaml";
import { freePort } from "../../shared/local-valkey.ts";
import { ROOT } from "./service-process.ts";
import { waitFor } from "./wait-for.ts";

export const PROMETHEUS_CONFIG_PATH = join(ROOT, "deploy", "prometheus.yml");

interface ScrapeConfig {
  job_name: string;
  dns_sd_configs?: unknown;
  static_configs?: Array<{ targets: string[] }>;
  [key: string]: unknown;
}

interface PrometheusConfig {
  global?: Record<string, unknown>;
  scrape_configs: ScrapeConfig[];
}

/** The parsed deploy/prometheus.yml. */
export function readPrometheusConfig(): PrometheusConfig {
  return parse(
    readFileSync(PROMETHEUS_CONFIG_PATH, "utf8"),
  ) as PrometheusConfig;
}

/** deploy/prometheus.yml with its relay job pointed at `relayTargets`. */
export function renderPrometheusConfig(
  relayTargets: readonly string[],
): string {
  const config = readPrometheusConfig();
  const relay = config.scrape_configs.find((job) => job.job_name === "relay");
  if (!relay?.dns_sd_configs) {
    throw new Error("deploy/prometheus.yml: no relay job with dns_sd_configs");
  }

  delete relay.dns_sd_configs;
  relay.static_configs = [{ targets: [...relayTargets] }];
  config.scrape_configs = [relay];
  config.global = {
    ...config.global,
    scrape_interval: "1s",
    scrape_timeout: "1s",
    evaluation_interval: "1s",
  };
  return stringify(config);
}

export interface QueryResult {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusHandle {
  url: string;
  output: string[];
  /** An instant query; rejects when Prometheus reports an error. */
  query(promql: string): Promise<QueryResult[]>;
  stop(): Promise<void>;
}

/**
 * Starts prometheus on a free loopback port with its own storage folder,
 * and resolves once it reports ready. The caller registers `stop`, which
 * also removes the folder.
 */
export async function startPrometheus(
  binary: string,
  relayTargets: readonly string[],
): Promise<PrometheusHandle> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "codebay-prometheus-"));
  const configPath = join(dir, "prometheus.yml");
  writeFileSync(configPath, renderPrometheusConfig(relayTargets));

  const child = spawn(
    binary,
    [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );

  const output: string[] = [];
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", (err) => {
      output.push(`spawn failed: ${err.message}`);
      resolve();
    });
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => output.push(line));
  }

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
    }
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}`;
  const query = async (promql: string): Promise<QueryResult[]> => {
    const response = await fetch(
      `${url}/api/v1/query?query=${encodeURIComponent(promql)}`,
    );
    const body = (await response.json()) as {
      status: string;
      error?: string;
      data?: { result: QueryResult[] };
    };
    if (body.status !== "success") {
      throw new Error(`prometheus rejected ${promql}: ${body.error}`);
    }
    return body.data?.result ?? [];
  };

  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`prometheus exited at start:\n${output.join("\n")}`);
        }
        return fetch(`${url}/-/ready`).then(
          (r) => r.status,
          () => 0,
        );
      },
      (status) => status === 200,
      { what: "prometheus ready" },
    );
  } catch (err) {
    await stop();
    throw err;
  }

  return { url, output, query, stop };
}
