/**
 * The environment a build's own processes (git, install, build) run with:
 * the builder's environment without its secrets.
 *
 * Removed:
 * - the Valkey URL variables (`REDIS_URL`, `VALKEY_URL`, `AIVEN_REDIS_URL`)
 *   and `VALKEY_CA_FILE`;
 * - every `AWS_*` variable;
 * - every variable whose name contains TOKEN, SECRET, PASSWORD, PASSWD,
 *   CREDENTIAL or KEY, in any case (`NPM_TOKEN`, `npm_config__authToken`,
 *   `SSH_PRIVATE_KEY`);
 * - every variable whose value is a URL carrying credentials, such as a
 *   `GIT_REPOSITORY_URL` of `https://user:token@host/repo.git` (see
 *   url-credentials.ts).
 *
 * Everything else (PATH, HOME, LANG, NODE_ENV, the build's own settings)
 * is kept. A name list cannot know every secret: a secret under an
 * innocent name with a value that is not a URL still reaches the build.
 */
import type { Env } from "../shared/env-config.ts";
import { VALKEY_URL_VARIABLES } from "../shared/valkey-config.ts";
import { hasUrlCredentials } from "./url-credentials.ts";

const REMOVED_NAMES: ReadonlySet<string> = new Set([
  ...VALKEY_URL_VARIABLES,
  "VALKEY_CA_FILE",
]);

const SECRET_NAME = /TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|KEY/i;
const AWS_NAME = /^AWS_/i;

/** Whether a variable must not reach the build's processes. */
export function isSecretVariable(name: string, value: string): boolean {
  if (REMOVED_NAMES.has(name)) return true;
  if (AWS_NAME.test(name) || SECRET_NAME.test(name)) return true;
  return hasUrlCredentials(value);
}

/** The builder's environment minus every secret, for child processes. */
export function buildEnvironment(env: Env): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || isSecretVariable(name, value)) continue;
    kept[name] = value;
  }
  return kept;
}
