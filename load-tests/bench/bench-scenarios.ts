/**
 * What the benchmark runs: each scenario, at full size or as the quick
 * version CI runs, against each contender (a system and a viewer form).
 *
 * | scenario | load |
 * | --- | --- |
 * | `fanout-1000`, `fanout-5000` | 1 build at 2,000 lines/s for 10 s, 1,000 or 5,000 viewers over the relays |
 * | `fanout-light` | 1 build at 200 lines/s for 10 s, 1,000 viewers: latency within this machine's capacity |
 * | `many-builds` | 500 builds at 10 lines/s for 20 s, 4 viewers each |
 * | `idle` | 10,000 subscribed viewers of 100 quiet channels on one relay |
 * | `storm` | 5,000 connect + subscribe, 500 at a time, over the relays |
 */
import type { ViewerForm } from "./light-viewer.ts";
import type { SystemKind } from "./system-under-test.ts";

export interface Contender {
  /** Short name in tables and JSON: `ours-structured`, `baseline`, ... */
  name: string;
  system: SystemKind;
  form: ViewerForm;
}

export const OURS_STRUCTURED: Contender = {
  name: "ours-structured",
  system: "ours",
  form: "structured",
};
export const OURS_STRING: Contender = {
  name: "ours-string",
  system: "ours",
  form: "string",
};
/** The baseline only has the string form. */
export const BASELINE: Contender = {
  name: "baseline",
  system: "baseline",
  form: "string",
};
export const FLOOR_STRING: Contender = {
  name: "floor-string",
  system: "floor",
  form: "string",
};
export const FLOOR_STRUCTURED: Contender = {
  name: "floor-structured",
  system: "floor",
  form: "structured",
};

export interface LoadScenario {
  kind: "load";
  name: string;
  nodes: number;
  builds: number;
  viewersPerBuild: number;
  linesPerSecondPerBuild: number;
  /**
   * What the scenario is for: `throughput` loads past what the machine
   * carries and compares lines per second; `latency` stays well within it,
   * where delivery latency means the system's, not a queue's.
   */
  measures: "throughput" | "latency";
  durationMs: number;
  /** After the last line, how long viewers may take to catch up. */
  drainTimeoutMs: number;
  contenders: Contender[];
}

export interface IdleScenario {
  kind: "idle";
  name: string;
  nodes: number;
  viewers: number;
  channels: number;
  /** Quiet time after the last subscribe, before memory is read. */
  settleMs: number;
  contenders: Contender[];
}

export interface StormScenario {
  kind: "storm";
  name: string;
  nodes: number;
  connections: number;
  /** Connections being opened at once. */
  concurrency: number;
  contenders: Contender[];
}

export type Scenario = LoadScenario | IdleScenario | StormScenario;

const ALL_LOAD_CONTENDERS = [
  OURS_STRUCTURED,
  OURS_STRING,
  BASELINE,
  FLOOR_STRING,
  FLOOR_STRUCTURED,
];

/** The full benchmark, with `nodes` relays (default 2) where it has a choice. */
export function fullScenarios(nodes: number): Scenario[] {
  const fanout = (viewers: number): LoadScenario => ({
    kind: "load",
    name: `fanout-${viewers}`,
    nodes,
    builds: 1,
    viewersPerBuild: viewers,
    linesPerSecondPerBuild: 2000,
    measures: "throughput",
    // 20 M deliveries at 1,000 viewers is several times what two cores
    // carry; longer would only lengthen the drain.
    durationMs: 10_000,
    drainTimeoutMs: 60_000,
    contenders: ALL_LOAD_CONTENDERS,
  });

  return [
    fanout(1000),
    fanout(5000),
    {
      kind: "load",
      name: "fanout-light",
      nodes,
      builds: 1,
      viewersPerBuild: 1000,
      // 0.2 M deliveries a second: a tenth of what fanout-1000 offers.
      linesPerSecondPerBuild: 200,
      measures: "latency",
      durationMs: 10_000,
      drainTimeoutMs: 60_000,
      contenders: ALL_LOAD_CONTENDERS,
    },
    {
      kind: "load",
      name: "many-builds",
      nodes,
      builds: 500,
      viewersPerBuild: 4,
      linesPerSecondPerBuild: 10,
      measures: "throughput",
      durationMs: 20_000,
      drainTimeoutMs: 60_000,
      contenders: ALL_LOAD_CONTENDERS,
    },
    {
      kind: "idle",
      name: "idle",
      nodes: 1,
      viewers: 10_000,
      channels: 100,
      settleMs: 5_000,
      contenders: [OURS_STRUCTURED, OURS_STRING, BASELINE, FLOOR_STRUCTURED],
    },
    {
      kind: "storm",
      name: "storm",
      nodes,
      connections: 5_000,
      concurrency: 500,
      contenders: [OURS_STRUCTURED, OURS_STRING, BASELINE, FLOOR_STRUCTURED],
    },
  ];
}

/**
 * The quick version, under a minute on two cores: small enough that every
 * contender keeps up, so loss and duplicates must be 0. Its speeds mean
 * nothing.
 */
export function quickScenarios(nodes: number): Scenario[] {
  return [
    {
      kind: "load",
      name: "fanout-quick",
      nodes,
      builds: 1,
      viewersPerBuild: 100,
      linesPerSecondPerBuild: 500,
      measures: "throughput",
      durationMs: 3_000,
      drainTimeoutMs: 15_000,
      contenders: [OURS_STRUCTURED, OURS_STRING, BASELINE, FLOOR_STRING],
    },
    {
      kind: "load",
      name: "many-builds-quick",
      nodes,
      builds: 20,
      viewersPerBuild: 3,
      linesPerSecondPerBuild: 20,
      measures: "throughput",
      durationMs: 3_000,
      drainTimeoutMs: 15_000,
      contenders: [OURS_STRUCTURED],
    },
    {
      kind: "idle",
      name: "idle-quick",
      nodes: 1,
      viewers: 500,
      channels: 10,
      settleMs: 1_000,
      contenders: [OURS_STRUCTURED],
    },
    {
      kind: "storm",
      name: "storm-quick",
      nodes,
      connections: 500,
      concurrency: 100,
      contenders: [OURS_STRUCTURED],
    },
  ];
}
