/**
 * The Valkey settings every service reads, under the names deployments use.
 *
 * | variable | meaning |
 * | --- | --- |
 * | `REDIS_URL`, else `VALKEY_URL`, else `AIVEN_REDIS_URL` | server URL, default `redis://127.0.0.1:6379` |
 * | `VALKEY_CA_FILE` | PEM CA for TLS (`rediss://`, `valkeys://`) |
 * | `VALKEY_CLUSTER` | `true` when the URL names a node of a Valkey Cluster (default `false`) |
 */
import { z } from "zod";
import { ConfigError, readEnv, type Env } from "./env-config.ts";
import { parseValkeyUrl, ValkeyUrlError } from "./valkey-connection.ts";

export const DEFAULT_VALKEY_URL = "redis://127.0.0.1:6379";

export const VALKEY_URL_VARIABLES = [
  "REDIS_URL",
  "VALKEY_URL",
  "AIVEN_REDIS_URL",
] as const;

export interface ValkeyConfig {
  url: string;
  caFile: string | undefined;
  /** The URL names one node of a Valkey Cluster. */
  cluster: boolean;
  /** False when no variable named a URL and the default is in use. */
  urlIsExplicit: boolean;
}

const schema = z.object({
  VALKEY_CA_FILE: z.string().optional(),
  VALKEY_CLUSTER: z
    .enum(["true", "false", "1", "0"], "must be true or false")
    .default("false")
    .transform((value) => value === "true" || value === "1"),
});

export function readValkeyConfig(env: Env): ValkeyConfig {
  const { VALKEY_CA_FILE, VALKEY_CLUSTER } = readEnv(schema, env);

  for (const name of VALKEY_URL_VARIABLES) {
    const url = env[name];
    if (url === undefined || url === "") continue;

    try {
      parseValkeyUrl(url);
    } catch (err) {
      const reason = err instanceof ValkeyUrlError ? err.message : String(err);
      throw new ConfigError([`${name}=${JSON.stringify(url)}: ${reason}`]);
    }
    return {
      url,
      caFile: VALKEY_CA_FILE,
      cluster: VALKEY_CLUSTER,
      urlIsExplicit: true,
    };
  }

  return {
    url: DEFAULT_VALKEY_URL,
    caFile: VALKEY_CA_FILE,
    cluster: VALKEY_CLUSTER,
    urlIsExplicit: false,
  };
}

/** Shows a URL in logs and messages without its password. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<invalid url>";
  }
}
