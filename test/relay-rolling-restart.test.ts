/**
 * A rolling restart under a steady stream: three relays behind Debian's
 * haproxy running deploy/haproxy.cfg, each SIGTERMed in turn (the channel's
 * owner and nodes that do not own it) and replaced by a new process on a
 * new port, while a build publishes. Viewers move to the other relays and
 * keep receiving; structured viewers end with every line exactly once;
 * Valkey never sees two subscribers of the channel; every relay drains and
 * exits 0 within its grace period.
 *
 * haproxy cannot be told about a new port without a reload, so it starts
 * with a server slot for each relay that will ever run: the three first
 * ones, and spare ports the replacements take. A slot with nothing behind
 * it fails its checks and gets no traffic.
 *
 * Viewers come from distinct loopback addresses, which stand in for
 * viewers on different machines: with `balance source` that is what
 * spreads clients that keep no cookie over the relays. Otherwise they are
 * socket.io-client with its defaults (polling first, then WebSocket).
 */
import { Agent } from "node:http";
import { describe, expect, it, onTestFinished } from "vitest";
import { freePort } from "../shared/local-valkey.ts";
import type { LogsEvent } from "../shared/viewer-protocol.ts";
import { numsub, ownerOf, sampleSubscribers } from "./support/cluster-probe.ts";
import {
  recordFollower,
  seqRange,
  type RecordingFollower,
} from "./support/follower.ts";
import { startHaproxy, type HaproxyHandle } from "./support/haproxy-process.ts";
import { startRelay, type RelayHandle } from "./support/relay-process.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";
import { lookUpBinary } from "./support/system-binary.ts";
import { connectStringViewer, type StringViewer } from "./support/viewer.ts";
import { waitFor } from "./support/wait-for.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const haproxy = lookUpBinary("haproxy", "haproxy");

const SHUTDOWN_GRACE_MS = 10_000;
/** The stream: this many lines every tick, for at least MIN_LINES. */
const LINES_PER_TICK = 50;
const TICK_MS = 100;
const MIN_LINES = 10_000;

const store = useValkey();

/** One haproxy server slot and the relay behind it, if any. */
interface Slot {
  name: string;
  port: number;
  relay: RelayHandle | undefined;
}

/** socket.io-client options that send every request from `address`. */
function fromAddress(address: string): object {
  const agent = new Agent({ keepAlive: true, localAddress: address });
  onTestFinished(() => agent.destroy());
  // `agent` carries polling requests, `localAddress` the WebSocket.
  return { agent, localAddress: address };
}

/** A structured viewer, with what the relay sent on each connection. */
interface StructuredViewer extends RecordingFollower {
  /** Per connection, the seqs of every message as the relay sent it. */
  connections: number[][];
  subscriptions(): number;
}

function structuredViewer(
  url: string,
  slug: string,
  address: string,
): StructuredViewer {
  const viewer = recordFollower({
    url,
    slug,
    socketOptions: fromAddress(address),
  });
  const connections: number[][] = [];
  let subscriptions = 0;

  viewer.follower.socket.on("connect", () => connections.push([]));
  viewer.follower.socket.on("logs", (event: LogsEvent) => {
    const current = connections.at(-1)!;
    for (const m of event.messages) {
      current.push(m.type === "gap" ? -m.toSeq : m.seq);
    }
  });
  viewer.follower.on("subscribed", () => (subscriptions += 1));
  return { ...viewer, connections, subscriptions: () => subscriptions };
}

/**
 * A viewer of the dashboard's string form that subscribes again on every
 * `connect`, as the dashboard does; its messages split per connection.
 */
interface ReconnectingStringViewer extends StringViewer {
  connections: string[][];
}

function reconnectingStringViewer(
  url: string,
  slug: string,
  address: string,
): ReconnectingStringViewer {
  const viewer = connectStringViewer(
    url,
    fromAddress(address) as Parameters<typeof connectStringViewer>[1],
  );
  const connections: string[][] = [];
  viewer.socket.on("connect", () => {
    connections.push([]);
    viewer.socket.emit("subscribe", `logs:${slug}`);
  });
  viewer.socket.on("message", (payload: string) => {
    connections.at(-1)!.push(payload);
  });
  return { ...viewer, connections };
}

