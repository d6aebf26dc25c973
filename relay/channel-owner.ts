/**
 * Decides, for every channel this node has viewers of, whether this node is
 * the channel's owner, and holds the one Valkey SUBSCRIBE of each channel it
 * owns.
 *
 * Every `leaseRenewIntervalMs` the node refreshes its presence for each
 * channel with local viewers, renews the leases it holds and contends for
 * the others. An owner keeps its lease while any node has viewers, even
 * after its own have left, and gives it up on the first renewal that finds
 * the presence set empty. Payloads read from the subscription are handed to
 * `onPayload` only while the lease's local deadline lies ahead (see
 * channel-lease.ts for why that is enough fencing).
 */
import { EventEmitter } from "node:events";
import type { ValkeyClient } from "../shared/valkey-connection.ts";
import {
  channelName,
  parseChannelName,
  type ChannelName,
  type Slug,
} from "../shared/channel-name.ts";
import type { Logger } from "../shared/logger.ts";
import { ChannelLease } from "./channel-lease.ts";

export interface ChannelOwnerOptions {
  nodeId: string;
  leaseTtlMs: number;
  leaseRenewIntervalMs: number;
  presenceTtlMs: number;
}

interface ChannelState {
  slug: Slug;
  channel: ChannelName;
  localViewers: number;
  /** Set while this node holds the lease. */
  token: string | undefined;
  /** Local time until which forwarding is safe. */
  validUntilMs: number;
  /** A lease call for this channel is in flight. */
  busy: boolean;
  /** This node's subscription to the channel is confirmed. */
  live: boolean;
}

export interface ChannelOwnerEvents {
  /** This node took the channel's lease; `takeover` when it had an owner before. */
  acquired: [slug: Slug];
  /** This node no longer owns the channel; `reason` says why. */
  lost: [slug: Slug, reason: OwnershipLossReason];
}

export type OwnershipLossReason =
  "taken" | "released" | "handed-over" | "expired" | "shutdown";

export class ChannelOwner extends EventEmitter<ChannelOwnerEvents> {
  private readonly channels = new Map<Slug, ChannelState>();
  private readonly lease: ChannelLease;
  private readonly marginMs: number;
  private timer: NodeJS.Timeout | undefined;
  private tokenCounter = 0;
  private stopped = false;

  constructor(
    private readonly commands: ValkeyClient,
    private readonly subscriber: ValkeyClient,
    private readonly options: ChannelOwnerOptions,
    private readonly logger: Logger,
    private readonly onPayload: (slug: Slug, payload: string) => void,
  ) {
    super();
    this.lease = new ChannelLease(commands, {
      ...options,
      freshWindowMs: 2 * options.leaseRenewIntervalMs + 500,
    });
    this.marginMs = Math.max(100, Math.floor(options.leaseTtlMs / 10));

    subscriber.on("message", (channel: string, payload: string) => {
      this.onMessage(channel, payload);
    });
    // Subscriptions are restored by hand after a reconnect, to exactly the
    // channels this node still owns; ioredis's own resubscribe is off.
    subscriber.on("ready", () => this.resubscribe());
  }

  start(): void {
    this.timer = setInterval(
      () => this.tick(),
      this.options.leaseRenewIntervalMs,
    );
  }

  /** Slugs this node holds the lease of. */
  ownedSlugs(): Slug[] {
    return [...this.channels.values()]
      .filter((state) => state.token !== undefined)
      .map((state) => state.slug);
  }

  /** True when some node, this one or another, holds the slug's lease. */
  async hasOwner(slug: Slug): Promise<boolean> {
    const state = this.channels.get(slug);
    if (state?.token !== undefined) return state.live;
    return (await this.lease.holder(slug)) !== null;
  }

  isOwner(slug: Slug): boolean {
    const state = this.channels.get(slug);
    return state?.token !== undefined && Date.now() < state.validUntilMs;
  }

  /** A local viewer started following the slug. */
  viewerJoined(slug: Slug): void {
    let state = this.channels.get(slug);
    if (!state) {
      state = {
        slug,
        channel: channelName(slug),
        localViewers: 0,
        token: undefined,
        validUntilMs: 0,
        busy: false,
        live: false,
      };
      this.channels.set(slug, state);
    }
    state.localViewers += 1;
    if (state.localViewers === 1 && !this.stopped) this.contend(state);
  }

  /** A local viewer stopped following the slug. */
  viewerLeft(slug: Slug): void {
    const state = this.channels.get(slug);
    if (!state || state.localViewers === 0) return;

    state.localViewers -= 1;
    if (state.localViewers > 0) return;

    if (state.token === undefined) {
      this.channels.delete(slug);
      this.lease.release(slug, undefined).catch((err: unknown) => {
        this.logger.warn({ err, slug }, "presence removal failed");
      });
      return;
    }
    // The owner stays owner while other nodes have viewers; the renewal
    // that finds nobody present releases the lease.
    this.renew(state);
  }

