/**
 * A viewer that stops reading is held back instead of having lines skipped
 * or being disconnected: it leaves live delivery, and when it reads again
 * it is caught up from the node's memory, in order, each line once, then
 * goes live again. One that falls further behind than the node keeps is
 * disconnected, and a structured viewer then resumes from history. History
 * sent to a resuming viewer is paced by its connection too.
 */
import type { Socket as NetSocket } from "node:net";
import WebSocket from "ws";
import type { Socket as ClientSocket } from "socket.io-client";
import { expect, it, onTestFinished } from "vitest";
import {
  PONG_FRAME,
  SocketIoSession,
  websocketUrl,
} from "../load-tests/socketio-framing.ts";
import { LocalValkey } from "../shared/local-valkey.ts";
import { recordFollower, seqRange } from "./support/follower.ts";
import { startRelay } from "./support/relay-process.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";
import { connectStringViewer } from "./support/viewer.ts";
import { waitFor } from "./support/wait-for.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const store = useValkey();
const WIDE = "x".repeat(4096);

function counter(metrics: string, name: string, labels = ""): number {
  const line = metrics
    .split("\n")
    .find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(" ")[1]) : 0;
}

async function scrape(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

/** The TCP socket under a socket.io-client WebSocket connection. */
function tcpOf(socket: ClientSocket): NetSocket {
  const transport = socket.io.engine.transport as unknown as {
    ws: { _socket: NetSocket };
  };
  return transport.ws._socket;
}

function countDisconnects(socket: ClientSocket): { count: number } {
  const seen = { count: 0 };
  socket.on("disconnect", () => {
    seen.count += 1;
  });
  return seen;
}

/** The seqs of the line payloads a string-form viewer received, in order. */
function payloadSeqs(messages: string[]): number[] {
  return messages
    .filter((m) => m.startsWith("{"))
    .map((m) => (JSON.parse(m) as { seq: number }).seq);
}

/** Publishes a whole build of `count` 4 KiB lines and its status. */
async function publishWide(
  valkeyUrl: string,
  slug: string,
  buildId: string,
  count: number,
): Promise<void> {
  const build = syntheticBuild(valkeyUrl, slug, buildId);
  for (let i = 0; i < count; i++) {
    build.publisher.line("stdout", `${i} ${WIDE}`, Date.now());
  }
  await build.finish();
  build.close();
}

const oneTo = (last: number) => Array.from({ length: last }, (_, i) => i + 1);

it("holds back viewers that stop reading and catches them up without a disconnect", async () => {
  const relay = await startRelay(store.url, {
    SLOW_VIEWER_BUFFER_BYTES: String(64 * 1024),
    SLOW_VIEWER_CHECK_INTERVAL_MS: "50",
  });
  const slug = "slow-viewer";
  const websocket = { transports: ["websocket"] };
  const steady = recordFollower({
    url: relay.url,
    slug,
    socketOptions: websocket,
  });
  const stalled = recordFollower({
    url: relay.url,
    slug,
    socketOptions: websocket,
  });
  const stalledString = connectStringViewer(relay.url, websocket);
  stalledString.socket.emit("subscribe", `logs:${slug}`);
  await Promise.all([
    steady.subscribed,
    stalled.subscribed,
    stalledString.waitForMessages(1),
  ]);
  const structuredDrops = countDisconnects(stalled.follower.socket);
  const stringDrops = countDisconnects(stalledString.socket);

  // Stop reading from two viewers' TCP sockets: the kernel buffers fill,
  // then the relay's.
  const paused = [tcpOf(stalled.follower.socket), tcpOf(stalledString.socket)];
  for (const tcp of paused) tcp.pause();

  await publishWide(store.url, slug, "slow-build", 3000);
  await steady.finished;

  const held = await waitFor(
    () => scrape(relay.url),
    (text) =>
      counter(text, "relay_viewers_held_back_total", '{reason="buffer"}') >= 2,
    { what: "both stalled viewers held back" },
  );
  expect(counter(held, "relay_viewers_catching_up")).toBe(2);
  expect(counter(held, "relay_catch_up_buffer_bytes")).toBeGreaterThan(0);

  for (const tcp of paused) tcp.resume();
  await stalled.finished;
  await stalledString.waitForMessages(1 + 3001);

  expect(steady.seen).toEqual(seqRange("slow-build", 3001));
  expect(stalled.seen).toEqual(seqRange("slow-build", 3001));
  expect(payloadSeqs(stalledString.messages)).toEqual(oneTo(3001));
  expect(structuredDrops.count).toBe(0);
  expect(stringDrops.count).toBe(0);

  const after = await waitFor(
    () => scrape(relay.url),
    (text) => counter(text, "relay_viewers_catching_up") === 0,
    { what: "catch-up finished" },
  );
  expect(counter(after, "relay_caught_up_lines_total")).toBeGreaterThan(0);
  expect(counter(after, "relay_catch_up_buffer_bytes")).toBe(0);
  expect(after).not.toMatch(/relay_slow_viewer_disconnects_total\{/);

  // Back live: the next build reaches both without catch-up.
  const caughtUp = counter(after, "relay_caught_up_lines_total");
  const next = syntheticBuild(store.url, slug, "slow-build-2");
  next.lines(100);
  await next.finish();
  await stalledString.waitForMessages(1 + 3001 + 101);
  await waitFor(
    () => stalled.seen.length,
    (n) => n === 3001 + 101,
    { what: "the second build on the held-back viewer" },
  );
  expect(stalled.seen.slice(3001)).toEqual(seqRange("slow-build-2", 101));
  expect(payloadSeqs(stalledString.messages.slice(1 + 3001))).toEqual(
    oneTo(101),
  );
  expect(counter(await scrape(relay.url), "relay_caught_up_lines_total")).toBe(
    caughtUp,
  );
});

it("disconnects a viewer that falls past the catch-up budget; a structured one resumes", async () => {
  const relay = await startRelay(store.url, {
    SLOW_VIEWER_BUFFER_BYTES: String(64 * 1024),
    SLOW_VIEWER_CHECK_INTERVAL_MS: "50",
    CATCH_UP_BUFFER_BYTES: String(256 * 1024),
  });
  const slug = "far-behind";
  const websocket = { transports: ["websocket"] };
  const stalled = recordFollower({
    url: relay.url,
    slug,
    socketOptions: websocket,
  });
  const stalledString = connectStringViewer(relay.url, {
    ...websocket,
    reconnection: false,
  });
  stalledString.socket.emit("subscribe", `logs:${slug}`);
  await Promise.all([stalled.subscribed, stalledString.waitForMessages(1)]);
  const stringDrops = countDisconnects(stalledString.socket);

  const paused = [tcpOf(stalled.follower.socket), tcpOf(stalledString.socket)];
  for (const tcp of paused) tcp.pause();

  await publishWide(store.url, slug, "far-build", 3000);

  await waitFor(
    () => scrape(relay.url),
    (text) =>
      counter(
        text,
        "relay_slow_viewer_disconnects_total",
        '{reason="behind"}',
      ) >= 2,
    { what: "both viewers disconnected as behind" },
  );
  const metrics = await scrape(relay.url);
  // Never more than the budget plus one item over it.
  expect(counter(metrics, "relay_catch_up_buffer_bytes")).toBeLessThan(
    256 * 1024 + 2 * (WIDE.length + 100),
  );
  for (const tcp of paused) tcp.resume();

  await stalled.finished;
  expect(stalled.seen).toEqual(seqRange("far-build", 3001));
  await waitFor(
    () => stringDrops.count,
    (n) => n === 1,
    { what: "the string-form viewer's disconnect" },
  );
});

it("paces history sent to a resuming viewer by its connection", async () => {
  const relay = await startRelay(store.url, {
    SLOW_VIEWER_BUFFER_BYTES: String(64 * 1024),
    SLOW_VIEWER_CHECK_INTERVAL_MS: "50",
  });
  const slug = "paced-history";
  // 10,000 lines of 4 KiB: more history than uWebSockets.js buffers for one
  // connection (16 MiB) before it drops what is sent to it.
  await publishWide(store.url, slug, "paced-build", 10000);

  const viewer = recordFollower({
    url: relay.url,
    slug,
    socketOptions: { transports: ["websocket"] },
  });
  // Stop reading once history starts to arrive.
  viewer.follower.socket.once("logs", () => {
    setImmediate(() => tcpOf(viewer.follower.socket).pause());
  });
  const drops = countDisconnects(viewer.follower.socket);
  let subscriptions = 0;
  viewer.follower.on("subscribed", () => {
    subscriptions += 1;
  });

  await new Promise((resolve) => setTimeout(resolve, 3000));
  tcpOf(viewer.follower.socket).resume();
  await viewer.finished;

  expect(viewer.seen).toEqual(seqRange("paced-build", 10001));
  expect(subscriptions).toBe(1);
  expect(drops.count).toBe(0);
});

it("keeps replaying history to an acknowledged viewer while Valkey restarts", async () => {
  const valkey = await LocalValkey.start({ persistent: true });
  onTestFinished(() => valkey.stop());
  const relay = await startRelay(valkey.url, {
    SLOW_VIEWER_BUFFER_BYTES: String(64 * 1024),
    SLOW_VIEWER_CHECK_INTERVAL_MS: "50",
  });
  const slug = "restarted-history";
  await publishWide(valkey.url, slug, "restart-build", 3000);

  const viewer = recordFollower({
    url: relay.url,
    slug,
    socketOptions: { transports: ["websocket"] },
  });
  viewer.follower.socket.once("logs", () => {
    setImmediate(() => tcpOf(viewer.follower.socket).pause());
  });
  let subscriptions = 0;
  viewer.follower.on("subscribed", () => {
    subscriptions += 1;
  });
  await new Promise((resolve) => setTimeout(resolve, 1000));

  // Valkey goes away while the replay waits for the viewer to drain; the
  // relay's next history read fails at once.
  await valkey.pause();
  tcpOf(viewer.follower.socket).resume();
  await relay.process.waitForLog(
    (record) => record.msg === "history replay failed",
  );
  await valkey.resume();

  await viewer.finished;
  expect(viewer.seen).toEqual(seqRange("restart-build", 3001));
  expect(subscriptions).toBe(1);
});

it("keeps a viewer that reads slowly through a backlog many ping timeouts long, and drops one that never answers", async () => {
  // Never held back: the backlog waits in the socket buffers, mostly the
  // kernel's, where the relay cannot see the viewer reading it.
  const relay = await startRelay(store.url, {
    PING_INTERVAL_MS: "1000",
    PING_TIMEOUT_MS: "1000",
    SLOW_VIEWER_BUFFER_BYTES: String(256 * 1024 * 1024),
  });
  const slug = "slow-reader";
  const slow = connectStringViewer(relay.url, { transports: ["websocket"] });
  slow.socket.emit("subscribe", `logs:${slug}`);
  await slow.waitForMessages(1);
  const slowDrops = countDisconnects(slow.socket);

  // A viewer that reads everything and never answers a ping.
  const mute = new WebSocket(websocketUrl(relay.url));
  onTestFinished(() => mute.terminate());
  const session = new SocketIoSession({
    send: (frame) => {
      if (frame !== PONG_FRAME) mute.send(frame);
    },
    connected: () => session.emit("subscribe", `logs:${slug}`),
  });
  mute.on("message", (data: Buffer) => session.receive(data.toString()));

  // At most one read (64 KiB) every 100 ms: 4 MiB takes 6 s or more, six
  // times the 1 s a ping may go unanswered.
  const tcp = tcpOf(slow.socket);
  tcp.on("data", () => {
    tcp.pause();
    setTimeout(() => tcp.resume(), 100);
  });

  const startedAt = Date.now();
  await publishWide(store.url, slug, "slow-reader-build", 1000);
  await slow.waitForMessages(1 + 1001, 60_000);

  expect(Date.now() - startedAt).toBeGreaterThan(3000);
  expect(payloadSeqs(slow.messages)).toEqual(oneTo(1001));
  expect(slowDrops.count).toBe(0);
  expect(slow.socket.connected).toBe(true);

  const metrics = await scrape(relay.url);
  expect(metrics).toMatch(
    /relay_disconnects_total\{reason="ping timeout"\} 1\n/,
  );
  expect(
    counter(metrics, "relay_connected_clients", '{transport="websocket"}'),
  ).toBe(1);
});

it("delivers a burst in slices, in order and whole, to every viewer", async () => {
  // A long window lets the owner's batches fill to BATCH_MAX_LINES (500)
  // however fast the lines are published: 500 lines of 4 KiB to 20
  // viewers is 40 MiB, past one slice's 32 MiB, so every full batch
  // takes two slices.
  const relay = await startRelay(store.url, { BATCH_WINDOW_MS: "1000" });
  const slug = "burst";
  const viewers = Array.from({ length: 20 }, () =>
    connectStringViewer(relay.url, { transports: ["websocket"] }),
  );
  for (const viewer of viewers) viewer.socket.emit("subscribe", `logs:${slug}`);
  await Promise.all(viewers.map((viewer) => viewer.waitForMessages(1)));

  // 3,000 lines of 4 KiB to 20 viewers: 240 MiB copied, in 6 batches.
  await publishWide(store.url, slug, "burst-build", 3000);
  await Promise.all(
    viewers.map((viewer) => viewer.waitForMessages(1 + 3001, 60_000)),
  );

  for (const viewer of viewers) {
    expect(payloadSeqs(viewer.messages)).toEqual(oneTo(3001));
  }
  const metrics = await scrape(relay.url);
  expect(counter(metrics, "relay_delivery_yields_total")).toBeGreaterThan(0);
  expect(metrics).not.toMatch(/relay_disconnects_total\{/);
});

it("reads lines back from history when those waiting for delivery pass the node's budget", async () => {
  const relay = await startRelay(store.url, {
    FEED_QUEUE_BYTES: String(64 * 1024),
    // Full batches of 500 lines however fast they are published (see the
    // burst test above).
    BATCH_WINDOW_MS: "1000",
  });
  const slug = "queue-budget";
  const websocket = { transports: ["websocket"] };
  const viewers = Array.from({ length: 20 }, () =>
    connectStringViewer(relay.url, websocket),
  );
  for (const viewer of viewers) viewer.socket.emit("subscribe", `logs:${slug}`);
  const structured = recordFollower({
    url: relay.url,
    slug,
    socketOptions: websocket,
  });
  await Promise.all([
    structured.subscribed,
    ...viewers.map((viewer) => viewer.waitForMessages(1)),
  ]);

  // Each slice carries about 380 of these lines to 21 viewers, and the
  // owner's batches bring 500: what waits passes 64 KiB at once.
  await publishWide(store.url, slug, "queued-build", 3000);
  await structured.finished;
  await Promise.all(
    viewers.map((viewer) => viewer.waitForMessages(1 + 3001, 60_000)),
  );

  for (const viewer of viewers) {
    expect(payloadSeqs(viewer.messages)).toEqual(oneTo(3001));
  }
  expect(structured.seen).toEqual(seqRange("queued-build", 3001));
  const metrics = await scrape(relay.url);
  const shed = counter(metrics, "relay_feed_shed_lines_total");
  expect(shed).toBeGreaterThan(0);
  expect(counter(metrics, "relay_replayed_lines_total")).toBeGreaterThanOrEqual(
    shed,
  );
  expect(counter(metrics, "relay_feed_queue_bytes")).toBe(0);
  expect(metrics).not.toMatch(/relay_disconnects_total\{/);
});
