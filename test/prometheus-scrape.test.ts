/**
 * Debian's prometheus, running deploy/prometheus.yml against three local
 * relays, scrapes all of them, sees the lines they deliver, and can answer
 * every query of the Grafana dashboard.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import {
  afterAll,
  beforeAll,
  describe,
  expect,
  it,
  onTestFinished,
} from "vitest";
import { LocalValkey } from "../shared/local-valkey.ts";
import { startPrometheus } from "./support/prometheus-process.ts";
import { startRelay } from "./support/relay-process.ts";
import { ROOT } from "./support/service-process.ts";
import { lookUpBinary } from "./support/system-binary.ts";
import { connectStringViewer } from "./support/viewer.ts";
import { waitFor } from "./support/wait-for.ts";

const prometheusBinary = lookUpBinary("prometheus", "prometheus");

const LINES = 100;

let valkey: LocalValkey | undefined;
let publisher: Redis | undefined;

beforeAll(async () => {
  if (prometheusBinary.skip) return;
  valkey = await LocalValkey.start();
  publisher = new Redis(valkey.url);
});

afterAll(async () => {
  publisher?.disconnect();
  await valkey?.stop();
});

/** A line message as the builder publishes it, so latency is observed. */
function lineMessage(seq: number): string {
  return JSON.stringify({
    type: "line",
    log: `line ${seq}`,
    buildId: "scrape-test",
    seq,
    ts: Date.now(),
    stream: "stdout",
  });
}

function sumOf(results: { value: [number, string] }[]): number {
  return results.reduce((total, r) => total + Number(r.value[1]), 0);
}

/** Grafana's variables, given values Prometheus accepts as they are. */
function withGrafanaVariables(expr: string): string {
  return expr
    .replaceAll("$__rate_interval", "1m")
    .replaceAll("$__interval", "15s")
    .replaceAll('"$instance"', '".*"');
}

interface DashboardPanel {
  title: string;
  targets?: Array<{ expr: string }>;
}

function dashboardQueries(): Array<{ title: string; expr: string }> {
  const path = join(ROOT, "deploy", "grafana", "relay-dashboard.json");
  const dashboard = JSON.parse(readFileSync(path, "utf8")) as {
    panels: DashboardPanel[];
  };
  return dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map(({ expr }) => ({ title: panel.title, expr })),
  );
}

describe.skipIf(prometheusBinary.skip)("prometheus scraping relays", () => {
  it("scrapes every relay, sees delivered lines rise and answers the dashboard", async () => {
    const relays = await Promise.all(
      [1, 2, 3].map((i) =>
        startRelay(valkey!.url, { RELAY_NODE_ID: `scraped-${i}` }),
      ),
    );
    const prometheus = await startPrometheus(
      prometheusBinary.path(),
      relays.map((relay) => `127.0.0.1:${relay.port}`),
    );
    onTestFinished(() => prometheus.stop());

    const up = await waitFor(
      () => prometheus.query('up{job="relay"}'),
      (results) =>
        results.length === 3 && results.every((r) => r.value[1] === "1"),
      { what: "three relays up" },
    );
    expect(up.map((r) => r.metric.instance).sort()).toEqual(
      relays.map((relay) => `127.0.0.1:${relay.port}`).sort(),
    );
    const before = sumOf(await prometheus.query("relay_lines_delivered_total"));

    // One viewer on each relay; one of them owns the channel.
    const channel = "logs:scraped";
    const viewers = relays.map((relay) => connectStringViewer(relay.url));
    for (const viewer of viewers) {
      viewer.socket.emit("subscribe", channel);
      await viewer.waitForMessages(1);
    }
    await waitFor(
      async () => {
        const [, owners] = (await publisher!.pubsub("NUMSUB", channel)) as [
          string,
          number,
        ];
        const [, listeners] = (await publisher!.pubsub(
          "SHARDNUMSUB",
          `socket.io#/#${channel}#`,
        )) as [string, number];
        return [Number(owners), Number(listeners)];
      },
      ([owners, listeners]) => owners === 1 && listeners === 3,
      { what: "one owner and three listening relays" },
    );

    const pipeline = publisher!.pipeline();
    for (let seq = 1; seq <= LINES; seq++) {
      pipeline.publish(channel, lineMessage(seq));
    }
    await pipeline.exec();
    for (const viewer of viewers) await viewer.waitForMessages(1 + LINES);

    const after = await waitFor(
      async () => sumOf(await prometheus.query("relay_lines_delivered_total")),
      (total) => total >= before + LINES * viewers.length,
      { what: "delivered lines in prometheus" },
    );
    expect(after - before).toBe(LINES * viewers.length);

    const received = sumOf(
      await prometheus.query("relay_lines_received_total"),
    );
    expect(received).toBe(LINES);

    // Every query of the Grafana dashboard is valid PromQL for this data.
    const failures: string[] = [];
    for (const { title, expr } of dashboardQueries()) {
      await prometheus.query(withGrafanaVariables(expr)).catch((err: Error) => {
        failures.push(`${title}: ${err.message}`);
      });
    }
    expect(failures).toEqual([]);

    // The panels an operator looks at first show data, not "No data".
    const latency = await waitFor(
      () =>
        prometheus.query(
          withGrafanaVariables(
            dashboardQueries().find((q) => q.title === "Delivery latency p99")!
              .expr,
          ),
        ),
      (results) =>
        results.length === 1 && Number.isFinite(Number(results[0]!.value[1])),
      { what: "a p99 latency" },
    );
    expect(Number(latency[0]!.value[1])).toBeGreaterThan(0);

    const valkeyUp = await prometheus.query("relay_valkey_up");
    expect(valkeyUp).toHaveLength(9);
    expect(valkeyUp.every((r) => r.value[1] === "1")).toBe(true);
  });
});
