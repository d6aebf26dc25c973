/**
 * Reads a service's environment once, against a zod schema. A bad value
 * stops the service at start with the variable's name, the value it had and
 * what is allowed.
 */
import { z } from "zod";

export class ConfigError extends Error {
  readonly code = "CONFIG_ERR_INVALID";

  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Validates `env` against `schema`, whose keys are variable names. Empty
 * strings count as unset, so `FOO=` falls back to the default.
 */
export function readEnv<S extends z.ZodObject>(
  schema: S,
  env: Env,
): Readonly<z.infer<S>> {
  const present: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== "") present[key] = value;
  }

  const result = schema.safeParse(present);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = issue.path.join(".");
      const value = present[name];
      if (value === undefined && issue.code === "invalid_type") {
        return `${name}=unset: required`;
      }
      const shown = value === undefined ? "unset" : JSON.stringify(value);
      return `${name}=${shown}: ${issue.message}`;
    });
    throw new ConfigError(problems);
  }

  return Object.freeze(result.data);
}

/**
 * A whole number from an environment string, within bounds. Only digits
 * count: " ", "1e3" and "0x10" are refused rather than read as numbers.
 */
export function intVar(min: number, max: number) {
  const rule = `must be a whole number from ${min} to ${max}`;
  return z
    .string()
    .regex(/^\d{1,16}$/, rule)
    .transform(Number)
    .pipe(z.number().min(min, rule).max(max, rule));
}

/** A TCP port: 0 asks the system for a free one. */
export const portVar = intVar(0, 65535);
