/**
 * Starts a throwaway Valkey (or Redis) server from the binary on the PATH,
 * on a free loopback port. `npm start` uses it when nothing answers at the
 * default URL, and every test uses it instead of the shared server.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

export interface LocalValkeyOptions {
  /** Fixed port; a free one is found when omitted. */
  port?: number;
  /** Keep data across restarts with an append-only file. Default false. */
  persistent?: boolean;
  /** Extra server arguments, such as `--cluster-enabled yes`. */
  args?: readonly string[];
}

export class LocalValkeyError extends Error {
  readonly code = "VALKEY_ERR_LOCAL_SERVER";
}

const BINARIES = ["valkey-server", "redis-server"];

/** The first server binary found on the PATH, or undefined. */
export async function findValkeyBinary(): Promise<string | undefined> {
  for (const name of BINARIES) {
    const found = await new Promise<boolean>((resolve) => {
      const child = spawn(name, ["--version"], { stdio: "ignore" });
      child.on("error", () => resolve(false));
      child.on("exit", (code) => resolve(code === 0));
    });
    if (found) return name;
  }
  return undefined;
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export class LocalValkey {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  private child: ChildProcess | undefined;

  private constructor(
    private readonly binary: string,
    port: number,
    private readonly options: LocalValkeyOptions,
  ) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.dir = mkdtempSync(join(tmpdir(), "codebay-valkey-"));
  }

  static async start(options: LocalValkeyOptions = {}): Promise<LocalValkey> {
    const binary = await findValkeyBinary();
    if (!binary) {
      throw new LocalValkeyError("no valkey-server or redis-server on PATH");
    }
    const port = options.port ?? (await freePort());
    const server = new LocalValkey(binary, port, options);
    await server.resume();
    return server;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the server process (again, after `pause`) and waits for PONG. */
  async resume(): Promise<void> {
    if (this.child) return;

    const persistent = this.options.persistent ?? false;
    const args = [
      "--port",
      String(this.port),
      "--bind",
      "127.0.0.1",
      "--dir",
      this.dir,
      "--save",
      "",
      "--appendonly",
      persistent ? "yes" : "no",
      "--appendfsync",
      "always",
      ...(this.options.args ?? []),
    ];

    const child = spawn(this.binary, args, {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.child = child;
    // A throwaway server must not outlive the process that started it, even
    // when that process is killed by a test runner's timeout.
    const killChild = (): void => {
      child.kill("SIGKILL");
    };
    process.once("exit", killChild);
    child.on("exit", () => {
      process.off("exit", killChild);
      if (this.child === child) this.child = undefined;
    });

    await this.waitForPong(child);
  }

  /** Stops the process; data survives only when `persistent` is set. */
  async pause(): Promise<void> {
    const child = this.child;
    if (!child) return;

    const exited = new Promise<void>((resolve) =>
      child.once("exit", () => resolve()),
    );
    child.kill("SIGTERM");
    await exited;
  }

  async stop(): Promise<void> {
    await this.pause();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async waitForPong(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + 10_000;

    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        throw new LocalValkeyError("server exited at start");
      }
      const client = new Redis(this.port, "127.0.0.1", {
        lazyConnect: true,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
      });
      client.on("error", () => {});
      try {
        await client.connect();
        await client.ping();
        client.disconnect();
        return;
      } catch {
        client.disconnect();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }

    child.kill("SIGKILL");
    throw new LocalValkeyError("server did not answer within 10 s");
  }
}
