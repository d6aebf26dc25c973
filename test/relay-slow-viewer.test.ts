/**
 * A viewer that stops reading is disconnected once its buffer passes the
 * limit, instead of having lines skipped silently, and resumes without loss
 * when it reads again.
 */
import type { Socket as NetSocket } from "node:net";
import { expect, it } from "vitest";
import { recordFollower, seqRange } from "./support/follower.ts";
import { startRelay } from "./support/relay-process.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";
import { waitFor } from "./support/wait-for.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const store = useValkey();

function slowDisconnects(metrics: string): number {
  const match =
    /relay_slow_viewer_disconnects_total\{reason="buffer"\} (\d+)/.exec(
      metrics,
    );
  return match ? Number(match[1]) : 0;
}

it("disconnects a viewer that stops reading, which then resumes without loss", async () => {
  const relay = await startRelay(store.url, {
    SLOW_VIEWER_BUFFER_BYTES: String(64 * 1024),
    SLOW_VIEWER_CHECK_INTERVAL_MS: "50",
  });
  const slug = "slow-viewer";
  const steady = recordFollower({
    url: relay.url,
    slug,
    socketOptions: { transports: ["websocket"] },
  });
  const stalled = recordFollower({
    url: relay.url,
    slug,
    socketOptions: { transports: ["websocket"] },
  });
  await Promise.all([steady.subscribed, stalled.subscribed]);

  // Stop reading from the stalled viewer's TCP socket: the kernel buffers
  // fill, then the relay's.
  const transport = stalled.follower.socket.io.engine.transport as unknown as {
    ws: { _socket: NetSocket };
  };
  const tcp = transport.ws._socket;
  tcp.pause();

  const build = syntheticBuild(store.url, slug, "slow-build");
  const wide = "x".repeat(4096);
  for (let i = 0; i < 3000; i++)
    build.publisher.line("stdout", `${i} ${wide}`, Date.now());
  await build.finish();
  await steady.finished;

  await waitFor(
    () => fetch(`${relay.url}/metrics`).then((r) => r.text()),
    (text) => slowDisconnects(text) >= 1,
    { what: "a slow-viewer disconnect" },
  );

  tcp.resume();
  await stalled.finished;
  expect(steady.seen).toEqual(seqRange("slow-build", 3001));
  expect(stalled.seen).toEqual(seqRange("slow-build", 3001));
});
