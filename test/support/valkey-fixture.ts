/**
 * One throwaway Valkey per test file, with a plain client on it, started
 * before the file's tests and stopped after them.
 */
import { Redis } from "ioredis";
import { beforeAll } from "vitest";
import {
  LocalValkey,
  type LocalValkeyOptions,
} from "../../shared/local-valkey.ts";

export interface ValkeyFixture {
  readonly valkey: LocalValkey;
  /** A client for publishing and for reading Valkey's state. */
  readonly client: Redis;
  readonly url: string;
}

export function useValkey(options: LocalValkeyOptions = {}): ValkeyFixture {
  let valkey: LocalValkey | undefined;
  let client: Redis | undefined;

  beforeAll(async () => {
    valkey = await LocalValkey.start(options);
    client = new Redis(valkey.url, { retryStrategy: () => 100 });
    client.on("error", () => {});
    return async () => {
      client?.disconnect();
      await valkey?.stop();
    };
  });

  const started = <T>(value: T | undefined): T => {
    if (value === undefined)
      throw new Error("Valkey is used before beforeAll ran");
    return value;
  };
  return {
    get valkey() {
      return started(valkey);
    },
    get client() {
      return started(client);
    },
    get url() {
      return started(valkey).url;
    },
  };
}
