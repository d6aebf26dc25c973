/**
 * A strict reader of Prometheus's text exposition format 0.0.4, for tests
 * that check what a service's `/metrics` says.
 *
 * prom-client can write the format but not read it, and the npm parsers
 * for it are lenient (they skip what they do not understand), so this one
 * refuses anything the format does not allow: a malformed line, a sample
 * before its family's TYPE, a family split into two groups, a second HELP
 * or TYPE, a repeated series, a histogram without its `+Inf` bucket or
 * with buckets that decrease. Each refusal names the line.
 *
 * `checkWithPromtool` runs Prometheus's own parser and linter over the
 * same text, where Debian's `promtool` is installed.
 */
import { spawnSync } from "node:child_process";

export type MetricType =
  "counter" | "gauge" | "histogram" | "summary" | "untyped";

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  /** The sample's own name: `x_bucket`, `x_sum` and `x_count` for a histogram `x`. */
  name: string;
  labels: Labels;
  value: number;
  timestampMs: number | undefined;
}

export interface MetricFamily {
  name: string;
  type: MetricType | undefined;
  help: string | undefined;
  samples: Sample[];
}

export class ExpositionError extends Error {
  readonly code = "TEST_ERR_EXPOSITION_FORMAT";

  constructor(
    readonly lineNumber: number,
    reason: string,
    line: string,
  ) {
    super(`line ${lineNumber}: ${reason}: ${JSON.stringify(line)}`);
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES: readonly MetricType[] = [
  "counter",
  "gauge",
  "histogram",
  "summary",
  "untyped",
];

/** Reads a whole exposition; throws ExpositionError at the first fault. */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  if (text.length > 0 && !text.endsWith("\n")) {
    throw new ExpositionError(0, "the text does not end with a line feed", "");
  }

  const families = new Map<string, MetricFamily>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: MetricFamily | undefined;

  const enter = (name: string, lineNumber: number, line: string) => {
    if (current?.name === name) return current;
    if (current) closed.add(current.name);
    if (closed.has(name)) {
      throw new ExpositionError(
        lineNumber,
        `${name} is split in two groups`,
        line,
      );
    }
    let family = families.get(name);
    if (!family) {
      family = { name, type: undefined, help: undefined, samples: [] };
      families.set(name, family);
    }
    current = family;
    return family;
  };

  const lines = text.split("\n").slice(0, -1);
  lines.forEach((line, index) => {
    const lineNumber = index + 1;
    if (line.trim() === "") return;

    if (line.startsWith("#")) {
      const match = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
      if (!match) return; // An ordinary comment.
      const [, keyword, name, rest = ""] = match;
      if (!isWhole(METRIC_NAME, name!)) {
        throw new ExpositionError(lineNumber, "bad metric name", line);
      }
      const family = enter(name!, lineNumber, line);

      if (keyword === "HELP") {
        if (family.help !== undefined) {
          throw new ExpositionError(lineNumber, "a second HELP", line);
        }
        family.help = unescapeHelp(rest, lineNumber, line);
        return;
      }
      if (family.type !== undefined) {
        throw new ExpositionError(lineNumber, "a second TYPE", line);
      }
      if (family.samples.length > 0) {
        throw new ExpositionError(lineNumber, "TYPE after samples", line);
      }
      if (!TYPES.includes(rest as MetricType)) {
        throw new ExpositionError(lineNumber, "unknown type", line);
      }
      family.type = rest as MetricType;
      return;
    }

    const sample = parseSample(line, lineNumber);
    const family = enter(familyOf(sample.name, current), lineNumber, line);
    const key = `${sample.name}${JSON.stringify(sortedLabels(sample.labels))}`;
    if (series.has(key)) {
      throw new ExpositionError(lineNumber, "a repeated series", line);
    }
    series.add(key);
    checkSampleFits(family, sample, lineNumber, line);
    family.samples.push(sample);
  });

  for (const family of families.values()) checkFamily(family);
  return families;
}

/**
 * Runs `promtool check metrics` over `text`: throws when Prometheus's
 * parser refuses it, and returns the linter's complaints otherwise.
 */
export function checkWithPromtool(
  promtool: string,
  text: string,
): { problems: string[] } {
  const result = spawnSync(promtool, ["check", "metrics"], {
    input: text,
    encoding: "utf8",
    timeout: 30_000,
  });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  // promtool exits 1 when the text does not parse, 3 when it only lints.
  if (result.status !== 0 && result.status !== 3) {
    throw new Error(
      `promtool check metrics failed (${result.status}): ${output}`,
    );
  }
  return {
    problems: output.split("\n").filter((line) => line.trim() !== ""),
  };
}

/** The value of one series, or undefined when the scrape has none. */
export function sampleValue(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Labels = {},
): number | undefined {
  const wanted = JSON.stringify(sortedLabels(labels));
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name !== name) continue;
      if (JSON.stringify(sortedLabels(sample.labels)) === wanted) {
        return sample.value;
      }
    }
  }
  return undefined;
}

