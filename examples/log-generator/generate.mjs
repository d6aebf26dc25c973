#!/usr/bin/env node
/**
 * Prints build-log lines at a set rate, to stand in for a busy build in
 * load tests. Run it as a build's command (no install step needed):
 *
 *     node generate.mjs --rate 2000 --duration 60
 *
 * Lines go to stdout, and warnings to stderr, in the shapes of
 * log-lines.mjs. The rate is kept against the clock: a stall (a slow pipe)
 * is caught up in bursts, so `--lines` at `--rate` takes the time it says.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { createLineSource } from "./log-lines.mjs";

const USAGE = `Usage: node generate.mjs [options]

  --rate <n>            lines per second (default 1000)
  --lines <n>           lines to print (default 10000; ignored with --duration)
  --duration <s>        print for this many seconds instead
  --start-delay-ms <n>  wait this long before the first line (default 0)
  --seed <n>            same seed, same lines (default 1)
  --long-line-every <n> one line in n is 2-8 KB long; 0 never (default 250)
  --exit-code <n>       exit with this status at the end (default 0)
`;

const TICK_MS = 10;

function readOptions() {
  const { values } = parseArgs({
    options: {
      rate: { type: "string", default: "1000" },
      lines: { type: "string", default: "10000" },
      duration: { type: "string" },
      "start-delay-ms": { type: "string", default: "0" },
      seed: { type: "string", default: "1" },
      "long-line-every": { type: "string", default: "250" },
      "exit-code": { type: "string", default: "0" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }

  const number = (name, min) => {
    const value = Number(values[name]);
    if (!Number.isFinite(value) || value < min) {
      process.stderr.write(
        `generate: --${name} must be a number of at least ${min}\n${USAGE}`,
      );
      process.exit(2);
    }
    return value;
  };

  const rate = number("rate", 1);
  const lines =
    values.duration === undefined
      ? Math.floor(number("lines", 0))
      : Math.floor(number("duration", 0) * rate);
  return {
    rate,
    lines,
    startDelayMs: number("start-delay-ms", 0),
    seed: Math.floor(number("seed", 0)),
    longLineEvery: Math.floor(number("long-line-every", 0)),
    exitCode: Math.floor(number("exit-code", 0)),
  };
}

function write(stream, text) {
  if (text === "") return Promise.resolve();
  if (stream.write(text)) return Promise.resolve();
  return new Promise((resolve) => stream.once("drain", resolve));
}

async function main() {
  const options = readOptions();
  const source = createLineSource({
    seed: options.seed,
    longLineEvery: options.longLineEvery,
  });

  await sleep(options.startDelayMs);
  const startedAt = performance.now();
  let printed = 0;

  while (printed < options.lines) {
    const elapsedMs = performance.now() - startedAt;
    const due = Math.min(
      options.lines,
      Math.floor((elapsedMs / 1000) * options.rate) + 1,
    );

    let out = "";
    let err = "";
    for (; printed < due; printed++) {
      const line = source.next();
      if (line.stream === "stderr") err += `${line.text}\n`;
      else out += `${line.text}\n`;
    }
    await Promise.all([write(process.stdout, out), write(process.stderr, err)]);

    if (printed < options.lines) {
      await sleep(TICK_MS);
    }
  }

  process.exitCode = options.exitCode;
}

await main();
