/**
 * The relay's settings, read once from the environment at start-up.
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `PORT` | 9002 | HTTP, Socket.IO and health port (0 picks a free one) |
 * | `HOST` | 0.0.0.0 | address to listen on |
 * | `RELAY_NODE_ID` | `relay-<host>-<pid>-<random>` | this node's id in logs, `/healthz` and leases |
 * | `LOG_LEVEL` | info | pino level |
 * | `LEASE_TTL_MS` | 3000 | how long a channel lease lives without renewal |
 * | `LEASE_RENEW_INTERVAL_MS` | 1000 | how often leases are renewed and contended |
 * | `PRESENCE_TTL_MS` | 5000 | how long a node counts as having viewers without a refresh |
 * | `BATCH_WINDOW_MS` | 20 | how long lines gather before one `logs` event |
 * | `BATCH_MAX_LINES` | 500 | a batch goes out early at this many lines |
 * | `SHUTDOWN_GRACE_MS` | 10000 | bound on a SIGTERM drain |
 * | `MAX_CHANNELS_PER_SOCKET` | 16 | channels one connection may follow |
 * | `SLOW_VIEWER_BUFFER_BYTES` | 4194304 | a WebSocket viewer with more unsent bytes is held back and caught up |
 * | `SLOW_VIEWER_MAX_PACKETS` | 10000 | a polling viewer with more waiting packets is held back and caught up |
 * | `PING_INTERVAL_MS` | 25000 | how often Engine.IO pings each viewer |
 * | `PING_TIMEOUT_MS` | 20000 | how long a ping may go unanswered by a viewer that reads nothing |
 * | `CATCH_UP_BUFFER_BYTES` | 268435456 | recent lines the node keeps for held-back viewers, all channels together |
 * | `FEED_QUEUE_BYTES` | 67108864 | lines waiting for delivery, all channels together; past it a feed reads them back from history |
 * | `SLOW_VIEWER_CHECK_INTERVAL_MS` | 250 | how often viewers' buffers are checked |
 * | `CORS_ORIGIN` | `*` | origins allowed for HTTP long-polling |
 * | `VALKEY_CONNECT_TIMEOUT_MS` | 10000 | how long start-up waits for Valkey before giving up |
 *
 * plus the Valkey variables of shared/valkey-config.ts.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import {
  ConfigError,
  intVar,
  portVar,
  readEnv,
  type Env,
} from "../shared/env-config.ts";
import { LOG_LEVELS } from "../shared/logger.ts";
import {
  readValkeyConfig,
  type ValkeyConfig,
} from "../shared/valkey-config.ts";

export interface RelayOptions {
  port: number;
  host: string;
  nodeId: string;
  logLevel: (typeof LOG_LEVELS)[number];
  valkey: ValkeyConfig;
  leaseTtlMs: number;
  leaseRenewIntervalMs: number;
  presenceTtlMs: number;
  batchWindowMs: number;
  batchMaxLines: number;
  shutdownGraceMs: number;
  maxChannelsPerSocket: number;
  slowViewerBufferBytes: number;
  slowViewerMaxPackets: number;
  slowViewerCheckIntervalMs: number;
  catchUpBufferBytes: number;
  feedQueueBytes: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  corsOrigin: string;
  valkeyConnectTimeoutMs: number;
}

const NODE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/;

const schema = z.object({
  PORT: portVar.default(9002),
  HOST: z.string().default("0.0.0.0"),
  RELAY_NODE_ID: z
    .string()
    .regex(NODE_ID_PATTERN, "must be 1-100 of A-Z a-z 0-9 _ . : -")
    .optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  LEASE_TTL_MS: intVar(500, 60_000).default(3000),
  LEASE_RENEW_INTERVAL_MS: intVar(100, 20_000).default(1000),
  PRESENCE_TTL_MS: intVar(500, 120_000).default(5000),
  BATCH_WINDOW_MS: intVar(0, 1000).default(20),
  BATCH_MAX_LINES: intVar(1, 10_000).default(500),
  SHUTDOWN_GRACE_MS: intVar(0, 120_000).default(10_000),
  MAX_CHANNELS_PER_SOCKET: intVar(1, 1000).default(16),
  SLOW_VIEWER_BUFFER_BYTES: intVar(16 * 1024, 256 * 1024 * 1024).default(
    4 * 1024 * 1024,
  ),
  SLOW_VIEWER_MAX_PACKETS: intVar(10, 10_000_000).default(10_000),
  SLOW_VIEWER_CHECK_INTERVAL_MS: intVar(10, 60_000).default(250),
  PING_INTERVAL_MS: intVar(1000, 600_000).default(25_000),
  PING_TIMEOUT_MS: intVar(1000, 600_000).default(20_000),
  CATCH_UP_BUFFER_BYTES: intVar(64 * 1024, 16 * 1024 * 1024 * 1024).default(
    256 * 1024 * 1024,
  ),
  FEED_QUEUE_BYTES: intVar(64 * 1024, 16 * 1024 * 1024 * 1024).default(
    64 * 1024 * 1024,
  ),
  CORS_ORIGIN: z.string().default("*"),
  VALKEY_CONNECT_TIMEOUT_MS: intVar(100, 600_000).default(10_000),
});

export function defaultNodeId(): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9_.-]/g, "")
    .slice(0, 40);
  return `relay-${host}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

export function readRelayConfig(env: Env = process.env): RelayOptions {
  const vars = readEnv(schema, env);

  // A lease must be renewed at least twice in its lifetime, and a node's
  // presence must outlive two refreshes, or ownership flaps.
  const problems: string[] = [];
  if (vars.LEASE_RENEW_INTERVAL_MS * 2 > vars.LEASE_TTL_MS) {
    problems.push(
      `LEASE_RENEW_INTERVAL_MS=${vars.LEASE_RENEW_INTERVAL_MS}: must be at most half of LEASE_TTL_MS=${vars.LEASE_TTL_MS}`,
    );
  }
  if (vars.LEASE_RENEW_INTERVAL_MS * 2 > vars.PRESENCE_TTL_MS) {
    problems.push(
      `LEASE_RENEW_INTERVAL_MS=${vars.LEASE_RENEW_INTERVAL_MS}: must be at most half of PRESENCE_TTL_MS=${vars.PRESENCE_TTL_MS}`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return Object.freeze({
    port: vars.PORT,
    host: vars.HOST,
    nodeId: vars.RELAY_NODE_ID ?? defaultNodeId(),
    logLevel: vars.LOG_LEVEL,
    valkey: readValkeyConfig(env),
    leaseTtlMs: vars.LEASE_TTL_MS,
    leaseRenewIntervalMs: vars.LEASE_RENEW_INTERVAL_MS,
    presenceTtlMs: vars.PRESENCE_TTL_MS,
    batchWindowMs: vars.BATCH_WINDOW_MS,
    batchMaxLines: vars.BATCH_MAX_LINES,
    shutdownGraceMs: vars.SHUTDOWN_GRACE_MS,
    maxChannelsPerSocket: vars.MAX_CHANNELS_PER_SOCKET,
    slowViewerBufferBytes: vars.SLOW_VIEWER_BUFFER_BYTES,
    slowViewerMaxPackets: vars.SLOW_VIEWER_MAX_PACKETS,
    slowViewerCheckIntervalMs: vars.SLOW_VIEWER_CHECK_INTERVAL_MS,
    catchUpBufferBytes: vars.CATCH_UP_BUFFER_BYTES,
    feedQueueBytes: vars.FEED_QUEUE_BYTES,
    pingIntervalMs: vars.PING_INTERVAL_MS,
    pingTimeoutMs: vars.PING_TIMEOUT_MS,
    corsOrigin: vars.CORS_ORIGIN,
    valkeyConnectTimeoutMs: vars.VALKEY_CONNECT_TIMEOUT_MS,
  });
}

export const RELAY_USAGE = `Usage: relay

Serves live build logs over Socket.IO. Configured by environment variables:

  PORT                     listen port (default 9002; 0 = any free port)
  HOST                     listen address (default 0.0.0.0)
  RELAY_NODE_ID            node id in logs, /healthz and leases (default unique)
  REDIS_URL                Valkey URL (also VALKEY_URL, AIVEN_REDIS_URL;
                           default redis://127.0.0.1:6379; rediss:// and
                           valkeys:// use TLS)
  VALKEY_CA_FILE           PEM CA file for TLS
  VALKEY_CLUSTER           true when the URL names a Valkey Cluster node
  LOG_LEVEL                fatal|error|warn|info|debug|trace|silent (default info)
  LEASE_TTL_MS             channel lease lifetime (default 3000)
  LEASE_RENEW_INTERVAL_MS  lease renewal period (default 1000)
  PRESENCE_TTL_MS          viewer presence lifetime (default 5000)
  BATCH_WINDOW_MS          batching window for structured viewers (default 20)
  BATCH_MAX_LINES          lines per batch at most (default 500)
  SHUTDOWN_GRACE_MS        bound on a SIGTERM drain (default 10000)
  MAX_CHANNELS_PER_SOCKET  channels one connection may follow (default 16)
  SLOW_VIEWER_BUFFER_BYTES unsent bytes before a viewer is held back and
                           caught up as it drains (default 4194304)
  SLOW_VIEWER_MAX_PACKETS  waiting packets before a polling viewer is held
                           back (default 10000)
  PING_INTERVAL_MS         how often each viewer is pinged (default 25000)
  PING_TIMEOUT_MS          how long a ping may go unanswered while the
                           viewer reads nothing (default 20000)
  CATCH_UP_BUFFER_BYTES    recent lines kept for held-back viewers, all
                           channels together (default 268435456); a viewer
                           further behind is disconnected
  FEED_QUEUE_BYTES         lines waiting for delivery, all channels together
                           (default 67108864); past it, a channel's waiting
                           lines are read back from history when their turn
                           comes
  SLOW_VIEWER_CHECK_INTERVAL_MS  how often buffers are checked (default 250)
  CORS_ORIGIN              origins allowed for long-polling (default *)
  VALKEY_CONNECT_TIMEOUT_MS  start-up wait for Valkey (default 10000)

Endpoints: /healthz, /readyz, /metrics, and Socket.IO at /socket.io/.
`;