/** Fetches and parses a `/metrics` page; throws on a bad status or format. */
export async function scrapeMetrics(
  baseUrl: string,
): Promise<Map<string, MetricFamily>> {
  const { text } = await fetchMetricsText(baseUrl);
  return parsePrometheusText(text);
}

export async function fetchMetricsText(
  baseUrl: string,
): Promise<{ text: string; contentType: string }> {
  const response = await fetch(`${baseUrl}/metrics`);
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`/metrics answered ${response.status}: ${text}`);
  }
  return { text, contentType: response.headers.get("content-type") ?? "" };
}

function parseSample(line: string, lineNumber: number): Sample {
  const fail = (reason: string): never => {
    throw new ExpositionError(lineNumber, reason, line);
  };
  let at = 0;
  const skipBlanks = (): void => {
    while (line[at] === " " || line[at] === "\t") at += 1;
  };

  const nameMatch = METRIC_NAME.exec(line);
  if (!nameMatch) fail("a sample must start with a metric name");
  const name = nameMatch![0];
  at = name.length;
  skipBlanks();

  const labels: Record<string, string> = {};
  if (line[at] === "{") {
    at += 1;
    skipBlanks();
    while (line[at] !== "}") {
      const labelMatch = LABEL_NAME.exec(line.slice(at));
      if (!labelMatch) fail("bad label name");
      const labelName = labelMatch![0];
      if (labelName.startsWith("__")) fail("reserved label name");
      if (labelName in labels) fail("a repeated label");
      at += labelName.length;
      skipBlanks();
      if (line[at] !== "=") fail("a label name needs =");
      at += 1;
      skipBlanks();
      if (line[at] !== '"') fail("a label value needs quotes");
      at += 1;

      let value = "";
      for (;;) {
        const char = line[at];
        if (char === undefined) fail("unterminated label value");
        if (char === '"') break;
        if (char === "\\") {
          const next = line[at + 1];
          if (next === "\\") value += "\\";
          else if (next === '"') value += '"';
          else if (next === "n") value += "\n";
          else fail("bad escape in a label value");
          at += 2;
          continue;
        }
        value += char;
        at += 1;
      }
      labels[labelName] = value;
      at += 1;
      skipBlanks();

      if (line[at] === ",") {
        at += 1;
        skipBlanks();
      } else if (line[at] !== "}") {
        fail("labels must be separated by ,");
      }
    }
    at += 1;
  } else if (at === name.length) {
    fail("a value must follow the name after a blank");
  }

  const fields = line
    .slice(at)
    .trim()
    .split(/[ \t]+/);
  if (fields.length > 2) fail("too many fields");

  const value = parseValue(fields[0]!);
  if (value === undefined) fail("bad value");
  let timestampMs: number | undefined;
  if (fields[1] !== undefined) {
    if (!/^-?\d+$/.test(fields[1])) fail("bad timestamp");
    timestampMs = Number(fields[1]);
  }
  return { name, labels, value: value!, timestampMs };
}

