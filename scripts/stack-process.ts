/**
 * One service of the local stack: a `bin/` executable whose JSON log lines
 * are shown briefly on the terminal and whose `ready` line gives its port.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

export class StackProcess {
  private readonly child: ChildProcess;
  private readonly readyPort: Promise<number>;

  constructor(
    readonly name: string,
    env: Record<string, string>,
  ) {
    this.child = spawn(`${ROOT}bin/${name}`, [], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"],
    });

    // The stack's services never outlive the script that started them.
    const kill = (): void => {
      this.child.kill("SIGTERM");
    };
    process.once("exit", kill);
    this.child.once("exit", () => process.off("exit", kill));

    this.readyPort = new Promise((resolve, reject) => {
      this.child.once("exit", (code) => {
        reject(
          new Error(`${name} exited with code ${code} before it was ready`),
        );
      });
      createInterface({ input: this.child.stdout! }).on("line", (line) => {
        let record: {
          msg?: string;
          level?: number;
          port?: number;
          err?: { message?: string };
        };
        try {
          record = JSON.parse(line) as typeof record;
        } catch {
          return;
        }
        if (record.msg === "ready" && typeof record.port === "number") {
          resolve(record.port);
        }
        if ((record.level ?? 0) >= 40) {
          const why = record.err?.message ? `: ${record.err.message}` : "";
          process.stderr.write(`[${name}] ${record.msg ?? line}${why}\n`);
        }
      });
    });
  }

  ready(): Promise<number> {
    return this.readyPort;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, "exit");
    this.child.kill("SIGTERM");
    await exited;
  }
}
