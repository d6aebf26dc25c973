/**
 * Three relay processes on one Valkey behind Debian's haproxy running
 * deploy/haproxy.cfg: viewers of every kind reach a relay and stay on it,
 * every line reaches every viewer once and in order whichever relay they
 * are on, and a relay that is not ready or is stopping gets no new viewers.
 *
 * All clients come from 127.0.0.1 unless a test gives them another
 * loopback source address, which stands in for viewers on different
 * machines: with `balance source`, the address decides the relay of a
 * client that keeps no cookie.
 */
import { Agent, request } from "node:http";
import { describe, expect, it, onTestFinished } from "vitest";
import { LocalValkey } from "../shared/local-valkey.ts";
import { startHaproxy, type HaproxyHandle } from "./support/haproxy-process.ts";
import { ownerOf, preferredOwner } from "./support/cluster-probe.ts";
import { startRelay, type RelayHandle } from "./support/relay-process.ts";
import { lookUpBinary } from "./support/system-binary.ts";
import { connectStringViewer, type StringViewer } from "./support/viewer.ts";
import { waitFor } from "./support/wait-for.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const haproxy = lookUpBinary("haproxy", "haproxy");

const store = useValkey();

type ViewerKind = "polling first" | "websocket only" | "polling with cookies";

const VIEWER_OPTIONS: Record<ViewerKind, object> = {
  "polling first": {},
  "websocket only": { transports: ["websocket"] },
  // socket.io-client keeps cookies in Node.js only when asked to.
  "polling with cookies": { withCredentials: true },
};

interface ClusterViewer extends StringViewer {
  kind: ViewerKind;
  sourceAddress: string | undefined;
  /** `message` events other than `Joined …`. */
  payloads(): string[];
}

/**
 * A viewer that subscribes to `channel` on every connection, as the
 * dashboard does after a reconnect. With a `sourceAddress` its requests
 * come from that loopback address; without one it is socket.io-client
 * exactly as configured by `kind`.
 */
function connectViewer(
  url: string,
  channel: string,
  kind: ViewerKind,
  sourceAddress?: string,
): ClusterViewer {
  let source = {};
  if (sourceAddress !== undefined) {
    const agent = new Agent({ keepAlive: true, localAddress: sourceAddress });
    onTestFinished(() => agent.destroy());
    // `agent` carries polling requests, `localAddress` the WebSocket.
    source = { agent, localAddress: sourceAddress };
  }

  const viewer = connectStringViewer(url, {
    ...VIEWER_OPTIONS[kind],
    ...source,
  } as Parameters<typeof connectStringViewer>[1]);
  viewer.socket.on("connect", () => {
    viewer.socket.emit("subscribe", channel);
  });

  return {
    ...viewer,
    kind,
    sourceAddress,
    payloads: () => viewer.messages.filter((m) => !m.startsWith("Joined ")),
  };
}

async function startCluster(count: number, valkeyUrls?: string[]) {
  const relays = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      startRelay(valkeyUrls?.[i] ?? store.url, {
        RELAY_NODE_ID: `relay-${i + 1}`,
      }),
    ),
  );
  const lb = await startHaproxy(
    haproxy.path(),
    relays.map((relay, i) => ({ name: `relay${i + 1}`, port: relay.port })),
  );
  await waitForServerStatus(lb, (status) => status.every((s) => s === "UP"));
  return { relays, lb };
}

function waitForServerStatus(
  lb: HaproxyHandle,
  accept: (status: string[]) => boolean,
) {
  return waitFor(
    async () =>
      [...(await lb.serverStats()).values()].map((r) => r.status ?? ""),
    accept,
    { what: "haproxy server status" },
  );
}

/** Socket.IO connections a relay serves, from its own /metrics. */
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

/**
 * Resolves once the channel has one owner subscribed in Valkey, the lease
 * has settled on the node the slug prefers among the relays with viewers
 * (so no hand-over is still to come), and every relay with viewers listens
 * for the owner's broadcasts: nothing published from now on can be missed,
 * not even payloads that are not in history.
 */
async function waitForFanOut(channel: string, relays: RelayHandle[]) {
  const counts = await Promise.all(relays.map(connectedClients));
  const withViewers = relays.filter((_, i) => counts[i]! > 0);
  const slug = channel.slice("logs:".length);
  const preferred = preferredOwner(
    slug,
    withViewers.map((r) => r.nodeId),
  );

  await waitFor(
    async () => {
      const numsub = (await store.client.pubsub("NUMSUB", channel)) as [
        string,
        number,
      ];
      const shard = (await store.client.pubsub(
        "SHARDNUMSUB",
        `socket.io#/#${channel}#`,
      )) as [string, number];
      const owner = await ownerOf(store.client, slug);
      return [Number(numsub[1]), Number(shard[1]), owner] as const;
    },
    ([owners, listeners, owner]) =>
      owners === 1 && listeners === withViewers.length && owner === preferred,
    {
      what: `one owner (${preferred}) and ${withViewers.length} listening relays`,
    },
  );
}

