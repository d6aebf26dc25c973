/**
 * Runs the benchmark's builds in a child process (publisher-process.ts),
 * so that their CPU is neither the benchmark's nor a relay's.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { BenchError, BenchErrorCode } from "./bench-errors.ts";

const PUBLISHER_PROCESS = fileURLToPath(
  new URL("./publisher-process.ts", import.meta.url),
);

export interface BuildRef {
  slug: string;
  buildId: string;
}

export type PublisherRequest = {
  type: "run";
  valkeyUrl: string;
  builds: BuildRef[];
  linesPerSecondPerBuild: number;
  durationMs: number;
  /** Build i uses seed + i, so every system sees the same text. */
  seed: number;
};

export interface PublishedBuild extends BuildRef {
  /** The status's seq: every seq up to it was published. */
  lastSeq: number;
  /** Messages still queued when the publisher gave up; 0 normally. */
  unpublished: number;
}

export interface PublishResult {
  startedAtMs: number;
  /** When the last message (every build's status) was published. */
  publishedAtMs: number;
  builds: PublishedBuild[];
}

type PublisherAnswer =
  ({ type: "done" } & PublishResult) | { type: "failed"; message: string };

export class BuildPublisher {
  private readonly child: ChildProcess;

  constructor() {
    this.child = fork(PUBLISHER_PROCESS, [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Publishes every build's lines at the rate, then its status. */
  run(request: Omit<PublisherRequest, "type">): Promise<PublishResult> {
    return new Promise((resolve, reject) => {
      const onExit = (): void => {
        reject(
          new BenchError(BenchErrorCode.PUBLISHER, "publisher process exited"),
        );
      };
      this.child.once("exit", onExit);
      this.child.once("message", (answer: PublisherAnswer) => {
        this.child.off("exit", onExit);
        if (answer.type === "done") {
          resolve(answer);
        } else {
          reject(new BenchError(BenchErrorCode.PUBLISHER, answer.message));
        }
      });
      this.child.send({ type: "run", ...request });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, "exit");
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
