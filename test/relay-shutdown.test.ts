/**
 * SIGTERM ends a relay even when whatever read its log has gone away.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { expect, it, onTestFinished } from "vitest";
import { ROOT } from "./support/service-process.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const store = useValkey();

it("exits on SIGTERM after its log reader closed the pipe", async () => {
  const child = spawn(`${ROOT}bin/relay`, [], {
    env: {
      PATH: process.env.PATH ?? "",
      REDIS_URL: store.url,
      PORT: "0",
      HOST: "127.0.0.1",
    },
    stdio: ["ignore", "pipe", "ignore"],
  });
  onTestFinished(() => {
    child.kill("SIGKILL");
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", resolve),
  );

  // Read up to `ready`, then go away, as `bin/relay | head -1` does.
  const lines = createInterface({ input: child.stdout });
  await new Promise<void>((resolve) => {
    lines.on("line", (line) => {
      if (line.includes('"msg":"ready"')) resolve();
    });
  });
  lines.close();
  child.stdout.destroy();

  child.kill("SIGTERM");
  expect(await exited).toBe(0);
});
