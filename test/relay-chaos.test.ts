/**
 * No line lost, none twice, whatever fails: relay nodes killed and stopped
 * under load, viewers' connections cut, Valkey restarted, the builder cut
 * off from Valkey. Every viewer must end with exactly seq 1..N, in order.
 */
import {
  afterAll,
  beforeAll,
  describe,
  expect,
  it,
  onTestFinished,
} from "vitest";
import { LogFollower } from "../client/log-follower.ts";
import { LocalValkey, freePort } from "../shared/local-valkey.ts";
import { ownerOf } from "./support/cluster-probe.ts";
import { makeRepo, startBuilder } from "./support/builder-harness.ts";
import { CuttingProxy } from "./support/cutting-proxy.ts";
import { startRelay, type RelayHandle } from "./support/relay-process.ts";
import {
  syntheticBuild,
  type SyntheticBuild,
} from "./support/synthetic-build.ts";
import { waitFor } from "./support/wait-for.ts";
import { Redis } from "ioredis";

/**
 * A viewer that checks continuity as lines arrive instead of keeping them:
 * 200 viewers of 50,000 lines would otherwise hold ten million strings.
 */
class CheckingViewer {
  readonly follower: LogFollower;
  lastSeq = 0;
  outOfOrder = 0;
  /** Lines the relay sent twice, before the library's own dedupe. */
  rawDuplicates = 0;
  private rawLastSeq = 0;
  readonly done: Promise<number>;

  constructor(url: string, slug: string) {
    this.follower = new LogFollower({
      url,
      slug,
      socketOptions: { reconnectionDelay: 100, reconnectionDelayMax: 500 },
    });
    onTestFinished(() => this.follower.close());

    this.follower.on("line", (m) => this.take(m.seq));
    this.done = new Promise((resolve) => {
      this.follower.on("status", (m) => {
        this.take(m.seq);
        resolve(m.seq);
      });
    });
    this.follower.socket.on(
      "logs",
      (event: { messages: Array<{ seq?: number }> }) => {
        for (const message of event.messages) {
          if (message.seq === undefined) continue;
          if (message.seq <= this.rawLastSeq) this.rawDuplicates += 1;
          else this.rawLastSeq = message.seq;
        }
      },
    );
    // A resubscription legitimately starts again after the last seq seen.
    this.follower.on("subscribed", () => {
      this.rawLastSeq = this.lastSeq;
    });
  }

  private take(seq: number): void {
    if (seq !== this.lastSeq + 1) this.outOfOrder += 1;
    this.lastSeq = seq;
  }
}

/** Publishes `total` lines at `perTick` every `tickMs`, then the status. */
async function steadyBuild(
  build: SyntheticBuild,
  total: number,
  perTick: number,
  tickMs: number,
  onTick: (published: number) => Promise<void> | void = () => {},
): Promise<void> {
  for (let published = 0; published < total; published += perTick) {
    build.lines(Math.min(perTick, total - published));
    await onTick(published);
    await new Promise((resolve) => setTimeout(resolve, tickMs));
  }
  await build.finish();
}