/** Waits until every viewer is connected and subscribed on its connection. */
async function allViewersServed(
  structured: StructuredViewer[],
  strings: ReconnectingStringViewer[],
  slug: string,
): Promise<void> {
  await waitFor(
    () => [
      ...structured.map(
        (v) =>
          v.follower.socket.connected &&
          v.subscriptions() >= v.connections.length,
      ),
      ...strings.map(
        (v) =>
          v.socket.connected &&
          v.connections.at(-1)?.[0] === `Joined logs:${slug}`,
      ),
    ],
    (served) => served.every(Boolean),
    { timeoutMs: 30_000, what: "every viewer connected and subscribed" },
  );
}

async function slotStatus(lb: HaproxyHandle): Promise<Map<string, string>> {
  const rows = await lb.serverStats();
  return new Map([...rows].map(([name, row]) => [name, row.status ?? ""]));
}

function waitForSlots(
  lb: HaproxyHandle,
  expected: Record<string, "UP" | "DOWN">,
): Promise<unknown> {
  return waitFor(
    () => slotStatus(lb),
    (status) =>
      Object.entries(expected).every(([name, s]) => status.get(name) === s),
    { timeoutMs: 20_000, what: `haproxy slots ${JSON.stringify(expected)}` },
  );
}

/** How many connections a relay serves, from its own /metrics. */
async function connectedClients(relay: RelayHandle): Promise<number> {
  const text = await fetch(`${relay.url}/metrics`).then((r) => r.text());
  let total = 0;
  for (const match of text.matchAll(
    /^relay_connected_clients\{[^}]*\} (\d+)$/gm,
  )) {
    total += Number(match[1]);
  }
  return total;
}

function isStatus(message: string): boolean {
  if (message.startsWith("Joined ")) return false;
  return (JSON.parse(message) as { type?: string }).type === "status";
}

