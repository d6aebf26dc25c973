/**
 * The contract the existing dashboard relies on: `subscribe` with the string
 * `logs:<slug>`, then `Joined logs:<slug>` and every payload unchanged, in
 * order, as `message` events, over WebSocket and over HTTP long-polling.
 */
import { describe, expect, it } from "vitest";
import { startRelay } from "./support/relay-process.ts";
import { connectStringViewer } from "./support/viewer.ts";
import { waitFor } from "./support/wait-for.ts";
import { numsub as countSubscribers } from "./support/cluster-probe.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const store = useValkey();

const numsub = (channel: string) => countSubscribers(store.client, channel);

describe("string-form subscribe", () => {
  it.each([
    ["websocket first", {}],
    ["polling only", { transports: ["polling"] }],
  ])(
    "delivers every payload unchanged and in order (%s)",
    async (_, options) => {
      const relay = await startRelay(store.url);
      const channel = `logs:contract-${Math.random().toString(36).slice(2, 8)}`;
      const viewer = connectStringViewer(relay.url, options);
      viewer.socket.emit("subscribe", channel);
      await viewer.waitForMessages(1);
      expect(viewer.messages[0]).toBe(`Joined ${channel}`);
      await waitFor(
        () => numsub(channel),
        (n) => n === 1,
        { what: "NUMSUB 1" },
      );

      const payloads = Array.from({ length: 1000 }, (_, i) =>
        JSON.stringify({
          log: `line ${i + 1} \u001b[32mok\u001b[0m`,
          seq: i + 1,
        }),
      );
      const pipeline = store.client.pipeline();
      for (const payload of payloads) pipeline.publish(channel, payload);
      await pipeline.exec();

      await viewer.waitForMessages(1001);
      expect(viewer.messages.slice(1)).toEqual(payloads);
    },
  );

  it("refuses malformed channels with a stable code and keeps serving", async () => {
    const relay = await startRelay(store.url);
    const bad: unknown[] = [
      "foo",
      "logs:",
      "logs:../x",
      "logs:Upper",
      "logs:-dash",
      `logs:${"a".repeat(64)}`,
      "x".repeat(10 * 1024),
      42,
      null,
      ["logs:ok"],
    ];

    const viewer = connectStringViewer(relay.url);
    for (const request of bad) {
      const before = viewer.errors.length;
      viewer.socket.emit("subscribe", request);
      await waitFor(
        () => viewer.errors.length,
        (n) => n > before,
        {
          what: `refusal of ${JSON.stringify(request).slice(0, 40)}`,
        },
      );
    }

    expect(viewer.errors.map((e) => e.code)).toEqual([
      "RELAY_ERR_BAD_CHANNEL",
      "RELAY_ERR_BAD_CHANNEL",
      "RELAY_ERR_BAD_CHANNEL",
      "RELAY_ERR_BAD_CHANNEL",
      "RELAY_ERR_BAD_CHANNEL",
      "RELAY_ERR_BAD_CHANNEL",
      "RELAY_ERR_BAD_CHANNEL",
      "RELAY_ERR_BAD_REQUEST",
      "RELAY_ERR_BAD_REQUEST",
      "RELAY_ERR_BAD_REQUEST",
    ]);
    expect(viewer.messages).toEqual([]);
    const channels = (await store.client.pubsub("CHANNELS", "*")) as string[];
    expect(channels.filter((c) => c.startsWith("logs:"))).toEqual([]);

    // The same connection, and a new one, are still served.
    viewer.socket.emit("subscribe", "logs:still-fine");
    await viewer.waitForMessages(1);
    const other = connectStringViewer(relay.url);
    other.socket.emit("subscribe", "logs:still-fine");
    await other.waitForMessages(1);
    await waitFor(
      () => numsub("logs:still-fine"),
      (n) => n === 1,
    );

    await store.client.publish("logs:still-fine", '{"log":"after refusals"}');
    await viewer.waitForMessages(2);
    await other.waitForMessages(2);
    expect(other.messages).toEqual([
      "Joined logs:still-fine",
      '{"log":"after refusals"}',
    ]);

    const metrics = await fetch(`${relay.url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(
      /relay_subscribe_refusals_total\{reason="RELAY_ERR_BAD_CHANNEL"\} 7/,
    );
    expect(metrics).toMatch(
      /relay_subscribe_refusals_total\{reason="RELAY_ERR_BAD_REQUEST"\} 3/,
    );
  });

  it("drops the Valkey subscription when the last viewer leaves", async () => {
    const relay = await startRelay(store.url);
    const channel = "logs:leaving";
    const first = connectStringViewer(relay.url);
    const second = connectStringViewer(relay.url);
    first.socket.emit("subscribe", channel);
    second.socket.emit("subscribe", channel);
    await first.waitForMessages(1);
    await second.waitForMessages(1);
    await waitFor(
      () => numsub(channel),
      (n) => n === 1,
      { what: "NUMSUB 1" },
    );

    first.socket.close();
    // One viewer remains: the subscription stays.
    await store.client.publish(channel, '{"log":"still here"}');
    await second.waitForMessages(2);
    expect(await numsub(channel)).toBe(1);

    second.socket.close();
    await waitFor(
      () => numsub(channel),
      (n) => n === 0,
      {
        timeoutMs: 10_000,
        what: "NUMSUB 0",
      },
    );
  });

  it("reports its node id and readiness over HTTP", async () => {
    const relay = await startRelay(store.url, {
      RELAY_NODE_ID: "node-under-test",
    });
    const health = await fetch(`${relay.url}/healthz`).then((r) => r.json());
    expect(health).toEqual({ status: "ok", nodeId: "node-under-test" });
    const ready = await fetch(`${relay.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(
      relay.process.logs.every((r) => r.nodeId === "node-under-test"),
    ).toBe(true);
  });

  it("answers any other path or method with a JSON 404", async () => {
    const relay = await startRelay(store.url);
    for (const [method, path] of [
      ["GET", "/nope"],
      ["POST", "/healthz"],
      ["GET", "/socket.io"],
    ] as const) {
      const answer = await fetch(`${relay.url}${path}`, { method });
      expect(answer.status).toBe(404);
      expect(await answer.json()).toEqual({
        error: { code: "RELAY_ERR_NOT_FOUND", message: "no such route" },
      });
    }
    // Socket.IO's own path still answers.
    const handshake = await fetch(
      `${relay.url}/socket.io/?EIO=4&transport=polling`,
    );
    expect(handshake.status).toBe(200);
    expect(await handshake.text()).toMatch(/^0\{"sid":/);
  });
});
