/**
 * Reads relays' /metrics from k6 (relay/relay-metrics.ts names) and turns
 * them into k6 metrics, so a long run can watch a relay's memory and
 * event loop for growth.
 */
import http from "k6/http";
import { Gauge, Trend } from "k6/metrics";

export const relayRssBytes = new Gauge("relay_rss_bytes");
export const relayHeapUsedBytes = new Gauge("relay_heap_used_bytes");
export const relayViewers = new Gauge("relay_viewers");
export const relayEventLoopLagP99 = new Gauge("relay_event_loop_lag_p99", true);
/** A relay's RSS now minus its RSS at the end of the warm-up. */
export const relayRssGrowthBytes = new Trend("relay_rss_growth_bytes");

export interface RelaySample {
  rssBytes: number;
  heapUsedBytes: number;
  viewers: number;
  eventLoopLagP99Ms: number;
}

/** One relay's figures, or undefined when /metrics did not answer. */
export function sampleRelay(metricsUrl: string): RelaySample | undefined {
  const response = http.get(metricsUrl, { timeout: "10s" });
  if (response.status !== 200 || typeof response.body !== "string") {
    return undefined;
  }
  const text = response.body;
  return {
    rssBytes: sum(text, "relay_process_resident_memory_bytes"),
    heapUsedBytes: sum(text, "relay_nodejs_heap_size_used_bytes"),
    viewers: sum(text, "relay_connected_clients"),
    eventLoopLagP99Ms:
      sum(text, "relay_nodejs_eventloop_lag_p99_seconds") * 1000,
  };
}

/** The sum of every sample of `name` in Prometheus text, whatever its labels. */
function sum(text: string, name: string): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.charAt(name.length);
    if (rest !== " " && rest !== "{") continue;
    total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}
