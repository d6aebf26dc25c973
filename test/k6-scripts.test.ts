/**
 * The k6 scenarios in load-tests/k6 cannot run here (there is no k6
 * binary), so what can be checked is checked: they type-check against
 * @types/k6 with no Node types, and nothing they import at run time is a
 * Node module. Their Socket.IO framing is exercised against a live relay
 * in load-socketio-framing.test.ts.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ROOT } from "./support/service-process.ts";

const run = promisify(execFile);
const K6_DIR = join(ROOT, "load-tests/k6");
const SCENARIOS = ["viewers", "many-builds", "storm", "soak"];

/** Module specifiers of the imports that survive type stripping. */
function runtimeImports(source: string): string[] {
  const specifiers: string[] = [];
  const pattern =
    /^\s*(?:import|export)\s+(?!type\s)(?:[^"';]*?\sfrom\s+)?["']([^"']+)["']/gm;
  for (const match of source.matchAll(pattern)) specifiers.push(match[1]!);
  return specifiers;
}

/** Every file a script reaches at run time, and every bare module named. */
async function reach(entry: string) {
  const files = new Set<string>();
  const modules = new Set<string>();
  const queue = [entry];

  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);

    const source = await readFile(file, "utf8");
    for (const specifier of runtimeImports(source)) {
      if (specifier.startsWith(".")) {
        queue.push(join(dirname(file), specifier));
      } else {
        modules.add(specifier);
      }
    }
  }
  return { files: [...files].map((f) => relative(ROOT, f)), modules };
}

describe("k6 scenarios", () => {
  it("type-check against @types/k6, without Node's types", async () => {
    const tsc = join(ROOT, "node_modules/.bin/tsc");
    const result = await run(tsc, ["-p", K6_DIR], { cwd: ROOT }).then(
      () => "",
      (err: { stdout: string }) => err.stdout,
    );
    expect(result).toBe("");
  });

  it.each(SCENARIOS)(
    "%s reaches only k6 modules and runtime-free files",
    async (scenario) => {
      const { files, modules } = await reach(join(K6_DIR, `${scenario}.ts`));

      for (const name of modules) expect(name, scenario).toMatch(/^k6(\/|$)/);
      expect(files).toContain("load-tests/socketio-framing.ts");
      for (const file of files) {
        expect(file, scenario).toMatch(/^load-tests\/(k6\/)?[\w-]+\.ts$/);
      }
    },
  );

  it.each(SCENARIOS)("%s exports its options", async (scenario) => {
    const source = await readFile(join(K6_DIR, `${scenario}.ts`), "utf8");
    expect(source).toMatch(/^export const options: Options = \{/m);
  });
});
