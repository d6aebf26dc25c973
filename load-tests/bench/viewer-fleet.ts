/**
 * The benchmark's side of its viewer processes (viewer-process.ts): forks
 * them, spreads viewers over them, and merges their answers.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { DeliveryCounts } from "../delivery-tracker.ts";
import type {
  ConnectAnswer,
  ExpectedEnds,
  FleetAnswer,
  FleetRequest,
  ProgressAnswer,
  ReportAnswer,
} from "./fleet-messages.ts";
import { LatencyHistogram } from "./latency-histogram.ts";
import type { LightViewerOptions } from "./light-viewer.ts";
import { BenchError, BenchErrorCode } from "./bench-errors.ts";

const VIEWER_PROCESS = fileURLToPath(
  new URL("./viewer-process.ts", import.meta.url),
);

export interface FleetConnectResult {
  ready: number;
  failed: number;
  reasons: string[];
  readyLatency: LatencyHistogram;
  /** Subscribed viewers per second, from the first open to the last ready. */
  readyPerSecond: number;
}

export interface FleetReport {
  counts: DeliveryCounts;
  viewers: number;
  disconnected: number;
  frames: number;
  bytes: number;
  parsedFrames: number;
  reconnects: number;
  latency: LatencyHistogram;
  lastFrameMs: number;
}

type AnswerOf<T extends FleetRequest["type"]> = Extract<
  FleetAnswer,
  { type: T }
>;

class ViewerProcess {
  private readonly waiting = new Map<string, (answer: FleetAnswer) => void>();
  private exited = false;

  constructor(readonly child: ChildProcess) {
    child.on("message", (message: FleetAnswer) => {
      const resolve = this.waiting.get(message.type);
      this.waiting.delete(message.type);
      resolve?.(message);
    });
    child.on("exit", () => {
      this.exited = true;
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  request<T extends FleetRequest>(message: T): Promise<AnswerOf<T["type"]>> {
    if (this.exited) {
      return Promise.reject(
        new BenchError(BenchErrorCode.VIEWER_PROCESS, "viewer process exited"),
      );
    }
    return new Promise((resolve, reject) => {
      const onExit = (): void => {
        reject(
          new BenchError(
            BenchErrorCode.VIEWER_PROCESS,
            "viewer process exited before answering",
          ),
        );
      };
      this.child.once("exit", onExit);
      this.waiting.set(message.type, (answer) => {
        this.child.off("exit", onExit);
        resolve(answer as AnswerOf<T["type"]>);
      });
      this.child.send(message);
    });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = once(this.child, "exit");
    try {
      await this.request({ type: "close" });
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

export class ViewerFleet {
  private constructor(private readonly processes: ViewerProcess[]) {}

  /** Forks `count` viewer processes. */
  static start(count: number): ViewerFleet {
    const processes = Array.from({ length: count }, () => {
      const child = fork(VIEWER_PROCESS, [], {
        execArgv: ["--import", "tsx"],
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      return new ViewerProcess(child);
    });
    return new ViewerFleet(processes);
  }

  get pids(): number[] {
    return this.processes.flatMap((p) => (p.pid === undefined ? [] : [p.pid]));
  }

  /**
   * Opens every viewer, spread round-robin over the processes, with at most
   * `concurrency` connections being opened at once in all.
   */
  async connect(
    viewers: readonly LightViewerOptions[],
    concurrency: number,
  ): Promise<FleetConnectResult> {
    const shares = this.processes.map((): LightViewerOptions[] => []);
    viewers.forEach((viewer, i) => shares[i % shares.length]!.push(viewer));

    const perProcess = Math.max(
      1,
      Math.floor(concurrency / this.processes.length),
    );
    const answers = await Promise.all(
      this.processes.map((p, i) =>
        p.request({
          type: "connect",
          viewers: shares[i]!,
          concurrency: perProcess,
        }),
      ),
    );
    return mergeConnects(answers);
  }

  async progress(expected: ExpectedEnds): Promise<ProgressAnswer> {
    const answers = await Promise.all(
      this.processes.map((p) => p.request({ type: "progress", expected })),
    );
    return {
      type: "progress",
      complete: sum(answers, (a) => a.complete),
      open: sum(answers, (a) => a.open),
      delivered: sum(answers, (a) => a.delivered),
      lastFrameMs: Math.max(0, ...answers.map((a) => a.lastFrameMs)),
    };
  }

  async report(expected: ExpectedEnds): Promise<FleetReport> {
    const answers = await Promise.all(
      this.processes.map((p) => p.request({ type: "report", expected })),
    );
    return mergeReports(answers);
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
  }
}

function mergeConnects(answers: ConnectAnswer[]): FleetConnectResult {
  const readyLatency = new LatencyHistogram();
  for (const answer of answers) readyLatency.merge(answer.readyLatency);

  const started = answers.filter((a) => a.firstStartMs > 0);
  const firstStartMs = Math.min(...started.map((a) => a.firstStartMs));
  const lastReadyMs = Math.max(...started.map((a) => a.lastReadyMs));
  const ready = sum(answers, (a) => a.ready);
  const seconds = Math.max(0.001, (lastReadyMs - firstStartMs) / 1000);

  return {
    ready,
    failed: sum(answers, (a) => a.failed),
    reasons: answers.flatMap((a) => a.reasons).slice(0, 5),
    readyLatency,
    readyPerSecond: started.length === 0 ? 0 : ready / seconds,
  };
}

function mergeReports(answers: ReportAnswer[]): FleetReport {
  const latency = new LatencyHistogram();
  const counts: DeliveryCounts = {
    delivered: 0,
    lost: 0,
    undelivered: 0,
    duplicates: 0,
    gapNotices: 0,
    finishedBuilds: 0,
  };

  for (const answer of answers) {
    latency.merge(answer.latency);
    for (const key of Object.keys(counts) as Array<keyof DeliveryCounts>) {
      counts[key] += answer.counts[key];
    }
  }
  return {
    counts,
    viewers: sum(answers, (a) => a.viewers),
    disconnected: sum(answers, (a) => a.disconnected),
    frames: sum(answers, (a) => a.frames),
    bytes: sum(answers, (a) => a.bytes),
    parsedFrames: sum(answers, (a) => a.parsedFrames),
    reconnects: sum(answers, (a) => a.reconnects),
    latency,
    lastFrameMs: Math.max(0, ...answers.map((a) => a.lastFrameMs)),
  };
}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}