async function publishLines(channel: string, count: number, from = 1) {
  const payloads = Array.from({ length: count }, (_, i) =>
    JSON.stringify({ log: `line ${from + i}`, seq: from + i }),
  );
  const pipeline = store.client.pipeline();
  for (const payload of payloads) pipeline.publish(channel, payload);
  await pipeline.exec();
  return payloads;
}

function uniqueChannel(): string {
  return `logs:cluster-${Math.random().toString(36).slice(2, 8)}`;
}

/** HTTP GET or POST from a given source address, with an optional cookie. */
function rawRequest(
  url: string,
  { sourceAddress = "127.0.0.1", method = "GET", body = "", cookie = "" } = {},
): Promise<{ status: number; body: string; setCookie: string[] }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        localAddress: sourceAddress,
        headers: {
          ...(cookie ? { cookie } : {}),
          "content-type": "text/plain;charset=UTF-8",
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("error", reject);
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            body: text,
            setCookie: res.headers["set-cookie"] ?? [],
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe.skipIf(haproxy.skip)("relays behind haproxy", () => {
  it("delivers every line once and in order to viewers on every relay", async () => {
    const { relays, lb } = await startCluster(3);
    const channel = uniqueChannel();

    const kinds: ViewerKind[] = [
      "polling first",
      "websocket only",
      "polling with cookies",
    ];
    const viewers = [
      ...Array.from({ length: 12 }, (_, i) =>
        connectViewer(
          lb.url,
          channel,
          kinds[i % kinds.length]!,
          `127.0.0.${10 + i}`,
        ),
      ),
      ...kinds.map((kind) => connectViewer(lb.url, channel, kind)),
    ];
    for (const viewer of viewers) {
      await viewer.waitForMessages(1);
      expect(viewer.messages[0]).toBe(`Joined ${channel}`);
    }

    const perRelay = await Promise.all(relays.map(connectedClients));
    expect(perRelay.reduce((a, b) => a + b, 0)).toBe(viewers.length);
    const relaysWithViewers = perRelay.filter((n) => n > 0).length;
    expect(relaysWithViewers).toBeGreaterThanOrEqual(2);
    await waitForFanOut(channel, relays);

    const payloads = await publishLines(channel, 10_000);
    const [end] = await publishLines(channel, 1, 10_001);
    for (const viewer of viewers) {
      await viewer.waitForMessages(10_002, 60_000);
    }

    for (const viewer of viewers) {
      expect(viewer.errors, viewer.kind).toEqual([]);
      expect(viewer.messages, viewer.kind).toEqual([
        `Joined ${channel}`,
        ...payloads,
        end,
      ]);
    }

    // Polling-first sessions upgraded to WebSocket through haproxy without
    // losing their relay (an upgrade that reached another relay would fail
    // with "Session ID unknown" and reconnect, sending a second Joined).
    await waitFor(
      () => viewers.map((v) => v.socket.io.engine.transport.name),
      (names) => names.every((name) => name === "websocket"),
      { what: "every viewer on WebSocket" },
    );
    expect(
      viewers.every(
        (v) => v.messages.filter((m) => m.startsWith("Joined")).length === 1,
      ),
    ).toBe(true);
  });

  it("pins a session to its relay by cookie, and by source address without one", async () => {
    const { lb } = await startCluster(3);
    const polling = `${lb.url}/socket.io/?EIO=4&transport=polling`;

    const handshake = await rawRequest(polling, {
      sourceAddress: "127.0.0.50",
    });
    expect(handshake.status).toBe(200);
    const { sid } = JSON.parse(handshake.body.slice(1)) as { sid: string };
    const cookie = handshake.setCookie
      .map((c) => c.split(";")[0]!)
      .find((c) => c.startsWith("SERVERID="));
    expect(cookie, "haproxy sets the affinity cookie").toBeDefined();

    const session = `${polling}&sid=${sid}`;
    // A Socket.IO event the relay has no handler for: harmless, and a 200
    // only from the relay that holds the session.
    const PROBE = '42["probe"]';
    const sources = Array.from({ length: 10 }, (_, i) => `127.0.1.${i + 1}`);

    // Without the cookie only the source address decides: the same address
    // reaches the session's relay, most others do not.
    const sameSource = await rawRequest(session, {
      sourceAddress: "127.0.0.50",
      method: "POST",
      body: "40",
    });
    expect(sameSource.status).toBe(200);
    const elsewhere = [];
    for (const sourceAddress of sources) {
      const reply = await rawRequest(session, {
        sourceAddress,
        method: "POST",
        body: PROBE,
      });
      elsewhere.push(reply.status);
    }
    expect(elsewhere).toContain(400);

    // With the cookie every address reaches it.
    for (const sourceAddress of sources) {
      const reply = await rawRequest(session, {
        sourceAddress,
        method: "POST",
        body: PROBE,
        cookie: cookie!,
      });
      expect(reply, sourceAddress).toMatchObject({ status: 200, body: "ok" });
    }
  });

  it("sends no viewers to a relay whose /readyz answers 503", async () => {
    const isolated = await LocalValkey.start();
    onTestFinished(() => isolated.stop());
    const { relays, lb } = await startCluster(3, [
      store.url,
      store.url,
      isolated.url,
    ]);
    const sick = relays[2]!;

    // The third relay loses its Valkey and says so on /readyz.
    await isolated.pause();
    await waitFor(
      () => fetch(`${sick.url}/readyz`).then((r) => r.status),
      (status) => status === 503,
      { what: "503 from /readyz" },
    );
    const stats = await waitFor(
      () => lb.serverStats(),
      (rows) => rows.get("relay3")?.status === "DOWN",
      { what: "relay3 DOWN in haproxy" },
    );
    expect(stats.get("relay3")?.check_status).toBe("L7STS");
    expect(stats.get("relay3")?.check_code).toBe("503");
    expect(stats.get("relay1")?.status).toBe("UP");
    expect(stats.get("relay2")?.status).toBe("UP");

    const channel = uniqueChannel();
    const viewers = Array.from({ length: 12 }, (_, i) =>
      connectViewer(lb.url, channel, "polling first", `127.0.2.${i + 1}`),
    );
    for (const viewer of viewers) await viewer.waitForMessages(1);
    expect(await connectedClients(sick)).toBe(0);
    const served = await Promise.all(relays.slice(0, 2).map(connectedClients));
    expect(served[0]! + served[1]!).toBe(viewers.length);

    // Once Valkey is back the relay passes its checks again.
    await isolated.resume();
    await waitForServerStatus(lb, (status) => status.every((s) => s === "UP"));
  });

  it("moves viewers to the other relays when one stops with SIGTERM", async () => {
    const { relays, lb } = await startCluster(3);
    const channel = uniqueChannel();

    const kinds: ViewerKind[] = [
      "polling first",
      "websocket only",
      "polling with cookies",
    ];
    const viewers = Array.from({ length: 9 }, (_, i) =>
      connectViewer(
        lb.url,
        channel,
        kinds[i % kinds.length]!,
        `127.0.3.${i + 1}`,
      ),
    );
    for (const viewer of viewers) await viewer.waitForMessages(1);

    const perRelay = await Promise.all(relays.map(connectedClients));
    const victimIndex = perRelay.indexOf(Math.max(...perRelay));
    const victim = relays[victimIndex]!;
    const survivors = relays.filter((r) => r !== victim);
    const movedCount = perRelay[victimIndex]!;
    expect(movedCount).toBeGreaterThan(0);

    expect(await victim.process.stop("SIGTERM")).toBe(0);
    await waitFor(
      () => lb.serverStats(),
      (rows) => rows.get(`relay${victimIndex + 1}`)?.status === "DOWN",
      { what: "stopped relay DOWN in haproxy" },
    );

    // Every viewer of the stopped relay reconnected and joined again.
    await waitFor(
      () =>
        viewers.filter((v) => v.messages.length >= 2 && v.socket.connected)
          .length,
      (moved) => moved === movedCount,
      { what: `${movedCount} viewers rejoined` },
    );
    const after = await Promise.all(survivors.map(connectedClients));
    expect(after.reduce((a, b) => a + b, 0)).toBe(viewers.length);

    await waitForFanOut(channel, survivors);
    const payloads = await publishLines(channel, 200);
    for (const viewer of viewers) {
      await waitFor(
        () => viewer.payloads().length,
        (n) => n >= payloads.length,
        {
          what: `${viewer.kind} viewer's lines`,
        },
      );
      expect(viewer.payloads(), viewer.kind).toEqual(payloads);
    }
  });
});
