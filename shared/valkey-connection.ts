/**
 * Connections to Valkey, shared by every service.
 *
 * The URL may use `redis://`, `rediss://`, `valkey://` or `valkeys://` (the
 * scheme Aiven hands out). ioredis turns TLS on only for `rediss://`, so the
 * scheme is read here and TLS is set explicitly for both secure forms.
 *
 * Every connection carries a heartbeat: a PING every `heartbeatIntervalMs`,
 * and the socket is destroyed when a ping has had no reply for
 * `heartbeatTimeoutMs`. A half-open TCP connection (a network cut that
 * sends no reset) is then seen within seconds rather than minutes, and
 * ioredis reconnects as after any other loss. The verdict waits for one
 * turn of I/O first: after this process was too busy to read for a while,
 * the reply is usually sitting unread in the socket, and a connection that
 * is fine must not be torn down for the process's own slowness.
 *
 * On Valkey Cluster the per-node connections are ioredis's own; there the
 * heartbeat is ioredis's socket timeout, which only judges a connection
 * with a command in flight, and has no such allowance.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import {
  Cluster,
  Redis,
  type ClusterOptions,
  type RedisOptions,
} from "ioredis";

/** A connection to a standalone Valkey or to a Valkey Cluster. */
export type ValkeyClient = Redis | Cluster;

export interface ValkeyOptions {
  /** `redis://`, `rediss://`, `valkey://` or `valkeys://`. */
  url: string;
  /** PEM file of the CA that signed the server's certificate, for TLS. */
  caFile?: string | undefined;
  /** How often an idle connection is pinged. Default 2000. */
  heartbeatIntervalMs?: number;
  /** A command without a reply for this long kills the socket. Default 5000. */
  heartbeatTimeoutMs?: number;
  /** Name shown by CLIENT LIST, for operators. */
  connectionName?: string;
  /** The URL names one node of a Valkey Cluster; the rest are discovered. */
  cluster?: boolean;
  /** Cluster only: one sharded-pub/sub connection per primary (SSUBSCRIBE). */
  shardedSubscribers?: boolean;
}

export interface ValkeyEndpoint {
  host: string;
  port: number;
  tls: boolean;
  username?: string | undefined;
  password?: string | undefined;
  db: number;
}

const SCHEMES: Record<string, boolean> = {
  "redis:": false,
  "valkey:": false,
  "rediss:": true,
  "valkeys:": true,
};

export class ValkeyUrlError extends Error {
  readonly code = "VALKEY_ERR_BAD_URL";
}

/** Splits a Valkey URL into its parts; throws ValkeyUrlError when it is not one. */
export function parseValkeyUrl(url: string): ValkeyEndpoint {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ValkeyUrlError("not a URL");
  }

  const tls = SCHEMES[parsed.protocol];
  if (tls === undefined) {
    throw new ValkeyUrlError(
      "scheme must be redis://, rediss://, valkey:// or valkeys://",
    );
  }

  const dbText = parsed.pathname.replace(/^\//, "");
  const db = dbText === "" ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) {
    throw new ValkeyUrlError("database in the path must be a whole number");
  }

  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1",
    port: parsed.port === "" ? 6379 : Number(parsed.port),
    tls,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db,
  };
}

/** ioredis options for a URL, with TLS and reconnection. */
export function valkeyClientOptions(options: ValkeyOptions): RedisOptions {
  const endpoint = parseValkeyUrl(options.url);

  const clientOptions: RedisOptions = {
    host: endpoint.host,
    port: endpoint.port,
    username: endpoint.username,
    password: endpoint.password,
    db: endpoint.db,
    connectionName: options.connectionName,
    keepAlive: 1000,
    // Reconnect forever with a capped, jittered backoff: a relay outlives
    // any Valkey outage.
    retryStrategy: (attempt) =>
      Math.min(100 * 2 ** Math.min(attempt, 5), 2000) +
      Math.floor(Math.random() * 100),
  };

  if (endpoint.tls) {
    clientOptions.tls = {
      // SNI takes host names only; an IP address is checked against the
      // certificate without it.
      servername: isIP(endpoint.host) === 0 ? endpoint.host : undefined,
      ca: options.caFile ? readFileSync(options.caFile) : undefined,
    };
  }

  return clientOptions;
}

/**
 * Opens a client with a heartbeat: a plain client, or a cluster client when
 * `options.cluster` is set. The caller must attach an `error` listener;
 * ioredis reports every failed connection attempt there.
 */
export function createValkeyClient(
  options: ValkeyOptions & { cluster?: false },
  overrides?: RedisOptions,
): Redis;
export function createValkeyClient(
  options: ValkeyOptions,
  overrides?: RedisOptions,
): ValkeyClient;
export function createValkeyClient(
  options: ValkeyOptions,
  overrides: RedisOptions = {},
): ValkeyClient {
  const redisOptions = { ...valkeyClientOptions(options), ...overrides };
  const timeoutMs = options.heartbeatTimeoutMs ?? 5000;

  if (options.cluster) {
    const nodeOptions = { ...redisOptions, socketTimeout: timeoutMs };
    const cluster = new Cluster(
      [{ host: redisOptions.host, port: redisOptions.port }],
      {
        ...clusterOptions(nodeOptions),
        shardedSubscribers: options.shardedSubscribers ?? false,
      },
    );
    startHeartbeat(cluster, options.heartbeatIntervalMs ?? 2000, undefined);
    return cluster;
  }

  const client = new Redis(redisOptions);
  startHeartbeat(client, options.heartbeatIntervalMs ?? 2000, timeoutMs);
  return client;
}

/**
 * Splits per-node settings from the ones ioredis's Cluster takes at its own
 * level (offline queue, pipelining, retry).
 */
function clusterOptions(redisOptions: RedisOptions): ClusterOptions {
  const {
    host: _host,
    port: _port,
    enableOfflineQueue,
    enableAutoPipelining,
    retryStrategy,
    ...perNode
  } = redisOptions;

  return {
    redisOptions: perNode,
    enableOfflineQueue: enableOfflineQueue ?? true,
    enableAutoPipelining: enableAutoPipelining ?? false,
    clusterRetryStrategy: retryStrategy
      ? (times) => retryStrategy(times) ?? null
      : undefined,
  };
}

/**
 * Pings the client while it is ready. With `timeoutMs`, a ping unanswered
 * for that long destroys the socket, once pending I/O has been read; without
 * it the reply does not matter (ioredis's own socket timeout judges).
 */
export function startHeartbeat(
  client: ValkeyClient,
  intervalMs: number,
  timeoutMs: number | undefined,
): void {
  // When the unanswered ping was sent, if one is.
  let pendingSince: number | undefined;

  const timer = setInterval(() => {
    if (client.status !== "ready") {
      pendingSince = undefined;
      return;
    }
    if (pendingSince !== undefined) {
      if (timeoutMs !== undefined && Date.now() - pendingSince >= timeoutMs) {
        setImmediate(() => judge(pendingSince));
      }
      return;
    }

    const sentAt = Date.now();
    pendingSince = sentAt;
    const answered = (): void => {
      if (pendingSince === sentAt) pendingSince = undefined;
    };
    // A failed ping means the connection is already being replaced.
    client.ping().then(answered, answered);
  }, intervalMs);
  timer.unref();

  const judge = (sentAt: number | undefined): void => {
    if (sentAt === undefined || pendingSince !== sentAt) return;
    if (client.status !== "ready" || !(client instanceof Redis)) return;
    pendingSince = undefined;
    client.stream.destroy(new Error("no reply to the heartbeat"));
  };

  client.once("end", () => clearInterval(timer));
}