describe.skipIf(haproxy.skip)("rolling restart behind haproxy", () => {
  it("keeps every viewer served and one subscriber while each relay is SIGTERMed in turn", async () => {
    const slug = "rolling-restart";
    const channel = `logs:${slug}`;
    const buildId = "build-rolling";
    const env = { SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS) };

    const first = await Promise.all(
      [1, 2, 3].map((i) =>
        startRelay(store.url, { ...env, RELAY_NODE_ID: `rolling-${i}` }),
      ),
    );
    // Three slots for the first relays, four for replacements: one for
    // each first relay, and one in case the owner must be restarted last.
    const slots: Slot[] = [
      ...first.map((relay) => ({ port: relay.port, relay })),
      ...(await Promise.all(
        [4, 5, 6, 7].map(async () => ({
          port: await freePort(),
          relay: undefined,
        })),
      )),
    ].map((slot, i) => ({ ...slot, name: `relay${i + 1}` }));
    const lb = await startHaproxy(haproxy.path(), slots);
    await waitForSlots(lb, {
      relay1: "UP",
      relay2: "UP",
      relay3: "UP",
      relay4: "DOWN",
      relay5: "DOWN",
      relay6: "DOWN",
      relay7: "DOWN",
    });

    const structured = Array.from({ length: 6 }, (_, i) =>
      structuredViewer(lb.url, slug, `127.0.5.${i + 1}`),
    );
    const strings = Array.from({ length: 3 }, (_, i) =>
      reconnectingStringViewer(lb.url, slug, `127.0.6.${i + 1}`),
    );
    await allViewersServed(structured, strings, slug);
    const spread = await Promise.all(first.map(connectedClients));
    expect(spread.reduce((a, b) => a + b, 0)).toBe(9);
    expect(spread.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    await waitFor(
      () => numsub(store.client, channel),
      (n) => n === 1,
      { what: "the channel's subscription" },
    );

    // PUBSUB NUMSUB every 20 ms for the whole run.
    const sampler = sampleSubscribers(store.client, channel);
    const samples = sampler.samples;

    // The steady stream: LINES_PER_TICK every TICK_MS (the pace is the
    // load being tested, not a wait), until the restarts are over and at
    // least MIN_LINES are out.
    const build = syntheticBuild(store.url, slug, buildId);
    let published = 0;
    let restartsDone = false;
    const stream = (async () => {
      const startedAt = Date.now();
      for (let tick = 1; !restartsDone || published < MIN_LINES; tick++) {
        build.lines(LINES_PER_TICK);
        published += LINES_PER_TICK;
        await build.flush();
        const nextAt = startedAt + tick * TICK_MS;
        await new Promise((r) => setTimeout(r, nextAt - Date.now()));
      }
      await build.finish();
    })();

    const restarts: Array<{
      nodeId: string;
      wasOwner: boolean;
      exitCode: number | null;
      drainMs: number;
    }> = [];
    let spare = 3;
    const restart = async (slot: Slot): Promise<void> => {
      const victim = slot.relay!;
      const owner = await waitFor(
        () => ownerOf(store.client, slug),
        (o) => o !== null,
        { what: "an owner before the restart" },
      );
      const next = slots[spare++]!;

      const stoppedAt = Date.now();
      const exited = victim.process.stop("SIGTERM");
      const replacement = startRelay(store.url, {
        ...env,
        PORT: String(next.port),
        RELAY_NODE_ID: `rolling-${next.name}`,
      });
      const exitCode = await exited;
      restarts.push({
        nodeId: victim.nodeId,
        wasOwner: owner === victim.nodeId,
        exitCode,
        drainMs: Date.now() - stoppedAt,
      });
      slot.relay = undefined;
      next.relay = await replacement;

      await waitForSlots(lb, { [slot.name]: "DOWN", [next.name]: "UP" });
      await allViewersServed(structured, strings, slug);
    };

    // A node that does not own the channel first, then the owner while
    // it is still one of the first three, then the rest; and the owner
    // at the end if no restart has hit the owner yet.
    const remaining = slots.slice(0, 3);
    const take = (pick: (s: Slot) => boolean): Slot => {
      const index = Math.max(0, remaining.findIndex(pick));
      return remaining.splice(index, 1)[0]!;
    };
    const currentOwner = async () =>
      waitFor(
        () => ownerOf(store.client, slug),
        (o) => o !== null,
      );
    let owner = await currentOwner();
    await restart(take((s) => s.relay!.nodeId !== owner));
    owner = await currentOwner();
    await restart(take((s) => s.relay!.nodeId === owner));
    await restart(take(() => true));
    if (!restarts.some((r) => r.wasOwner)) {
      owner = await currentOwner();
      await restart(slots.find((s) => s.relay?.nodeId === owner)!);
    }
    restartsDone = true;

    await stream;
    const total = published + 1;
    await Promise.all(structured.map((v) => v.finished));
    await waitFor(
      () => strings.map((v) => v.messages.some(isStatus)),
      (got) => got.every(Boolean),
      { timeoutMs: 30_000, what: "the status on every string viewer" },
    );
    await sampler.stop();

    // Every relay drained and exited cleanly, owner or not.
    expect(restarts.length).toBeGreaterThanOrEqual(3);
    for (const r of restarts) {
      expect(r.exitCode, r.nodeId).toBe(0);
      expect(r.drainMs, r.nodeId).toBeLessThan(SHUTDOWN_GRACE_MS);
    }
    expect(restarts.some((r) => r.wasOwner)).toBe(true);
    expect(restarts.some((r) => !r.wasOwner)).toBe(true);

    // Never two subscribers of the channel.
    expect(samples.length).toBeGreaterThan(100);
    expect(Math.max(...samples)).toBe(1);

    // Structured viewers: every line once, in order, whatever they were on.
    for (const viewer of structured) {
      expect(viewer.seen).toEqual(seqRange(buildId, total));
      for (const sent of viewer.connections) {
        expect(new Set(sent).size, "duplicates on one connection").toBe(
          sent.length,
        );
      }
    }
    expect(
      structured.some((v) => v.connections.length > 1),
      "some structured viewer was moved",
    ).toBe(true);

    // String viewers: on each connection, Joined then seqs in order.
    for (const viewer of strings) {
      expect(viewer.errors).toEqual([]);
      for (const messages of viewer.connections) {
        const seqs = messages
          .filter((m) => !m.startsWith("Joined "))
          .map((m) => (JSON.parse(m) as { seq: number }).seq);
        const ordered = seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]!);
        expect(ordered, "seqs in order without duplicates").toBe(true);
      }
      const last = viewer.connections.at(-1)!;
      expect(JSON.parse(last.at(-1)!)).toMatchObject({
        type: "status",
        seq: total,
      });
    }
    expect(
      strings.some((v) => v.connections.length > 1),
      "some string viewer was moved",
    ).toBe(true);
  }, 240_000);
});
