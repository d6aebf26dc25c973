/**
 * Waits for a condition that no event announces (such as a Valkey counter),
 * by checking it until a deadline. Fails with the last value seen.
 */
export async function waitFor<T>(
  read: () => T | Promise<T>,
  accept: (value: T) => boolean,
  { timeoutMs = 15_000, everyMs = 50, what = "condition" } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;

  while (Date.now() < deadline) {
    last = await read();
    if (accept(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(
    `${what} not met within ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
  );
}
