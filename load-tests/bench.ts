/**
 * `npm run bench`: runs the benchmark (load-tests/bench/), prints the
 * tables and the targets, and writes the results as JSON under
 * `bench-results/`. Exits 1 when any run lost or duplicated a line, lost a
 * viewer, or disagreed with the relays' own counts; never for a speed.
 *
 *     npm run bench                  # the full benchmark, about 15 minutes
 *     npm run bench -- --quick       # the small version CI runs, under a minute
 *     npm run bench -- --only fanout-1000,idle --nodes 3
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BenchError, BenchErrorCode } from "./bench/bench-errors.ts";
import { renderReport } from "./bench/bench-report.ts";
import { runBench } from "./bench/bench-runner.ts";
import { runProblems } from "./bench/run-result.ts";
import { ROOT } from "./bench/server-process.ts";

const USAGE = `Usage: npm run bench -- [options]

  --quick               the small version (CI); checks loss and counts, not speed
  --nodes <n>           relay processes (and baseline and floor nodes), default 2
  --only <names>        comma-separated scenarios, such as fanout-1000,idle
  --contenders <names>  comma-separated contenders, such as ours-structured,baseline
  --duration-s <s>      every load scenario publishes this long (trial runs)
  --out <dir>           where the JSON goes, default bench-results/
  --logs <dir>          keep every server's output there, one file per process
  --relay-env <list>    variables for our relays, such as BATCH_WINDOW_MS=10,LOG_LEVEL=warn
`;

function readFlags() {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      nodes: { type: "string", default: "2" },
      only: { type: "string", default: "" },
      contenders: { type: "string", default: "" },
      "duration-s": { type: "string" },
      logs: { type: "string" },
      "relay-env": { type: "string", default: "" },
      out: { type: "string", default: join(ROOT, "bench-results") },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }

  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 8) {
    throw new BenchError(
      BenchErrorCode.BAD_FLAG,
      `--nodes=${values.nodes}: must be a whole number from 1 to 8`,
    );
  }
  const durationS =
    values["duration-s"] === undefined
      ? undefined
      : Number(values["duration-s"]);
  if (durationS !== undefined && !(durationS >= 1 && durationS <= 3600)) {
    throw new BenchError(
      BenchErrorCode.BAD_FLAG,
      `--duration-s=${values["duration-s"]}: must be a number from 1 to 3600`,
    );
  }
  const list = (text: string): string[] =>
    text.split(",").filter((name) => name !== "");
  return {
    quick: values.quick,
    nodes,
    only: list(values.only),
    contenders: list(values.contenders),
    durationMs: durationS === undefined ? undefined : durationS * 1000,
    out: values.out,
    logs: values.logs,
    relayEnv: Object.fromEntries(
      list(values["relay-env"]).map((pair) => {
        const at = pair.indexOf("=");
        if (at < 1) {
          throw new BenchError(
            BenchErrorCode.BAD_FLAG,
            `--relay-env: ${pair} is not NAME=value`,
          );
        }
        return [pair.slice(0, at), pair.slice(at + 1)];
      }),
    ),
  };
}

let flags;
try {
  flags = readFlags();
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}

if (flags.logs !== undefined) mkdirSync(flags.logs, { recursive: true });
const report = await runBench({
  quick: flags.quick,
  nodes: flags.nodes,
  only: flags.only,
  contenders: flags.contenders,
  durationMs: flags.durationMs,
  logDir: flags.logs,
  relayEnv: flags.relayEnv,
  log: (message) => process.stderr.write(`${message}\n`),
});

mkdirSync(flags.out, { recursive: true });
const name = `bench-${report.quick ? "quick-" : ""}${report.startedAt.replace(/[:.]/g, "-")}.json`;
const path = join(flags.out, name);
writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);

process.stdout.write(`${renderReport(report)}\nResults: ${path}\n`);
const failed = report.results.some((r) => runProblems(r).length > 0);
process.exit(failed ? 1 : 0);
