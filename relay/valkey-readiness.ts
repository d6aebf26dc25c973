/**
 * Waits at start-up for Valkey connections to be ready, so a relay pointed
 * at a server that does not answer stops with one clear error rather than
 * retrying in the background forever.
 */
import type { ValkeyClient } from "../shared/valkey-connection.ts";
import { RelayError, RelayErrorCode } from "./errors.ts";

export async function waitForValkey(
  clients: readonly ValkeyClient[],
  timeoutMs: number,
): Promise<void> {
  // The last connection error says why (refused, TLS, authentication).
  let lastError: Error | undefined;
  const onError = (err: Error): void => {
    lastError = err;
  };
  for (const client of clients) client.on("error", onError);

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const why = lastError ? `: ${lastError.message}` : "";
      reject(
        new RelayError(
          RelayErrorCode.UNAVAILABLE,
          `Valkey did not answer within ${timeoutMs} ms${why}`,
        ),
      );
    }, timeoutMs);
  });

  const ready = Promise.all(
    clients.map((client) =>
      client.status === "ready"
        ? Promise.resolve()
        : new Promise<void>((resolve) => client.once("ready", () => resolve())),
    ),
  );

  try {
    await Promise.race([ready, timeout]);
  } finally {
    clearTimeout(timer);
    for (const client of clients) client.off("error", onError);
  }
}
