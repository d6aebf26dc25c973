/**
 * Runs Debian's haproxy with deploy/haproxy.cfg in front of local relays.
 *
 * The file is used as written except for what only a deployment knows: the
 * two `bind` addresses become free loopback ports, and the
 * `server-template` line, which finds relays through Docker's DNS, becomes
 * one `server` line per local relay. Each replacement must match exactly
 * once, so a change to the file that the tests cannot follow fails loudly.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { onTestFinished } from "vitest";
import { freePort } from "../../shared/local-valkey.ts";
import { ROOT } from "./service-process.ts";
import { waitFor } from "./wait-for.ts";

export const HAPROXY_CONFIG_PATH = join(ROOT, "deploy", "haproxy.cfg");

export interface LocalServer {
  name: string;
  port: number;
}

export interface RenderOptions {
  viewerPort: number;
  statsPort: number;
  servers: readonly LocalServer[];
}

/** deploy/haproxy.cfg with loopback ports and static local servers. */
export function renderHaproxyConfig(options: RenderOptions): string {
  const source = readFileSync(HAPROXY_CONFIG_PATH, "utf8");
  const servers = options.servers
    .map((s) => `    server ${s.name} 127.0.0.1:${s.port}`)
    .join("\n");

  let text = replaceOnce(
    source,
    /^ {4}bind :9002$/m,
    `    bind 127.0.0.1:${options.viewerPort}`,
  );
  text = replaceOnce(
    text,
    /^ {4}bind :8404$/m,
    `    bind 127.0.0.1:${options.statsPort}`,
  );
  return replaceOnce(text, /^ {4}server-template relay .*$/m, servers);
}

function replaceOnce(
  text: string,
  pattern: RegExp,
  replacement: string,
): string {
  const global = new RegExp(pattern.source, `${pattern.flags}g`);
  const count = text.match(global)?.length ?? 0;
  if (count !== 1) {
    throw new Error(
      `deploy/haproxy.cfg: expected one line matching ${pattern}, found ${count}`,
    );
  }
  return text.replace(pattern, replacement);
}

/** One row of the stats page's CSV, by column name. */
export type StatsRow = Record<string, string>;

export interface HaproxyHandle {
  /** Where viewers connect: `http://127.0.0.1:<port>`. */
  url: string;
  statsUrl: string;
  output: string[];
  /** Rows of the `relays` backend's servers, keyed by server name. */
  serverStats(): Promise<Map<string, StatsRow>>;
  stop(): Promise<void>;
}

/**
 * Starts haproxy in the foreground in front of `servers`, and stops it when
 * the current test finishes. Resolves once the stats page answers.
 */
export async function startHaproxy(
  binary: string,
  servers: readonly LocalServer[],
): Promise<HaproxyHandle> {
  const viewerPort = await freePort();
  const statsPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "codebay-haproxy-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));

  const configPath = join(dir, "haproxy.cfg");
  writeFileSync(
    configPath,
    renderHaproxyConfig({ viewerPort, statsPort, servers }),
  );

  const child = spawn(binary, ["-f", configPath, "-db"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", (err) => {
      output.push(`spawn failed: ${err.message}`);
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
    }
    await exited;
  };
  onTestFinished(stop);

  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      output.push(line);
    });
  }

  const statsUrl = `http://127.0.0.1:${statsPort}/stats`;
  const serverStats = async (): Promise<Map<string, StatsRow>> => {
    const csv = await fetch(`${statsUrl};csv`).then((r) => r.text());
    return parseServerRows(csv);
  };

  await waitFor(
    async () => {
      if (child.exitCode !== null) {
        throw new Error(`haproxy exited at start:\n${output.join("\n")}`);
      }
      return serverStats().then(
        (rows) => rows.size,
        () => 0,
      );
    },
    (size) => size === servers.length,
    { what: "haproxy stats page" },
  );

  return {
    url: `http://127.0.0.1:${viewerPort}`,
    statsUrl,
    output,
    serverStats,
    stop,
  };
}

function parseServerRows(csv: string): Map<string, StatsRow> {
  const [header, ...lines] = csv.trim().split("\n");
  const columns = (header ?? "").replace(/^# /, "").split(",");
  const rows = new Map<string, StatsRow>();

  for (const line of lines) {
    const cells = line.split(",");
    const row: StatsRow = {};
    columns.forEach((column, i) => {
      row[column] = cells[i] ?? "";
    });
    const { pxname, svname } = row;
    if (pxname === "relays" && svname !== "BACKEND" && svname !== undefined) {
      rows.set(svname, row);
    }
  }
  return rows;
}
