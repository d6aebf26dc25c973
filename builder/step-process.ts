/**
 * Runs one step of a build (git, or a command through `sh -c`) and passes
 * every line it prints to the build log, in the order read, stamped with
 * the time it was read.
 *
 * The step runs in its own process group, so stopping it reaches whatever
 * it started (npm, node, a compiler). When the step exits but something it
 * left behind keeps its output pipes open, the step still ends
 * `stdioGraceMs` later; that process is not waited for.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";
import type { Readable } from "node:stream";
import type { Logger } from "../shared/logger.ts";
import type { LogStream } from "../shared/wire.ts";
import {
  OUTPUT_STREAMS,
  stepEndedText,
  stepStartedText,
  type LineFields,
  type StepName,
} from "./build-messages.ts";
import type { BuilderOptions } from "./config.ts";
import { StepSpawnError } from "./errors.ts";
import { LineSplitter } from "./line-splitter.ts";

/** Where a build's lines go; LogPublisher is one. */
export interface BuildLog {
  line(
    stream: LogStream,
    text: string,
    tsMs: number,
    fields?: LineFields,
  ): void;
}

export type StepProcessOptions = Pick<
  BuilderOptions,
  "lineMaxBytes" | "progressIntervalMs"
> & {
  step: StepName;
  file: string;
  args: readonly string[];
  /** How the command is shown in the log; credentials masked. */
  display: string;
  cwd: string;
  env: Readonly<Record<string, string>>;
  log: BuildLog;
  logger: Logger;
  /** After the step exits, how long its pipes may stay open. Default 2000. */
  stdioGraceMs?: number;
};

export interface StepExit {
  /** The step's exit code; 128 + n when signal n ended it; 127 when it never started. */
  exitCode: number;
  durationMs: number;
}

export class StepProcess {
  private child: ChildProcess | undefined;
  private readonly splitters = new Map<LogStream, LineSplitter>();
  private tickTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: StepProcessOptions) {
    for (const stream of OUTPUT_STREAMS) {
      this.splitters.set(
        stream,
        new LineSplitter({
          lineMaxBytes: options.lineMaxBytes,
          progressIntervalMs: options.progressIntervalMs,
        }),
      );
    }
  }

  /** Runs the step to its end; never rejects. */
  async run(): Promise<StepExit> {
    const { step, display, log } = this.options;
    const startedMs = performance.now();

    log.line("system", stepStartedText(step, display), Date.now(), {
      step,
      phase: "start",
    });
    this.options.logger.info({ step, command: display }, "step started");

    const exitCode = await this.spawnAndWait();
    const durationMs = Math.round(performance.now() - startedMs);

    log.line("system", stepEndedText(step, exitCode, durationMs), Date.now(), {
      step,
      phase: "end",
      exitCode,
      durationMs,
    });
    this.options.logger.info({ step, exitCode, durationMs }, "step finished");
    return { exitCode, durationMs };
  }

  /** Sends `signal` to the step's whole process group. */
  kill(signal: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined || this.child?.exitCode !== null) return;

    try {
      process.kill(-pid, signal);
    } catch {
      // The group is already gone.
    }
  }

  private spawnAndWait(): Promise<number> {
    const { file, args, cwd, env } = this.options;

    return new Promise((resolve) => {
      const child = spawn(file, args, {
        cwd,
        env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      this.child = child;

      let graceTimer: NodeJS.Timeout | undefined;
      let spawnFailed = false;

      this.read(child.stdout!, "stdout");
      this.read(child.stderr!, "stderr");

      child.on("error", (cause) => {
        spawnFailed = true;
        const err = new StepSpawnError("step could not start", { cause });
        this.options.logger.error(
          { err, step: this.options.step },
          "step failed to start",
        );
        this.options.log.line(
          "system",
          `Could not start ${file}: ${cause.message}`,
          Date.now(),
        );
      });

      child.on("exit", () => {
        const graceMs = this.options.stdioGraceMs ?? 2000;
        graceTimer = setTimeout(() => {
          this.options.logger.warn(
            { step: this.options.step, graceMs },
            "step output still open after exit, closing it",
          );
          child.stdout?.destroy();
          child.stderr?.destroy();
        }, graceMs);
      });

      child.on("close", (code, signal) => {
        clearTimeout(graceTimer);
        this.finishLines();
        resolve(exitCodeOf(code, signal, spawnFailed));
      });
    });
  }

  private read(input: Readable, stream: LogStream): void {
    const splitter = this.splitters.get(stream)!;

    input.on("data", (chunk: Buffer) => {
      const nowMs = Date.now();
      this.emit(stream, splitter.push(chunk, nowMs), nowMs);
      this.scheduleTick();
    });
    input.on("error", (err) => {
      this.options.logger.warn({ err, stream }, "step output read failed");
    });
  }

  private emit(stream: LogStream, lines: string[], nowMs: number): void {
    for (const text of lines) this.options.log.line(stream, text, nowMs);
  }

  /** Sends held-back progress snapshots once they are due. */
  private scheduleTick(): void {
    if (this.tickTimer) return;

    let dueMs = Infinity;
    for (const splitter of this.splitters.values()) {
      dueMs = Math.min(dueMs, splitter.nextTickAtMs() ?? Infinity);
    }
    if (dueMs === Infinity) return;

    this.tickTimer = setTimeout(
      () => {
        this.tickTimer = undefined;
        const nowMs = Date.now();
        for (const [stream, splitter] of this.splitters) {
          this.emit(stream, splitter.tick(nowMs), nowMs);
        }
        this.scheduleTick();
      },
      Math.max(0, dueMs - Date.now()),
    );
  }

  private finishLines(): void {
    clearTimeout(this.tickTimer);
    this.tickTimer = undefined;

    const nowMs = Date.now();
    for (const [stream, splitter] of this.splitters) {
      this.emit(stream, splitter.end(nowMs), nowMs);
    }
  }
}

function exitCodeOf(
  code: number | null,
  signal: NodeJS.Signals | null,
  spawnFailed: boolean,
): number {
  if (spawnFailed) return 127;
  if (code !== null) return code;
  if (signal !== null) return 128 + (constants.signals[signal] ?? 0);
  return 1;
}
