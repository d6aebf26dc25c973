/**
 * Everything one run needs, started fresh and stopped after: a throwaway
 * Valkey, the system under test, the viewer processes and the publisher.
 * A fresh Valkey per run keeps one run's subscriptions, keys and counters
 * out of the next.
 */
import { Redis } from "ioredis";
import { LocalValkey } from "../../shared/local-valkey.ts";
import { BenchError, BenchErrorCode } from "./bench-errors.ts";
import { BuildPublisher } from "./build-publisher.ts";
import type { Contender } from "./bench-scenarios.ts";
import type { LightViewerOptions } from "./light-viewer.ts";
import { SystemUnderTest, logChannel } from "./system-under-test.ts";
import { ViewerFleet } from "./viewer-fleet.ts";

/** Viewers per viewer process, roughly; at least 2 processes, at most 4. */
const VIEWERS_PER_PROCESS = 1500;
const SETTLE_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 100;

export interface HarnessOptions {
  contender: Contender;
  nodes: number;
  viewers: number;
  /** Extra relay variables, such as `BATCH_WINDOW_MS`. */
  relayEnv?: Record<string, string>;
  withPublisher: boolean;
  logDir?: string;
}

export class RunHarness {
  private constructor(
    readonly valkey: LocalValkey,
    readonly client: Redis,
    readonly system: SystemUnderTest,
    readonly fleet: ViewerFleet,
    readonly publisher: BuildPublisher | undefined,
  ) {}

  static async start(options: HarnessOptions): Promise<RunHarness> {
    const valkey = await LocalValkey.start();
    const client = new Redis(valkey.url);
    client.on("error", () => {
      // Commands report failures; the run fails on them.
    });

    const processes = Math.min(
      4,
      Math.max(2, Math.ceil(options.viewers / VIEWERS_PER_PROCESS)),
    );
    const fleet = ViewerFleet.start(processes);
    const publisher = options.withPublisher ? new BuildPublisher() : undefined;

    let system: SystemUnderTest;
    try {
      system = await SystemUnderTest.start({
        kind: options.contender.system,
        nodes: options.nodes,
        valkeyUrl: valkey.url,
        relayEnv: options.relayEnv,
        logDir: options.logDir,
      });
    } catch (err) {
      await Promise.all([fleet.stop(), publisher?.stop()]);
      client.disconnect();
      await valkey.stop();
      throw err;
    }
    return new RunHarness(valkey, client, system, fleet, publisher);
  }

  /** Viewers of `slug`, `count` of them, spread over the nodes. */
  viewersOf(
    slug: string,
    count: number,
    form: Contender["form"],
    spread: "even" | "hashed",
  ): LightViewerOptions[] {
    const urls = this.system.urls;
    return Array.from({ length: count }, (_, j) => ({
      url: urls[
        spread === "even"
          ? j % urls.length
          : hashOf(`${slug}/${j}`) % urls.length
      ]!,
      channel: logChannel(slug),
      form,
      token: "bench-token",
    }));
  }

  /** Waits until the system will forward every slug's lines. */
  async settle(slugs: readonly string[]): Promise<void> {
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    while (!(await this.system.settled(this.client, slugs))) {
      this.system.assertRunning();
      if (Date.now() > deadline) {
        throw new BenchError(
          BenchErrorCode.NOT_SETTLED,
          `channels not owned within ${SETTLE_TIMEOUT_MS} ms`,
        );
      }
      await delay(POLL_INTERVAL_MS);
    }
  }

  async stop(): Promise<void> {
    await Promise.all([
      this.fleet.stop(),
      this.publisher?.stop(),
      this.system.stop(),
    ]);
    this.client.disconnect();
    await this.valkey.stop();
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * FNV-1a with murmur3's final mix: a stable spread of viewers over nodes,
 * like a load balancer's. Without the mix, names that differ in their
 * last character alternate in the low bits and always split over 2 nodes.
 */
function hashOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}