/** A float as Go's strconv.ParseFloat reads it, which the format refers to. */
function parseValue(text: string): number | undefined {
  const special = /^([-+]?)(nan|inf|infinity)$/i.exec(text);
  if (special) {
    if (special[2]!.toLowerCase() === "nan") return NaN;
    return special[1] === "-" ? -Infinity : Infinity;
  }
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}

function familyOf(
  sampleName: string,
  current: MetricFamily | undefined,
): string {
  if (current?.type === "histogram" || current?.type === "summary") {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      if (sampleName === `${current.name}${suffix}`) return current.name;
    }
  }
  return sampleName;
}

function checkSampleFits(
  family: MetricFamily,
  sample: Sample,
  lineNumber: number,
  line: string,
): void {
  const fail = (reason: string): never => {
    throw new ExpositionError(lineNumber, reason, line);
  };

  if (family.type === "histogram") {
    if (sample.name === `${family.name}_bucket`) {
      if (sample.labels.le === undefined) fail("a bucket without le");
      if (parseValue(sample.labels.le!) === undefined) fail("bad le");
    } else if (sample.name === family.name) {
      fail("a histogram sample needs _bucket, _sum or _count");
    } else if ("le" in sample.labels) {
      fail("le outside a bucket");
    }
  } else if (family.type === "summary") {
    if (sample.name === family.name) {
      if (sample.labels.quantile === undefined)
        fail("a quantile without quantile");
    } else if ("quantile" in sample.labels) {
      fail("quantile outside a quantile sample");
    }
  } else {
    if (sample.name !== family.name) fail("a sample outside its family");
    if (family.type === "counter" && !(sample.value >= 0)) {
      fail("a counter below zero");
    }
  }
}

/** Buckets of every histogram series: cumulative, ending at +Inf = count. */
function checkFamily(family: MetricFamily): void {
  if (family.type !== "histogram") return;

  const groups = new Map<
    string,
    { buckets: Array<[number, number]>; count?: number }
  >();
  const groupOf = (labels: Labels) => {
    const rest = { ...labels };
    delete rest.le;
    const key = JSON.stringify(sortedLabels(rest));
    let group = groups.get(key);
    if (!group) {
      group = { buckets: [] };
      groups.set(key, group);
    }
    return group;
  };

  for (const sample of family.samples) {
    if (sample.name === `${family.name}_bucket`) {
      groupOf(sample.labels).buckets.push([
        parseValue(sample.labels.le!)!,
        sample.value,
      ]);
    } else if (sample.name === `${family.name}_count`) {
      groupOf(sample.labels).count = sample.value;
    }
  }

  for (const [key, group] of groups) {
    const where = `${family.name}${key}`;
    const sorted = [...group.buckets].sort((a, b) => a[0] - b[0]);
    const last = sorted.at(-1);
    if (!last || last[0] !== Infinity) {
      throw new ExpositionError(0, `${where} has no +Inf bucket`, "");
    }
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]![1] < sorted[i - 1]![1]) {
        throw new ExpositionError(0, `${where} buckets decrease`, "");
      }
    }
    if (group.count !== last[1]) {
      throw new ExpositionError(0, `${where} +Inf bucket is not the count`, "");
    }
  }
}

function sortedLabels(labels: Labels): Array<[string, string]> {
  return Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1));
}

function unescapeHelp(text: string, lineNumber: number, line: string): string {
  return text.replace(/\\(.?)/g, (_, next: string) => {
    if (next === "\\") return "\\";
    if (next === "n") return "\n";
    throw new ExpositionError(lineNumber, "bad escape in HELP", line);
  });
}

function isWhole(pattern: RegExp, text: string): boolean {
  return pattern.exec(text)?.[0] === text;
}
