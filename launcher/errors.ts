/**
 * Every error the launcher reports, each with a stable code. HTTP answers
 * carry the code as `{ error: { code, message } }`; callers and tests branch
 * on the code, never on the message.
 *
 * | code | HTTP | when |
 * | --- | --- | --- |
 * | `LAUNCHER_ERR_BAD_REQUEST` | 400 | the body or a parameter breaks the schema |
 * | `LAUNCHER_ERR_BAD_SLUG` | 400 | the slug is not a DNS label |
 * | `LAUNCHER_ERR_BAD_JSON` | 400 | the body is not JSON, or is empty |
 * | `LAUNCHER_ERR_NOT_FOUND` | 404 | no such route |
 * | `LAUNCHER_ERR_BUILD_NOT_FOUND` | 404 | no record of that build (unknown or expired) |
 * | `LAUNCHER_ERR_BODY_TOO_LARGE` | 413 | the body is over `HTTP_BODY_LIMIT_BYTES` |
 * | `LAUNCHER_ERR_UNSUPPORTED_MEDIA_TYPE` | 415 | the body is not `application/json` |
 * | `LAUNCHER_ERR_INTERNAL` | 500 | a fault in the launcher |
 * | `LAUNCHER_ERR_ECS_FAILURE` | 502 | ECS refused or failed to run the task |
 * | `LAUNCHER_ERR_STORE_UNAVAILABLE` | 503 | Valkey did not answer |
 * | `LAUNCHER_ERR_DRAINING` | 503 | the launcher is shutting down |
 */

export type LauncherErrorCode =
  | "LAUNCHER_ERR_BAD_REQUEST"
  | "LAUNCHER_ERR_BAD_SLUG"
  | "LAUNCHER_ERR_BAD_JSON"
  | "LAUNCHER_ERR_NOT_FOUND"
  | "LAUNCHER_ERR_BUILD_NOT_FOUND"
  | "LAUNCHER_ERR_BODY_TOO_LARGE"
  | "LAUNCHER_ERR_UNSUPPORTED_MEDIA_TYPE"
  | "LAUNCHER_ERR_INTERNAL"
  | "LAUNCHER_ERR_ECS_FAILURE"
  | "LAUNCHER_ERR_STORE_UNAVAILABLE"
  | "LAUNCHER_ERR_DRAINING";

/** The body of every error answer. */
export interface ErrorBody {
  error: {
    code: LauncherErrorCode;
    message: string;
    [detail: string]: unknown;
  };
}

/** Base of the launcher's errors: a code and the HTTP status it maps to. */
export abstract class LauncherError extends Error {
  abstract readonly code: LauncherErrorCode;
  abstract readonly statusCode: number;

  /** Extra fields of the HTTP answer, beside code and message. */
  details(): Record<string, unknown> {
    return {};
  }

  toBody(): ErrorBody {
    return {
      error: { code: this.code, message: this.message, ...this.details() },
    };
  }
}

/** A request the launcher will not act on: bad body, slug, JSON or route. */
export class RequestError extends LauncherError {
  readonly code: LauncherErrorCode;
  readonly statusCode: number;

  constructor(
    code:
      | "LAUNCHER_ERR_BAD_REQUEST"
      | "LAUNCHER_ERR_BAD_SLUG"
      | "LAUNCHER_ERR_BAD_JSON"
      | "LAUNCHER_ERR_NOT_FOUND"
      | "LAUNCHER_ERR_BODY_TOO_LARGE"
      | "LAUNCHER_ERR_UNSUPPORTED_MEDIA_TYPE",
    message: string,
  ) {
    super(message);
    this.code = code;
    this.statusCode = REQUEST_STATUS[code];
  }
}

const REQUEST_STATUS = {
  LAUNCHER_ERR_BAD_REQUEST: 400,
  LAUNCHER_ERR_BAD_SLUG: 400,
  LAUNCHER_ERR_BAD_JSON: 400,
  LAUNCHER_ERR_NOT_FOUND: 404,
  LAUNCHER_ERR_BODY_TOO_LARGE: 413,
  LAUNCHER_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
} as const;

export class BuildNotFoundError extends LauncherError {
  readonly code = "LAUNCHER_ERR_BUILD_NOT_FOUND";
  readonly statusCode = 404;

  constructor() {
    super("no record of that build; it is unknown or has expired");
  }
}

/** Longest `reason` an ECS failure carries, so AWS text cannot flood logs. */
export const ECS_REASON_MAX_LENGTH = 256;

/**
 * ECS did not start the task: RunTask answered with `failures`, or the call
 * itself failed. `reason` is AWS's own wording, cut to a bounded length; the
 * answer also names the build, whose record says `failed`.
 */
export class EcsFailureError extends LauncherError {
  readonly code = "LAUNCHER_ERR_ECS_FAILURE";
  readonly statusCode = 502;
  readonly reason: string;

  constructor(
    reason: string,
    /** The build, recorded as failed, that the task was for. */
    readonly buildId: string,
    options?: { cause?: unknown },
  ) {
    super("ECS did not start the build task", options);
    this.reason = boundReason(reason);
  }

  override details(): Record<string, unknown> {
    return { reason: this.reason, buildId: this.buildId };
  }
}

export function boundReason(reason: string): string {
  const oneLine = reason.replace(/\s+/g, " ").trim();
  if (oneLine.length <= ECS_REASON_MAX_LENGTH) return oneLine;
  return `${oneLine.slice(0, ECS_REASON_MAX_LENGTH - 1)}…`;
}

/** Valkey, which holds the build records, did not answer. */
export class StoreUnavailableError extends LauncherError {
  readonly code = "LAUNCHER_ERR_STORE_UNAVAILABLE";
  readonly statusCode = 503;

  constructor(options?: { cause?: unknown }) {
    super("the build store is unavailable; try again", options);
  }
}

export class DrainingError extends LauncherError {
  readonly code = "LAUNCHER_ERR_DRAINING";
  readonly statusCode = 503;

  constructor() {
    super("the launcher is shutting down; send the build to another one");
  }
}

export class InternalError extends LauncherError {
  readonly code = "LAUNCHER_ERR_INTERNAL";
  readonly statusCode = 500;

  constructor(options?: { cause?: unknown }) {
    super("internal error", options);
  }
}
