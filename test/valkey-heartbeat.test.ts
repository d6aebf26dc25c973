/**
 * The heartbeat tears down a connection that stopped answering, but not one
 * whose reply waits unread because this process was busy.
 */
import { expect, it, onTestFinished } from "vitest";
import { createValkeyClient } from "../shared/valkey-connection.ts";
import { BlackholeProxy } from "./support/blackhole-proxy.ts";
import { useValkey } from "./support/valkey-fixture.ts";
import { waitFor } from "./support/wait-for.ts";

const store = useValkey();

function busyFor(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // The process is blocked: no timer, no socket read.
  }
}

it("keeps a healthy connection through a stall longer than its timeout", async () => {
  const client = createValkeyClient({
    url: store.url,
    heartbeatIntervalMs: 50,
    heartbeatTimeoutMs: 200,
  });
  client.on("error", () => {});
  onTestFinished(() => client.disconnect());
  await new Promise((resolve) => client.once("ready", resolve));

  let closes = 0;
  client.on("close", () => (closes += 1));
  for (let i = 0; i < 5; i++) {
    busyFor(600);
    // Let the heartbeat's timers and the socket's reads run in between.
    await client.ping();
  }
  expect(closes).toBe(0);
  expect(client.status).toBe("ready");
});

it("destroys a connection whose peer went silent", async () => {
  const proxy = await BlackholeProxy.start({ port: store.valkey.port });
  onTestFinished(() => proxy.close());
  const client = createValkeyClient({
    url: `redis://127.0.0.1:${proxy.port}`,
    heartbeatIntervalMs: 50,
    heartbeatTimeoutMs: 300,
  });
  client.on("error", () => {});
  onTestFinished(() => client.disconnect());
  await new Promise((resolve) => client.once("ready", resolve));

  const closed = new Promise((resolve) => client.once("close", resolve));
  proxy.blackhole();
  const cutAt = Date.now();
  await closed;
  expect(Date.now() - cutAt).toBeLessThan(2000);

  proxy.restore();
  await waitFor(
    () => client.status,
    (status) => status === "ready",
    {
      what: "reconnected",
    },
  );
});