  /**
   * Gives up every lease and presence at once, so other nodes take over
   * without waiting for a TTL. Used on SIGTERM.
   */
  async releaseAll(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);

    const releases = [...this.channels.values()].map(async (state) => {
      const token = state.token;
      if (token !== undefined) this.drop(state, "shutdown");
      try {
        await this.lease.release(state.slug, token);
      } catch (err) {
        this.logger.warn({ err, slug: state.slug }, "lease release failed");
      }
    });
    this.channels.clear();
    await Promise.all(releases);
  }

  private tick(): void {
    const now = Date.now();
    const reachable = this.commands.status === "ready";

    for (const state of this.channels.values()) {
      // Past the deadline nothing is forwarded (onMessage checks it). With
      // Valkey unreachable the lease is as good as gone. With Valkey there,
      // the deadline usually passed because this process was too busy to
      // renew in time: the renewal says whether the lease is still ours,
      // and keeping the subscription meanwhile avoids a gap.
      if (
        state.token !== undefined &&
        now >= state.validUntilMs &&
        !reachable
      ) {
        this.drop(state, "expired");
      }
      if (state.token !== undefined) this.renew(state);
      else if (state.localViewers > 0) this.contend(state);
    }
  }

  private contend(state: ChannelState): void {
    if (state.busy || this.commands.status !== "ready") return;
    state.busy = true;

    const token = `${this.options.nodeId}/${++this.tokenCounter}`;
    const sentAtMs = Date.now();

    this.lease
      .acquire(state.slug, token)
      .then((acquired) => {
        if (!acquired || this.stopped) return;
        if (this.channels.get(state.slug) !== state) {
          // Every viewer left while the call was in flight.
          return this.lease.release(state.slug, token);
        }
        state.token = token;
        state.validUntilMs = sentAtMs + this.options.leaseTtlMs - this.marginMs;
        return this.subscribe(state.channel).then(() => {
          if (state.token !== token) return;
          state.live = true;
          this.logger.info({ slug: state.slug }, "channel ownership acquired");
          this.emit("acquired", state.slug);
        });
      })
      .catch((err: unknown) => {
        this.logger.debug({ err, slug: state.slug }, "lease contention failed");
      })
      .finally(() => {
        state.busy = false;
      });
  }

  private renew(state: ChannelState): void {
    const token = state.token;
    if (state.busy || token === undefined) return;
    if (this.commands.status !== "ready") return;
    state.busy = true;

    const sentAtMs = Date.now();

    this.lease
      .renew(state.slug, token, state.localViewers > 0)
      .then((result) => {
        if (state.token !== token) return;
        if (result === "renewed") {
          state.validUntilMs =
            sentAtMs + this.options.leaseTtlMs - this.marginMs;
          return;
        }
        this.drop(state, result === "lost" ? "taken" : result);
        if (state.localViewers === 0) this.channels.delete(state.slug);
      })
      .catch((err: unknown) => {
        // The deadline check in tick() ends ownership if this keeps failing.
        this.logger.debug({ err, slug: state.slug }, "lease renewal failed");
      })
      .finally(() => {
        state.busy = false;
      });
  }

  private drop(state: ChannelState, reason: OwnershipLossReason): void {
    state.token = undefined;
    state.live = false;
    state.validUntilMs = 0;
    this.unsubscribe(state.channel);

    const level = reason === "taken" || reason === "expired" ? "warn" : "info";
    this.logger[level]({ slug: state.slug, reason }, "channel ownership ended");
    this.emit("lost", state.slug, reason);
  }

  private onMessage(channel: string, payload: string): void {
    const slug = parseChannelName(channel);
    if (slug === undefined) return;

    const state = this.channels.get(slug);
    if (state?.token === undefined || Date.now() >= state.validUntilMs) {
      // Past the lease deadline another node may already forward this line.
      return;
    }
    this.onPayload(slug, payload);
  }

  /** Resolves once the subscription is live, or failed (and will be retried). */
  private async subscribe(channel: ChannelName): Promise<void> {
    try {
      await this.subscriber.subscribe(channel);
    } catch (err) {
      // The "ready" handler subscribes again after the reconnect.
      this.logger.warn({ err, channel }, "channel subscribe failed");
    }
  }

  private unsubscribe(channel: ChannelName): void {
    if (this.subscriber.status !== "ready") return;
    this.subscriber.unsubscribe(channel).catch((err: unknown) => {
      this.logger.warn({ err, channel }, "channel unsubscribe failed");
    });
  }

  private resubscribe(): void {
    const owned = [...this.channels.values()]
      .filter((state) => state.token !== undefined)
      .map((state) => state.channel);
    if (owned.length === 0) return;

    this.subscriber.subscribe(...owned).catch((err: unknown) => {
      this.logger.warn({ err }, "channel resubscribe failed");
    });
  }
}
