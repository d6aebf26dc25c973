/**
 * Runs a launcher in the test's own process, on a free port, against a
 * LocalValkey, with its pino log captured so a test can wait for events
 * such as `build ended`. The environment goes through the launcher's real
 * config reader.
 */
import { once } from "node:events";
import { Writable } from "node:stream";
import { pino } from "pino";
import type { LocalValkey } from "../../shared/local-valkey.ts";
import { readLauncherConfig } from "../../launcher/config.ts";
import { Launcher, type LauncherDeps } from "../../launcher/launcher.ts";
import type { LogRecord } from "./service-process.ts";

/** A pino destination that keeps every record and can wait for one. */
export class LogTap extends Writable {
  readonly records: LogRecord[] = [];
  private waiters: Array<{
    match: (record: LogRecord) => boolean;
    resolve: (record: LogRecord) => void;
  }> = [];

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: () => void,
  ): void {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (line !== "") this.add(JSON.parse(line) as LogRecord);
    }
    callback();
  }

  /** The first record, past or future, that matches. */
  waitFor(
    match: (record: LogRecord) => boolean,
    timeoutMs = 30_000,
  ): Promise<LogRecord> {
    const seen = this.records.find(match);
    if (seen) return Promise.resolve(seen);

    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const msgs = this.records.map((r) => r.msg).join(", ");
        reject(new Error(`no matching log within ${timeoutMs} ms: ${msgs}`));
      }, timeoutMs);
      this.waiters.push({
        match,
        resolve: (record) => {
          clearTimeout(timer);
          resolve(record);
        },
      });
    });
  }

  /** Records with this message, in order. */
  withMsg(msg: string): LogRecord[] {
    return this.records.filter((r) => r.msg === msg);
  }

  private add(record: LogRecord): void {
    this.records.push(record);
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.match(record)) return true;
      waiter.resolve(record);
      return false;
    });
  }
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** The body read as JSON; undefined when it is not. */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export class TestLauncher {
  private constructor(
    readonly launcher: Launcher,
    readonly logs: LogTap,
    readonly baseUrl: string,
  ) {}

  /**
   * Starts a launcher with `env` over test defaults (port 0, loopback,
   * debug log, this Valkey) and waits until Valkey is connected.
   */
  static async start(
    valkey: LocalValkey,
    env: Record<string, string> = {},
    deps: Omit<LauncherDeps, "logger"> = {},
  ): Promise<TestLauncher> {
    const options = readLauncherConfig({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "debug",
      REDIS_URL: valkey.url,
      ...env,
    });
    const logs = new LogTap();
    const logger = pino({ level: options.logLevel }, logs);

    const launcher = await Launcher.start(options, { ...deps, logger });
    if (!launcher.store.ready) await once(launcher.store.client, "ready");

    return new TestLauncher(
      launcher,
      logs,
      `http://127.0.0.1:${launcher.port}`,
    );
  }

  close(): Promise<void> {
    return this.launcher.close();
  }

  async request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpAnswer> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      init.headers = { "content-type": "application/json", ...headers };
    }

    const response = await fetch(`${this.baseUrl}${path}`, init);
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, text, json };
  }

  /** Waits for the `build ended` log of a build, then reads its record. */
  async ended(buildId: string): Promise<HttpAnswer> {
    await this.logs.waitFor(
      (r) => r.msg === "build ended" && r.buildId === buildId,
    );
    return this.request("GET", `/builds/${buildId}`);
  }

  /** One sample of the Prometheus text, 0 when the series is absent. */
  async metric(name: string, labels: Record<string, string> = {}) {
    const answer = await this.request("GET", "/metrics");
    return sampleValue(answer.text, name, labels);
  }
}

/**
 * Reads the Prometheus text format into samples, checking every line is a
 * comment, blank, or `name{labels} value`. Throws on any other line.
 */
export function parseMetrics(
  text: string,
): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const samples = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

  for (const row of text.split("\n")) {
    if (row === "" || row.startsWith("#")) continue;
    const match = line.exec(row);
    if (!match) throw new Error(`not a metrics line: ${row}`);

    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[3] ?? "").matchAll(label)) {
      labels[key!] = value!;
    }
    samples.push({ name: match[1]!, labels, value: Number(match[4]) });
  }
  return samples;
}

export function sampleValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number {
  const sample = parseMetrics(text).find(
    (s) =>
      s.name === name &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return sample?.value ?? 0;
}
