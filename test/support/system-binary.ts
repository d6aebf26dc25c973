/**
 * Finds programs from Debian packages (haproxy, prometheus, promtool) that
 * the deployment tests run. A missing program skips those tests on a
 * developer's machine, with a message saying what to install; under CI
 * (`CI` set) it fails them instead, so a CI image without the package can
 * never pass by skipping.
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

// Debian installs haproxy in /usr/sbin, which a non-root PATH may lack.
const EXTRA_DIRS = ["/usr/sbin", "/usr/local/sbin"];

/** The absolute path of an executable, or undefined when there is none. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), ...EXTRA_DIRS];

  for (const dir of dirs) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next directory.
    }
  }
  return undefined;
}

export interface RequiredBinary {
  name: string;
  debianPackage: string;
  /** True when the tests that need it should be skipped. */
  skip: boolean;
  /** The program's path; throws, naming the package, when it is missing. */
  path(): string;
}

/**
 * Looks a program up once per test file. Outside CI a missing program
 * prints why the tests are skipped; under CI every test that calls `path()`
 * fails instead.
 */
export function lookUpBinary(
  name: string,
  debianPackage: string,
): RequiredBinary {
  const found = findBinary(name);
  const skip = found === undefined && !process.env.CI;

  if (skip) {
    console.warn(
      `skipping tests that need ${name}: not found on PATH; ` +
        `install it with: apt-get install -y ${debianPackage}`,
    );
  }

  return {
    name,
    debianPackage,
    skip,
    path() {
      if (found === undefined) {
        throw new Error(
          `${name} is not installed; run: apt-get install -y ${debianPackage}`,
        );
      }
      return found;
    },
  };
}
