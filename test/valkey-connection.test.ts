/**
 * Every service reaches Valkey by URL: the three variable names, the four
 * schemes, TLS with a private CA (Aiven's `valkeys://` included), and user
 * name and password from the URL. A URL that does not answer stops a
 * service with a clear message.
 */
import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { ConfigError } from "../shared/env-config.ts";
import { LocalValkey, freePort } from "../shared/local-valkey.ts";
import { readValkeyConfig } from "../shared/valkey-config.ts";
import { parseValkeyUrl } from "../shared/valkey-connection.ts";
import { startRelay } from "./support/relay-process.ts";
import { ServiceProcess } from "./support/service-process.ts";
import {
  makeCertificates,
  type TestCertificates,
} from "./support/test-certificates.ts";
import { connectStringViewer } from "./support/viewer.ts";

describe("Valkey URLs", () => {
  it("reads REDIS_URL, then VALKEY_URL, then AIVEN_REDIS_URL", () => {
    expect(readValkeyConfig({}).url).toBe("redis://127.0.0.1:6379");
    expect(readValkeyConfig({}).urlIsExplicit).toBe(false);
    expect(readValkeyConfig({ AIVEN_REDIS_URL: "valkeys://a:1" }).url).toBe(
      "valkeys://a:1",
    );
    expect(
      readValkeyConfig({
        VALKEY_URL: "redis://b:2",
        AIVEN_REDIS_URL: "valkeys://a:1",
      }).url,
    ).toBe("redis://b:2");
    expect(
      readValkeyConfig({ REDIS_URL: "redis://c:3", VALKEY_URL: "redis://b:2" }),
    ).toMatchObject({
      url: "redis://c:3",
      urlIsExplicit: true,
      cluster: false,
    });
    expect(readValkeyConfig({ VALKEY_CLUSTER: "true" }).cluster).toBe(true);
  });

  it("splits each scheme into host, port, TLS and credentials", () => {
    expect(parseValkeyUrl("redis://h:7000/2")).toMatchObject({
      host: "h",
      port: 7000,
      tls: false,
      db: 2,
    });
    expect(parseValkeyUrl("valkey://h")).toMatchObject({
      port: 6379,
      tls: false,
    });
    expect(parseValkeyUrl("rediss://h:1")).toMatchObject({ tls: true });
    expect(parseValkeyUrl("valkeys://us%40r:p%3Ass@h:2")).toMatchObject({
      tls: true,
      username: "us@r",
      password: "p:ss",
    });
  });

  it("names the variable when a URL is malformed", () => {
    for (const url of ["http://h", "not a url", "redis://h/x"]) {
      try {
        readValkeyConfig({ VALKEY_URL: url });
        expect.unreachable(`accepted ${url}`);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).code).toBe("CONFIG_ERR_INVALID");
        expect((err as ConfigError).problems[0]).toMatch(/^VALKEY_URL=/);
      }
    }
  });
});

/** A Valkey with a plain port and a TLS port serving `certs`. */
async function startTlsValkey(certs: TestCertificates) {
  const tlsPort = await freePort();
  const valkey = await LocalValkey.start({
    args: [
      "--tls-port",
      String(tlsPort),
      "--tls-cert-file",
      certs.certFile,
      "--tls-key-file",
      certs.keyFile,
      "--tls-ca-cert-file",
      certs.caFile,
      "--tls-auth-clients",
      "no",
    ],
  });
  onTestFinished(() => valkey.stop());
  return { valkey, tlsPort };
}

describe("TLS", () => {
  it("serves through valkeys:// with a private CA and the URL's credentials", async () => {
    const certs = await makeCertificates();
    const { valkey, tlsPort } = await startTlsValkey(certs);
    const admin = new Redis(valkey.url);
    onTestFinished(() => admin.disconnect());
    await admin.acl("SETUSER", "relay", "on", ">s3cret", "~*", "&*", "+@all");

    const relay = await startRelay(
      `valkeys://relay:s3cret@127.0.0.1:${tlsPort}`,
      {
        VALKEY_CA_FILE: certs.caFile,
      },
    );
    const viewer = connectStringViewer(relay.url);
    viewer.socket.emit("subscribe", "logs:over-tls");
    await viewer.waitForMessages(1);
    await admin.publish("logs:over-tls", '{"log":"secure"}');
    await viewer.waitForMessages(2);
    expect(viewer.messages[1]).toBe('{"log":"secure"}');

    const clients = ((await admin.client("LIST")) as string).split("\n");
    const relayClients = clients.filter((line) =>
      line.includes(`name=${relay.nodeId}:`),
    );
    expect(relayClients).toHaveLength(3);
    for (const line of relayClients) {
      expect(line).toContain("user=relay");
      expect(line).toContain(`laddr=127.0.0.1:${tlsPort}`);
    }
  });

  it("refuses a server whose certificate the CA did not sign", async () => {
    const certs = await makeCertificates();
    const other = await makeCertificates();
    const { tlsPort } = await startTlsValkey(certs);

    const relay = new ServiceProcess("relay", [], {
      REDIS_URL: `rediss://127.0.0.1:${tlsPort}`,
      VALKEY_CA_FILE: other.caFile,
      VALKEY_CONNECT_TIMEOUT_MS: "2000",
      PORT: "0",
    });
    onTestFinished(() => relay.stop("SIGKILL").then(() => {}));
    expect(await relay.exit()).toBe(1);
    const fatal = relay.logs.find((r) => r.msg === "relay failed to start");
    const err = fatal?.err as { code?: string; message?: string } | undefined;
    expect(err?.code).toBe("RELAY_ERR_UNAVAILABLE");
    expect(err?.message).toMatch(/certificate/);
  });
});

describe("an explicit URL that does not answer", () => {
  it("stops the relay with one clear message", async () => {
    const port = await freePort();
    const relay = new ServiceProcess("relay", [], {
      REDIS_URL: `redis://user:hidden@127.0.0.1:${port}`,
      VALKEY_CONNECT_TIMEOUT_MS: "1500",
      PORT: "0",
    });
    onTestFinished(() => relay.stop("SIGKILL").then(() => {}));

    expect(await relay.exit()).toBe(1);
    const fatal = relay.logs.filter((r) => r.level >= 50);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({
      msg: "relay failed to start",
      valkeyUrl: `redis://user:***@127.0.0.1:${port}`,
    });
    expect(JSON.stringify(relay.logs)).not.toContain("hidden");
  });
});
