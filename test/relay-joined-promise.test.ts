/**
 * `Joined logs:<slug>` promises the lines published after it: a viewer that
 * publishes right after `Joined` on a channel nobody watched before loses
 * nothing, even for payloads that are not in history.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { LocalValkey } from "../shared/local-valkey.ts";
import { startRelay } from "./support/relay-process.ts";
import { connectStringViewer } from "./support/viewer.ts";

let valkey: LocalValkey;
let publisher: Redis;

beforeAll(async () => {
  valkey = await LocalValkey.start();
  publisher = new Redis(valkey.url);
});

afterAll(async () => {
  publisher.disconnect();
  await valkey.stop();
});

it("forwards every line published right after Joined", async () => {
  const relay = await startRelay(valkey.url);

  for (let round = 0; round < 5; round++) {
    const channel = `logs:joined-${round}`;
    const viewer = connectStringViewer(relay.url);
    viewer.socket.emit("subscribe", channel);
    await viewer.waitForMessages(1);
    expect(viewer.messages[0]).toBe(`Joined ${channel}`);

    const payloads = Array.from({ length: 20 }, (_, i) =>
      JSON.stringify({ log: `r${round} l${i}` }),
    );
    for (const payload of payloads) await publisher.publish(channel, payload);
    await viewer.waitForMessages(21);
    expect(viewer.messages.slice(1)).toEqual(payloads);
    viewer.socket.close();
  }
});