describe("chaos", () => {
  let valkey: LocalValkey;
  let probe: Redis;

  beforeAll(async () => {
    valkey = await LocalValkey.start({ persistent: true });
    probe = new Redis(valkey.url, { retryStrategy: () => 100 });
    probe.on("error", () => {});
  });

  afterAll(async () => {
    probe.disconnect();
    await valkey.stop();
  });

  it("gives 200 viewers exactly 1..50,000 through owner kills, a stop and cut connections", async () => {
    const slug = "chaos";
    const ports = await Promise.all([0, 1, 2].map(() => freePort()));
    const relays: RelayHandle[] = await Promise.all(
      ports.map((port, i) =>
        startRelay(valkey.url, {
          PORT: String(port),
          RELAY_NODE_ID: `chaos-${i}`,
        }),
      ),
    );
    let generation = 0;
    const restart = async (index: number, signal: NodeJS.Signals) => {
      const relay = relays[index]!;
      const code = await relay.process.stop(signal);
      if (signal === "SIGTERM") expect(code).toBe(0);
      generation += 1;
      relays[index] = await startRelay(valkey.url, {
        PORT: String(ports[index]),
        RELAY_NODE_ID: `chaos-${index}-${generation}`,
      });
    };

    // One viewer goes through a proxy whose connections get cut.
    const proxy = await CuttingProxy.start(ports[0]!);
    const viewers = Array.from(
      { length: 200 },
      (_, i) =>
        new CheckingViewer(
          i === 0 ? proxy.url : `http://127.0.0.1:${ports[i % 3]}`,
          slug,
        ),
    );
    await Promise.all(
      viewers.map(
        (v) => new Promise((resolve) => v.follower.once("subscribed", resolve)),
      ),
    );

    const ownerIndex = async () => {
      const owner = await waitFor(
        () => ownerOf(probe, slug),
        // A killed node's lease lingers until it expires: wait for a
        // running owner.
        (o) => relays.some((r) => r.nodeId === o),
        { what: "a running owner" },
      );
      return relays.findIndex((r) => r.nodeId === owner);
    };

    const build = syntheticBuild(valkey.url, slug, "chaos-build");
    const total = 50_000;
    const events: string[] = [];
    let cuts = 0;
    await steadyBuild(build, total, 250, 100, async (published) => {
      if (published === 5_000 || published === 30_000) {
        const index = await ownerIndex();
        events.push(`SIGKILL owner ${relays[index]!.nodeId} at ${published}`);
        await restart(index, "SIGKILL");
      }
      if (published === 17_500) {
        const owner = await ownerIndex();
        const index = (owner + 1) % 3;
        events.push(
          `SIGTERM non-owner ${relays[index]!.nodeId} at ${published}`,
        );
        await restart(index, "SIGTERM");
      }
      if (published % 7_500 === 2_500) cuts += proxy.cutAll() > 0 ? 1 : 0;
    });

    const lasts = await Promise.all(viewers.map((v) => v.done));
    expect(events).toHaveLength(3);
    expect(cuts).toBeGreaterThanOrEqual(3);
    expect(new Set(lasts)).toEqual(new Set([total + 1]));
    expect(viewers.map((v) => v.outOfOrder).reduce((a, b) => a + b)).toBe(0);
    expect(viewers.map((v) => v.rawDuplicates).reduce((a, b) => a + b)).toBe(0);
    expect(viewers.every((v) => v.lastSeq === total + 1)).toBe(true);
  }, 180_000);

  it("loses nothing when Valkey restarts during a build", async () => {
    const store = await LocalValkey.start({ persistent: true });
    onTestFinished(() => store.stop());
    const slug = "valkey-restart";
    const relays = await Promise.all(
      [0, 1, 2].map(() => startRelay(store.url)),
    );
    const viewers = Array.from(
      { length: 30 },
      (_, i) => new CheckingViewer(relays[i % 3]!.url, slug),
    );
    await Promise.all(
      viewers.map(
        (v) => new Promise((resolve) => v.follower.once("subscribed", resolve)),
      ),
    );

    const build = syntheticBuild(store.url, slug, "restart-build");
    const total = 10_000;
    await steadyBuild(build, total, 200, 50, async (published) => {
      if (published === 4_000) {
        await store.pause();
      }
      if (published === 6_000) {
        // The builder has been queueing for 2,000 lines' worth of time.
        expect(build.publisher.pendingCount()).toBeGreaterThan(0);
        await store.resume();
      }
    });

    const lasts = await Promise.all(viewers.map((v) => v.done));
    expect(new Set(lasts)).toEqual(new Set([total + 1]));
    expect(viewers.map((v) => v.outOfOrder).reduce((a, b) => a + b)).toBe(0);
    expect(viewers.map((v) => v.rawDuplicates).reduce((a, b) => a + b)).toBe(0);
  }, 120_000);

  it("finishes a build on time while Valkey is away for 10 s, and viewers get every line", async () => {
    const store = await LocalValkey.start({ persistent: true });
    onTestFinished(() => store.stop());
    const relay = await startRelay(store.url);
    const slug = "builder-outage";
    const viewers = [0, 1, 2].map(() => new CheckingViewer(relay.url, slug));
    await Promise.all(
      viewers.map(
        (v) => new Promise((resolve) => v.follower.once("subscribed", resolve)),
      ),
    );

    // 280 lines, one every 50 ms: 14 s of build.
    const repo = await makeRepo({
      "package.json": JSON.stringify({
        name: "slow",
        scripts: {
          build:
            "node -e \"let i = 0; const t = setInterval(() => { console.log('tick ' + ++i); if (i === 280) clearInterval(t); }, 50)\"",
        },
      }),
    });
    const startedAt = Date.now();
    const builder = startBuilder({
      PROJECT_ID: slug,
      GIT_REPOSITORY_URL: repo,
      INSTALL_COMMAND: "true",
      BUILD_ID: "outage-build",
      REDIS_URL: store.url,
    });
    await builder.waitForLog((r) => r.msg === "valkey connected");
    await waitFor(
      () => viewers[0]!.lastSeq,
      (seq) => seq >= 20,
      { what: "first lines" },
    );

    await store.pause();
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    await store.resume();

    expect(await builder.exit()).toBe(0);
    const buildMs = Date.now() - startedAt;
    const lasts = await Promise.all(viewers.map((v) => v.done));
    const last = lasts[0]!;
    expect(new Set(lasts)).toEqual(new Set([last]));
    expect(viewers.map((v) => v.outOfOrder).reduce((a, b) => a + b)).toBe(0);
    expect(viewers.map((v) => v.rawDuplicates).reduce((a, b) => a + b)).toBe(0);
    // The 280 ticks are all there: the build was not slowed by the outage
    // beyond its own 14 s and the flush once Valkey was back.
    expect(buildMs).toBeLessThan(14_000 + 8_000);
  }, 90_000);
});
