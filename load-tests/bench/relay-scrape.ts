/**
 * Reads a relay's /metrics (relay/relay-metrics.ts names), so the benchmark
 * can check its own counts against what the relays say they did.
 */

export type MetricSamples = Map<string, number>;

/**
 * Scrapes `url`/metrics into `name{labels}` → value, labels as written by
 * prom-client (sorted, quoted).
 */
export async function scrapeMetrics(url: string): Promise<MetricSamples> {
  const response = await fetch(`${url}/metrics`);
  const text = await response.text();
  const samples: MetricSamples = new Map();

  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** The sum of every sample of `name`, whatever its labels. */
export function metricTotal(samples: MetricSamples, name: string): number {
  let total = 0;
  for (const [key, value] of samples) {
    if (key === name || key.startsWith(`${name}{`)) total += value;
  }
  return total;
}

/** One sample by its exact `name{labels}` key; 0 when absent. */
export function metricValue(samples: MetricSamples, key: string): number {
  return samples.get(key) ?? 0;
}
