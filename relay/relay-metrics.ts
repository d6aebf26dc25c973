/**
 * The relay's Prometheus metrics. Labels are bounded sets; no slug, build id
 * or socket id is ever a label.
 */
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
} from "prom-client";

export type ValkeyConnectionName = "commands" | "subscriber" | "adapter";

/** Live counts the gauges read when Prometheus scrapes. */
export interface RelayGaugeSources {
  clientsByTransport(): Map<string, number>;
  roomsWithViewers(): number;
  channelsOwned(): number;
  viewersCatchingUp(): number;
  catchUpBufferBytes(): number;
  feedQueueBytes(): number;
}

export class RelayMetrics {
  readonly registry = new Registry();

  readonly ownershipEvents = new Counter({
    name: "relay_ownership_events_total",
    help: "Channel ownership changes on this node",
    labelNames: ["event", "reason"] as const,
    registers: [this.registry],
  });

  readonly linesReceived = new Counter({
    name: "relay_lines_received_total",
    help: "Log messages read from Valkey channel subscriptions",
    registers: [this.registry],
  });

  readonly framesEmitted = new Counter({
    name: "relay_frames_emitted_total",
    help: "Socket.IO events this node emitted to rooms, by event",
    labelNames: ["event"] as const,
    registers: [this.registry],
  });

  readonly linesDelivered = new Counter({
    name: "relay_lines_delivered_total",
    help: "Log messages handed to viewers on this node (lines x viewers)",
    registers: [this.registry],
  });

  readonly deliveryLatency = new Histogram({
    name: "relay_delivery_latency_seconds",
    help: "From the builder reading a line to the owner emitting it",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly replayedLines = new Counter({
    name: "relay_replayed_lines_total",
    help: "Log messages sent to viewers from history",
    registers: [this.registry],
  });

  readonly subscribeRefusals = new Counter({
    name: "relay_subscribe_refusals_total",
    help: "Subscribe requests refused, by reason code",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  readonly refusedRequests = new Counter({
    name: "relay_refused_requests_total",
    help: "HTTP long-polling requests refused before Engine.IO, by status",
    labelNames: ["status"] as const,
    registers: [this.registry],
  });

  readonly malformedPayloads = new Counter({
    name: "relay_malformed_payloads_total",
    help: "Payloads on a log channel that were not messages of the protocol",
    registers: [this.registry],
  });

  readonly valkeyReconnects = new Counter({
    name: "relay_valkey_reconnects_total",
    help: "Reconnections of this node's Valkey connections",
    labelNames: ["connection"] as const,
    registers: [this.registry],
  });

  readonly valkeyUp = new Gauge({
    name: "relay_valkey_up",
    help: "1 while the Valkey connection is ready",
    labelNames: ["connection"] as const,
    registers: [this.registry],
  });

  readonly slowViewerDisconnects = new Counter({
    name: "relay_slow_viewer_disconnects_total",
    help: "Viewers disconnected because they could not keep up: buffer (over the hard limit) or behind (past the catch-up buffer)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  readonly disconnects = new Counter({
    name: "relay_disconnects_total",
    help: "Viewer connections that ended, by Socket.IO's reason (ping timeout, transport close, ...)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  readonly viewersHeldBack = new Counter({
    name: "relay_viewers_held_back_total",
    help: "Times a live viewer fell behind and was moved to catch-up, by what overflowed",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  readonly caughtUpLines = new Counter({
    name: "relay_caught_up_lines_total",
    help: "Line deliveries to held-back viewers from the catch-up buffer",
    registers: [this.registry],
  });

  readonly shedLines = new Counter({
    name: "relay_feed_shed_lines_total",
    help: "Lines dropped from a feed's delivery queue when the node's FEED_QUEUE_BYTES ran out; each is read back from history in its turn",
    registers: [this.registry],
  });

  readonly supersededLines = new Counter({
    name: "relay_superseded_lines_total",
    help: "Lines of a build that arrived after a newer build of the slug had started; live to string-form viewers only",
    registers: [this.registry],
  });

  readonly deliveryYields = new Counter({
    name: "relay_delivery_yields_total",
    help: "Times a channel feed paused delivery to let the event loop run",
    registers: [this.registry],
  });

  constructor(sources: RelayGaugeSources) {
    collectDefaultMetrics({ register: this.registry, prefix: "relay_" });

    new Gauge({
      name: "relay_connected_clients",
      help: "Socket.IO connections on this node, by transport",
      labelNames: ["transport"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        this.set({ transport: "websocket" }, 0);
        this.set({ transport: "polling" }, 0);
        for (const [transport, count] of sources.clientsByTransport()) {
          this.set({ transport }, count);
        }
      },
    });

    new Gauge({
      name: "relay_rooms_with_viewers",
      help: "Log channels with at least one viewer on this node",
      registers: [this.registry],
      collect() {
        this.set(sources.roomsWithViewers());
      },
    });

    new Gauge({
      name: "relay_viewers_catching_up",
      help: "Held-back viewers being caught up from memory",
      registers: [this.registry],
      collect() {
        this.set(sources.viewersCatchingUp());
      },
    });

    new Gauge({
      name: "relay_catch_up_buffer_bytes",
      help: "Bytes of recent lines kept for held-back viewers",
      registers: [this.registry],
      collect() {
        this.set(sources.catchUpBufferBytes());
      },
    });

    new Gauge({
      name: "relay_feed_queue_bytes",
      help: "Payload bytes of lines waiting in feeds for their turn to be delivered",
      registers: [this.registry],
      collect() {
        this.set(sources.feedQueueBytes());
      },
    });

    new Gauge({
      name: "relay_channels_owned",
      help: "Log channels whose Valkey subscription this node holds",
      registers: [this.registry],
      collect() {
        this.set(sources.channelsOwned());
      },
    });
  }
}
