/**
 * The body of `POST /projects/:slug/builds`, checked with zod. Every field
 * ends up in a builder's environment, so none may hold a NUL, and none that
 * reaches a command line may start with `-`.
 */
import { z } from "zod";
import { isSlug, type Slug } from "../shared/channel-name.ts";
import { RequestError } from "./errors.ts";

export const GIT_URL_MAX_LENGTH = 2048;
export const GIT_REF_MAX_LENGTH = 256;
export const START_DIR_MAX_LENGTH = 1024;
export const COMMAND_MAX_LENGTH = 4096;

const noNul = (value: string) => !value.includes("\0");

const gitUrl = z
  .string("gitUrl must be a string")
  .min(1, "gitUrl must not be empty")
  .max(
    GIT_URL_MAX_LENGTH,
    `gitUrl must be at most ${GIT_URL_MAX_LENGTH} characters`,
  )
  .refine(noNul, "gitUrl must not hold a NUL")
  .refine((v) => !v.startsWith("-"), "gitUrl must not start with '-'");

/** A branch, tag or commit: no spaces, and not an option to git. */
const ref = z
  .string("ref must be a string")
  .max(
    GIT_REF_MAX_LENGTH,
    `ref must be at most ${GIT_REF_MAX_LENGTH} characters`,
  )
  .regex(/^[^-\s]\S*$/, "ref must be a branch, tag or commit without spaces")
  .refine(noNul, "ref must not hold a NUL");

/** A path inside the repository: relative, and never climbing out of it. */
const startDir = z
  .string("startDir must be a string")
  .min(1, "startDir must not be empty")
  .max(
    START_DIR_MAX_LENGTH,
    `startDir must be at most ${START_DIR_MAX_LENGTH} characters`,
  )
  .refine(noNul, "startDir must not hold a NUL")
  .refine(
    (v) => !v.startsWith("/") && !v.startsWith("\\") && !/^[A-Za-z]:/.test(v),
    "startDir must be relative",
  )
  .refine(
    (v) => !v.split(/[\\/]/).includes(".."),
    "startDir must not contain '..'",
  );

const command = z
  .string("commands must be strings")
  .max(
    COMMAND_MAX_LENGTH,
    `commands must be at most ${COMMAND_MAX_LENGTH} characters`,
  )
  .refine(noNul, "commands must not hold a NUL");

export const buildRequestSchema = z.strictObject({
  gitUrl,
  ref: ref.optional(),
  startDir: startDir.optional(),
  installCommand: command.optional(),
  buildCommand: command.optional(),
});

export type BuildRequest = z.infer<typeof buildRequestSchema>;

/** Reads a body; throws RequestError `LAUNCHER_ERR_BAD_REQUEST`. */
export function parseBuildRequest(body: unknown): BuildRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new RequestError(
      "LAUNCHER_ERR_BAD_REQUEST",
      "the body must be a JSON object, at least { gitUrl }",
    );
  }
  const result = buildRequestSchema.safeParse(body);
  if (result.success) return result.data;

  const message = result.error.issues
    .map((issue) => {
      const path = issue.path.join(".");
      return path === "" ? issue.message : `${path}: ${issue.message}`;
    })
    .join("; ");
  throw new RequestError("LAUNCHER_ERR_BAD_REQUEST", message);
}

/** Reads the `:slug` parameter; throws RequestError `LAUNCHER_ERR_BAD_SLUG`. */
export function parseSlug(value: unknown): Slug {
  if (isSlug(value)) return value;

  throw new RequestError(
    "LAUNCHER_ERR_BAD_SLUG",
    "slug must be 1-63 lowercase letters, digits or hyphens, " +
      "not starting or ending with a hyphen",
  );
}
