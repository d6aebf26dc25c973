/**
 * Credentials inside URLs, such as a repository URL of
 * `https://x-access-token:<token>@github.com/org/repo.git`: found so they
 * can be kept from a build's environment, masked before a URL is shown in a
 * log line, and removed from the remote URL a clone keeps.
 *
 * A password always counts. A user name alone counts for http(s), where it
 * is how tokens are passed (`https://<token>@host/repo`), and not for
 * `ssh://git@host/...`, where it is just the account.
 */

/** Whether `value` is a URL that carries a credential. */
export function hasUrlCredentials(value: string): boolean {
  const url = parseUrl(value);
  if (!url) return false;
  if (url.password !== "") return true;
  return url.username !== "" && /^https?:$/.test(url.protocol);
}

/** `value` with its credentials replaced by `***`; other values unchanged. */
export function maskUrlCredentials(value: string): string {
  const url = parseUrl(value);
  if (!url || !hasUrlCredentials(value)) return value;

  url.username = "***";
  url.password = "";
  return url.toString();
}

/** `value` without its credentials; other values unchanged. */
export function stripUrlCredentials(value: string): string {
  const url = parseUrl(value);
  if (!url || !hasUrlCredentials(value)) return value;

  url.username = "";
  url.password = "";
  return url.toString();
}

function parseUrl(value: string): URL | undefined {
  // Cheap checks first: paths and scp-like `git@host:repo` are no URLs.
  if (!value.includes("://") || !value.includes("@")) return undefined;
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}
