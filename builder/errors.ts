/**
 * The builder's errors. Each class carries a stable `code`; callers and tests
 * branch on the code, never on the message. A bad environment is reported
 * with `ConfigError` from shared/env-config.ts, not with one of these.
 */

/** Every error the builder raises itself. */
export abstract class BuilderError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A step's program (git, sh) could not be started at all. */
export class StepSpawnError extends BuilderError {
  readonly code = "BUILDER_ERR_STEP_SPAWN";
}

/** START_DIR does not name a folder inside the cloned repository. */
export class StartDirError extends BuilderError {
  readonly code = "BUILDER_ERR_START_DIR";
}

/** One call of the publish script failed; the batch is retried. */
export class PublishError extends BuilderError {
  readonly code = "BUILDER_ERR_PUBLISH";
}

/** The publish script answered with something it never returns. */
export class PublishReplyError extends BuilderError {
  readonly code = "BUILDER_ERR_PUBLISH_REPLY";
}

/** Queued log lines were still unpublished when the flush time ran out. */
export class FlushTimeoutError extends BuilderError {
  readonly code = "BUILDER_ERR_FLUSH_TIMEOUT";
}
