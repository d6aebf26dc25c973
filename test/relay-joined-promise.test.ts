/**
 * `Joined logs:<slug>` promises the lines published after it: a viewer that
 * publishes right after `Joined` on a channel nobody watched before loses
 * nothing, even for payloads that are not in history.
 */
import { expect, it } from "vitest";
import { startRelay } from "./support/relay-process.ts";
import { connectStringViewer } from "./support/viewer.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const store = useValkey();

it("forwards every line published right after Joined", async () => {
  const relay = await startRelay(store.url);

  for (let round = 0; round < 5; round++) {
    const channel = `logs:joined-${round}`;
    const viewer = connectStringViewer(relay.url);
    viewer.socket.emit("subscribe", channel);
    await viewer.waitForMessages(1);
    expect(viewer.messages[0]).toBe(`Joined ${channel}`);

    const payloads = Array.from({ length: 20 }, (_, i) =>
      JSON.stringify({ log: `r${round} l${i}` }),
    );
    for (const payload of payloads)
      await store.client.publish(channel, payload);
    await viewer.waitForMessages(21);
    expect(viewer.messages.slice(1)).toEqual(payloads);
    viewer.socket.close();
  }
});
