/**
 * Runs one build: clones the repository into a fresh temporary folder,
 * checks out GIT_REF when given, then runs the install and build commands
 * (each with `sh -c`) in START_DIR. Every step's output and its start and
 * end go to the build log. The first step that fails ends the build; its
 * exit code is the build's.
 *
 * The steps run with `env`, which the caller has stripped of the builder's
 * secrets (build-environment.ts). The folder is removed afterwards.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Logger } from "../shared/logger.ts";
import type { BuildResult, StepName } from "./build-messages.ts";
import type { BuilderOptions } from "./config.ts";
import { StartDirError } from "./errors.ts";
import { StepProcess, type BuildLog } from "./step-process.ts";
import {
  hasUrlCredentials,
  maskUrlCredentials,
  stripUrlCredentials,
} from "./url-credentials.ts";

const execFileAsync = promisify(execFile);

export type BuildRunnerOptions = Pick<
  BuilderOptions,
  | "repositoryUrl"
  | "gitRef"
  | "startDir"
  | "installCommand"
  | "buildCommand"
  | "lineMaxBytes"
  | "progressIntervalMs"
> & {
  env: Readonly<Record<string, string>>;
  log: BuildLog;
  logger: Logger;
  /** Where the temporary build folder is made. Default the OS's. */
  workRoot?: string;
};

interface StepFailure {
  step: StepName;
  exitCode: number;
}

interface StepCommand {
  step: StepName;
  file: string;
  args: readonly string[];
  display: string;
  cwd: string;
}

export class BuildRunner {
  private current: StepProcess | undefined;
  private stopSignal: NodeJS.Signals | undefined;

  constructor(private readonly options: BuildRunnerOptions) {}

  /** Runs every step; never rejects. */
  async run(): Promise<BuildResult> {
    const startedMs = performance.now();
    const elapsedMs = () => Math.round(performance.now() - startedMs);

    let failure: StepFailure | undefined;
    try {
      failure = await this.inWorkDir((workDir) =>
        this.runSteps(join(workDir, "repo")),
      );
    } catch (err) {
      this.options.logger.error({ err }, "build could not run");
      this.options.log.line(
        "system",
        `The builder could not run the build: ${String(err)}`,
        Date.now(),
      );
      return { status: "failed", exitCode: 1, durationMs: elapsedMs() };
    }

    if (this.stopSignal) {
      return {
        status: "failed",
        exitCode: 128 + (constants.signals[this.stopSignal] ?? 0),
        durationMs: elapsedMs(),
        signal: this.stopSignal,
        ...(failure ? { failedStep: failure.step } : {}),
      };
    }
    if (failure) {
      return {
        status: "failed",
        exitCode: failure.exitCode === 0 ? 1 : failure.exitCode,
        durationMs: elapsedMs(),
        failedStep: failure.step,
      };
    }
    return { status: "succeeded", exitCode: 0, durationMs: elapsedMs() };
  }

  /**
   * Stops the build: the running step gets `signal`, and no further step
   * starts. The build then fails with exit code 128 + the signal's number.
   */
  stop(signal: NodeJS.Signals): void {
    this.stopSignal ??= signal;
    this.current?.kill(signal);
  }

  /** Runs the steps in order; returns the first that failed, if any. */
  private async runSteps(repoDir: string): Promise<StepFailure | undefined> {
    const o = this.options;

    const cloned = await this.runStep({
      step: "clone",
      file: "git",
      args: ["clone", "--", o.repositoryUrl, repoDir],
      display: `git clone ${maskUrlCredentials(o.repositoryUrl)}`,
      cwd: join(repoDir, ".."),
    });
    if (cloned) return cloned;

    if (hasUrlCredentials(o.repositoryUrl)) {
      const kept = await this.forgetCredentials(repoDir);
      if (kept) return kept;
    }

    if (o.gitRef !== undefined) {
      const checkedOut = await this.runStep({
        step: "checkout",
        file: "git",
        args: ["checkout", "--quiet", o.gitRef, "--"],
        display: `git checkout ${o.gitRef}`,
        cwd: repoDir,
      });
      if (checkedOut) return checkedOut;
    }

    let cwd: string;
    try {
      cwd = await this.startDir(repoDir);
    } catch (err) {
      if (!(err instanceof StartDirError)) throw err;
      o.log.line("system", err.message, Date.now());
      o.logger.warn({ err, startDir: o.startDir }, "start folder missing");
      return { step: "install", exitCode: 1 };
    }

    const installed = await this.runStep({
      step: "install",
      file: "sh",
      args: ["-c", o.installCommand],
      display: o.installCommand,
      cwd,
    });
    if (installed) return installed;

    return this.runStep({
      step: "build",
      file: "sh",
      args: ["-c", o.buildCommand],
      display: o.buildCommand,
      cwd,
    });
  }

  /** Runs one step unless stopped; returns how it failed, if it did. */
  private async runStep(
    command: StepCommand,
  ): Promise<StepFailure | undefined> {
    if (this.stopSignal) return { step: command.step, exitCode: 1 };

    const step = new StepProcess({
      ...command,
      env: this.options.env,
      log: this.options.log,
      logger: this.options.logger,
      lineMaxBytes: this.options.lineMaxBytes,
      progressIntervalMs: this.options.progressIntervalMs,
    });
    this.current = step;
    try {
      const { exitCode } = await step.run();
      return exitCode === 0 ? undefined : { step: command.step, exitCode };
    } finally {
      this.current = undefined;
    }
  }

  /** Runs `work` in a fresh temporary folder, removed afterwards. */
  private async inWorkDir<T>(work: (dir: string) => Promise<T>): Promise<T> {
    const root = this.options.workRoot ?? tmpdir();
    const dir = await mkdtemp(join(root, "codebay-build-"));
    try {
      return await work(dir);
    } finally {
      await rm(dir, { recursive: true, force: true }).catch((err: unknown) => {
        this.options.logger.warn({ err, dir }, "build folder not removed");
      });
    }
  }

  /**
   * A clone keeps its remote URL, credentials included, in .git/config,
   * where build scripts could read them: the URL is replaced by one without
   * them. The build does not go on when that fails.
   */
  private async forgetCredentials(
    repoDir: string,
  ): Promise<StepFailure | undefined> {
    const url = stripUrlCredentials(this.options.repositoryUrl);
    try {
      await execFileAsync("git", ["remote", "set-url", "origin", url], {
        cwd: repoDir,
        env: this.options.env,
      });
      return undefined;
    } catch (err) {
      this.options.logger.error({ err }, "clone credentials not removed");
      this.options.log.line(
        "system",
        "The clone's remote URL still holds credentials, so the build stops",
        Date.now(),
      );
      return { step: "clone", exitCode: 1 };
    }
  }

  /** START_DIR inside the clone; throws StartDirError when it is missing. */
  private async startDir(repoDir: string): Promise<string> {
    const dir = join(repoDir, this.options.startDir);
    const found = await stat(dir).catch(() => undefined);
    if (!found?.isDirectory()) {
      throw new StartDirError(
        `START_DIR ${this.options.startDir} is not a folder in the repository`,
      );
    }
    return dir;
  }
}
