/**
 * Build records in Valkey, one hash per build under `buildRecordKey`, each
 * with a TTL set when it is created. Any launcher sharing the Valkey can
 * answer for a build another one started.
 */
import type { Logger } from "../shared/logger.ts";
import type { ValkeyConfig } from "../shared/valkey-config.ts";
import {
  createValkeyClient,
  type ValkeyClient,
} from "../shared/valkey-connection.ts";
import { buildRecordKey } from "../shared/valkey-keys.ts";
import type { BuildId } from "../shared/wire.ts";
import {
  decodeRecord,
  encodeRecord,
  encodeUpdate,
  type BuildRecord,
  type BuildUpdate,
} from "./build-record.ts";
import { StoreUnavailableError } from "./errors.ts";

export interface BuildStoreOptions {
  valkey: ValkeyConfig;
  /** How long a record lives after it is created. */
  buildRecordTtlSeconds: number;
  logger: Logger;
}

// Sets fields only on a record that exists and has not ended, so a late or
// repeated report (two launchers describing one ECS task, a retry after a
// reconnect) never rewrites a final state. HSET keeps the key's TTL.
const TRANSITION_SCRIPT = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'succeeded' or status == 'failed' then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`;

export class BuildStore {
  readonly client: ValkeyClient;
  private readonly ttlSeconds: number;

  constructor(options: BuildStoreOptions) {
    this.ttlSeconds = options.buildRecordTtlSeconds;
    const logger = options.logger;

    this.client = createValkeyClient(
      {
        url: options.valkey.url,
        caFile: options.valkey.caFile,
        cluster: options.valkey.cluster,
        connectionName: "launcher",
      },
      // Queue commands only across one reconnect attempt: an HTTP request
      // gets a quick 503 during an outage instead of hanging.
      { maxRetriesPerRequest: 1 },
    );

    let connected = false;
    this.client.on("ready", () => {
      connected = true;
      logger.info("valkey connected");
    });
    this.client.on("close", () => {
      if (!connected) return;
      connected = false;
      logger.warn("valkey connection lost");
    });
    // ioredis reports every failed reconnect here; the close above already
    // said the connection is gone.
    this.client.on("error", (err: Error) => {
      logger.debug({ err }, "valkey client error");
    });
  }

  /** True while the connection to Valkey is up. */
  get ready(): boolean {
    return this.client.status === "ready";
  }

  async create(record: BuildRecord): Promise<void> {
    const key = buildRecordKey(record.buildId);

    await this.run(async () => {
      const results = await this.client
        .multi()
        .hset(key, encodeRecord(record))
        .expire(key, this.ttlSeconds)
        .exec();
      const failed = results?.find(([err]) => err !== null);
      if (failed) throw failed[0];
    });
  }

  async get(buildId: BuildId): Promise<BuildRecord | undefined> {
    const fields = await this.run(() =>
      this.client.hgetall(buildRecordKey(buildId)),
    );
    return decodeRecord(fields);
  }

  /**
   * Applies `update` to a build that has not ended. Returns false when the
   * record is gone or already final, and leaves it as it was.
   */
  async transition(buildId: BuildId, update: BuildUpdate): Promise<boolean> {
    const args = Object.entries(encodeUpdate(update)).flat();
    if (args.length === 0) return false;

    const applied = await this.run(() =>
      this.client.eval(TRANSITION_SCRIPT, 1, buildRecordKey(buildId), ...args),
    );
    return applied === 1;
  }

  async close(): Promise<void> {
    if (this.client.status === "end") return;

    // QUIT while reconnecting would wait in the offline queue.
    if (this.client.status !== "ready") {
      this.client.disconnect();
      return;
    }
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      throw new StoreUnavailableError({ cause: err });
    }
  }
}
