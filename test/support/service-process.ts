/**
 * Runs one of the `bin/` executables as a real child process and reads its
 * JSON log lines, so tests can wait for events such as `ready`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface LogRecord {
  msg: string;
  level: number;
  [field: string]: unknown;
}

export class ServiceProcess {
  readonly child: ChildProcess;
  readonly logs: LogRecord[] = [];
  readonly stderr: string[] = [];
  private waiters: Array<{
    match: (record: LogRecord) => boolean;
    resolve: (record: LogRecord) => void;
  }> = [];

  constructor(
    readonly name: string,
    args: readonly string[],
    env: Record<string, string>,
  ) {
    this.child = spawn(`${ROOT}bin/${name}`, args, {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });

    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      let record: LogRecord;
      try {
        record = JSON.parse(line) as LogRecord;
      } catch {
        return;
      }
      this.logs.push(record);
      this.waiters = this.waiters.filter((waiter) => {
        if (!waiter.match(record)) return true;
        waiter.resolve(record);
        return false;
      });
    });
    createInterface({ input: this.child.stderr! }).on("line", (line) => {
      this.stderr.push(line);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first log record (past or future) that matches. */
  waitForLog(
    match: (record: LogRecord) => boolean,
    timeoutMs = 20_000,
  ): Promise<LogRecord> {
    const seen = this.logs.find(match);
    if (seen) return Promise.resolve(seen);

    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `${this.name}: no matching log within ${timeoutMs} ms; stderr: ${this.stderr.join("\n")}`,
          ),
        );
      }, timeoutMs);
      this.waiters.push({
        match,
        resolve: (record) => {
          clearTimeout(timer);
          resolve(record);
        },
      });
      this.child.once("exit", (code) => {
        clearTimeout(timer);
        reject(
          new Error(
            `${this.name} exited with ${code}; stderr: ${this.stderr.join("\n")}`,
          ),
        );
      });
    });
  }

  /** Waits for the `ready` record, which carries the listening `port`. */
  async ready(): Promise<number> {
    const record = await this.waitForLog((r) => r.msg === "ready");
    return record.port as number;
  }

  async exit(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const [code] = (await once(this.child, "exit")) as [number | null];
    return code;
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      return this.child.exitCode;
    }
    const exited = this.exit();
    this.child.kill(signal);
    return exited;
  }
}
