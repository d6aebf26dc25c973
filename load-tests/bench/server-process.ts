/**
 * One server under test as its own OS process: a relay (`bin/relay`), a
 * baseline node or a floor node. It is ready when it prints a JSON line
 * `{"msg":"ready","port":<port>}`, which the relay's pino log and the two
 * comparison servers all do.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { BenchError, BenchErrorCode } from "./bench-errors.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const KEPT_STDERR_LINES = 20;

export class ServerProcess {
  readonly child: ChildProcess;
  readonly stderr: string[] = [];
  port = 0;

  constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
    env: Record<string, string>,
    /** Keep everything the process prints in this file. */
    logFile?: string,
  ) {
    this.child = spawn(command, args, {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (logFile !== undefined) {
      const log = createWriteStream(logFile);
      this.child.stdout!.pipe(log);
      this.child.stderr!.pipe(log);
    }
    createInterface({ input: this.child.stderr! }).on("line", (line) => {
      this.stderr.push(line);
      if (this.stderr.length > KEPT_STDERR_LINES) this.stderr.shift();
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the port once the process says it is ready. */
  ready(): Promise<number> {
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => {
        clearTimeout(timer);
        reject(
          new BenchError(
            BenchErrorCode.SERVER_START,
            `${this.name} ${why}; stderr: ${this.stderr.join("\n")}`,
          ),
        );
      };
      const timer = setTimeout(
        () => fail(`not ready within ${READY_TIMEOUT_MS} ms`),
        READY_TIMEOUT_MS,
      );
      this.child.once("exit", (code) => fail(`exited with ${code}`));

      const lines = createInterface({ input: this.child.stdout! });
      lines.on("line", (line) => {
        if (this.port !== 0 || !line.startsWith("{")) return;
        let record: { msg?: unknown; port?: unknown };
        try {
          record = JSON.parse(line) as typeof record;
        } catch {
          return;
        }
        if (record.msg !== "ready" || typeof record.port !== "number") return;

        clearTimeout(timer);
        this.port = record.port;
        resolve(record.port);
      });
    });
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    const exited = once(this.child, "exit");
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
}
