/**
 * Lines shaped like a real front-end build's output: npm install chatter,
 * webpack and tsc output with ANSI colours, stderr warnings, and now and
 * then a line several KB long (a minified stack trace, a stats dump).
 *
 * Deterministic for a given seed, so two runs (or two systems under test)
 * see the same text. Plain JavaScript with no dependencies, so a build
 * container can run it with nothing but Node; log-lines.d.mts types it.
 */

const RESET = "\u001b[0m";
const BOLD = "\u001b[1m";
const RED = "\u001b[31m";
const GREEN = "\u001b[32m";
const YELLOW = "\u001b[33m";
const CYAN = "\u001b[36m";
const GREY = "\u001b[90m";
const BRIGHT_RED = "\u001b[91m";
const BRIGHT_YELLOW = "\u001b[93m";
const BRIGHT_CYAN = "\u001b[96m";

const PACKAGES = [
  "react",
  "react-dom",
  "webpack",
  "typescript",
  "@babel/core",
  "@babel/preset-env",
  "postcss",
  "tailwindcss",
  "eslint",
  "lodash",
  "date-fns",
  "zod",
  "@types/node",
  "terser",
  "browserslist",
  "caniuse-lite",
  "esbuild",
  "rollup",
  "semver",
  "glob",
];

const DEPRECATED = [
  "inflight@1.0.6: This module is not supported, and leaks memory. Do not use it.",
  "rimraf@3.0.2: Rimraf versions prior to v4 are no longer supported",
  "glob@7.2.3: Glob versions prior to v9 are no longer supported",
  "stable@0.1.8: Modern JS already guarantees Array#sort() is a stable sort",
];

const SOURCES = [
  "src/index.tsx",
  "src/App.tsx",
  "src/api/client.ts",
  "src/components/Header.tsx",
  "src/components/BuildLog.tsx",
  "src/hooks/useLogStream.ts",
  "src/pages/dashboard/index.tsx",
  "src/styles/main.css",
  "src/utils/format-duration.ts",
];

const TS_ERRORS = [
  [
    "TS2345",
    "Argument of type 'string' is not assignable to parameter of type 'number'.",
  ],
  ["TS2322", "Type 'undefined' is not assignable to type 'BuildStatus'."],
  ["TS7006", "Parameter 'event' implicitly has an 'any' type."],
  ["TS2532", "Object is possibly 'undefined'."],
  ["TS6133", "'props' is declared but its value is never read."],
];

const STDERR_WARNINGS = [
  "Browserslist: caniuse-lite is outdated. Please run: npx update-browserslist-db@latest",
  "(node:{pid}) [DEP0040] DeprecationWarning: The `punycode` module is deprecated. Please use a userland alternative instead.",
  "(Use `node --trace-deprecation ...` to show where the warning was created)",
  "warning: in the working copy of 'package-lock.json', LF will be replaced by CRLF the next time Git touches it",
  "npm WARN config production Use `--omit=dev` instead.",
];

/**
 * A seeded source of build-output lines.
 *
 * @param {{ seed?: number, longLineEvery?: number }} [options]
 */
