/**
 * The k6 scenarios' settings, read once from k6's `__ENV` (`k6 run -e
 * NAME=value` or the environment) and checked: a bad value stops the test
 * at start with the variable's name, its value and what is allowed.
 */

export class K6SettingsError extends Error {
  readonly code = "LOADTEST_ERR_K6_SETTINGS";
}

/** A string variable, or its default; `required` when there is none. */
export function textSetting(name: string, fallback?: string): string {
  const value = __ENV[name];
  if (value !== undefined && value !== "") return value;
  if (fallback === undefined) {
    throw new K6SettingsError(`${name} is required`);
  }
  return fallback;
}

/** A number variable within bounds, or its default. */
export function numberSetting(
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = __ENV[name];
  if (text === undefined || text === "") return fallback;

  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new K6SettingsError(
      `${name}=${JSON.stringify(text)}: must be a number from ${min} to ${max}`,
    );
  }
  return value;
}

/**
 * Where the relays are: `RELAY_URL`, the load balancer or one relay, such
 * as `https://logs.staging.example.com` or `http://127.0.0.1:9002`.
 */
export function relayUrl(): string {
  return textSetting("RELAY_URL", "http://127.0.0.1:9002");
}

/** Where the launcher is: `LAUNCHER_URL`, default `http://127.0.0.1:9000`. */
export function launcherUrl(): string {
  return textSetting("LAUNCHER_URL", "http://127.0.0.1:9000");
}

/** A token for connect and subscribe (`TOKEN`); relays ignore it today. */
export function viewerToken(): string {
  return textSetting("TOKEN", "k6-load-test");
}

/** A prefix that keeps one test run's slugs apart from another's. */
export function slugPrefix(): string {
  return textSetting("SLUG_PREFIX", `k6-${Date.now().toString(36)}`);
}