export function createLineSource(options = {}) {
  const random = mulberry32(options.seed ?? 1);
  const longLineEvery = options.longLineEvery ?? 250;
  let count = 0;

  const pick = (list) => list[Math.floor(random() * list.length)];
  const int = (min, max) => min + Math.floor(random() * (max - min + 1));
  const hash = () =>
    Math.floor(random() * 0xffffffff)
      .toString(16)
      .padStart(8, "0");
  const kib = () => `${(random() * 400 + 0.2).toFixed(2)} KiB`;

  const shapes = [
    // npm install
    [
      6,
      () => ({
        stream: "stdout",
        text: `npm http fetch GET 200 https://registry.npmjs.org/${pick(PACKAGES)} ${int(8, 240)}ms (cache ${random() < 0.7 ? "hit" : "miss"})`,
      }),
    ],
    [
      2,
      () => ({
        stream: "stderr",
        text: `npm WARN deprecated ${pick(DEPRECATED)}`,
      }),
    ],
    [
      1,
      () => ({
        stream: "stdout",
        text: `added ${int(200, 1800)} packages, and audited ${int(200, 1800)} packages in ${int(3, 60)}s`,
      }),
    ],
    [
      1,
      () => ({
        stream: "stdout",
        text: `${int(20, 200)} packages are looking for funding`,
      }),
    ],
    // webpack
    [
      8,
      () => ({
        stream: "stdout",
        text: `  ${pick(SOURCES)} ${kib()} ${BOLD}${GREEN}[built]${RESET} ${BOLD}${GREEN}[code generated]${RESET}`,
      }),
    ],
    [
      3,
      () => ({
        stream: "stdout",
        text: `asset ${BOLD}${GREEN}main.${hash()}.js${RESET} ${BOLD}${YELLOW}${(random() * 2).toFixed(2)} MiB${RESET} ${BOLD}${GREEN}[emitted]${RESET} ${BOLD}${GREEN}[immutable]${RESET} ${BOLD}${GREEN}[minimized]${RESET} (name: main) 2 related assets`,
      }),
    ],
    [
      1,
      () => ({
        stream: "stdout",
        text: `webpack 5.91.0 compiled ${BOLD}${YELLOW}with ${int(1, 4)} warnings${RESET} in ${int(900, 30000)} ms`,
      }),
    ],
    [
      2,
      () => ({
        stream: "stdout",
        text: `${GREY}<s>${RESET} ${CYAN}[webpack.Progress]${RESET} ${int(10, 99)}% building ${int(100, 900)}/${int(900, 1200)} entries ${int(1000, 9000)}/${int(9000, 12000)} dependencies ${int(0, 40)}/${int(40, 90)} modules ${int(0, 40)} active`,
      }),
    ],
    // tsc
    [
      2,
      () => {
        const [code, message] = pick(TS_ERRORS);
        return {
          stream: "stdout",
          text: `${BRIGHT_CYAN}${pick(SOURCES)}${RESET}:${BRIGHT_YELLOW}${int(1, 400)}${RESET}:${BRIGHT_YELLOW}${int(1, 80)}${RESET} - ${BRIGHT_RED}error${RESET}${GREY} ${code}: ${RESET}${message}`,
        };
      },
    ],
    [
      1,
      () => ({
        stream: "stdout",
        text: `Found ${int(1, 30)} errors in ${int(1, 9)} files.`,
      }),
    ],
    // stderr warnings
    [
      2,
      () => ({
        stream: "stderr",
        text: pick(STDERR_WARNINGS).replace("{pid}", String(int(100, 99999))),
      }),
    ],
    [
      1,
      () => ({
        stream: "stderr",
        text: `${YELLOW}WARNING${RESET} in ${pick(SOURCES)} ${int(1, 300)}:${int(1, 60)}-${int(60, 90)} export 'default' (imported as 'Chart') was not found`,
      }),
    ],
    [
      1,
      () => ({
        stream: "stderr",
        text: `${RED}ERROR${RESET} in ./${pick(SOURCES)} Module not found: Error: Can't resolve './missing' in '/app/src'`,
      }),
    ],
  ];
  const total = shapes.reduce((sum, [weight]) => sum + weight, 0);

  const longLine = () => {
    // A minified stack frame list or a stats dump: 2-8 KB on one line.
    const parts = [];
    const length = int(2048, 8192);
    let size = 0;
    while (size < length) {
      const part = `at ${pick(["r", "t", "e", "n", "o"])}${int(0, 999)} (webpack:///./node_modules/${pick(PACKAGES)}/dist/index.min.js:1:${int(1000, 99999)})`;
      parts.push(part);
      size += part.length + 1;
    }
    return {
      stream: random() < 0.5 ? "stderr" : "stdout",
      text: parts.join(" "),
    };
  };

  return {
    /** The next line: `{ stream: "stdout" | "stderr", text }`. */
    next() {
      count += 1;
      if (longLineEvery > 0 && count % longLineEvery === 0) return longLine();

      let roll = random() * total;
      for (const [weight, make] of shapes) {
        roll -= weight;
        if (roll < 0) return make();
      }
      return shapes[0][1]();
    },
  };
}

/** A small, fast, seeded PRNG (public domain), in [0, 1). */
function mulberry32(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
