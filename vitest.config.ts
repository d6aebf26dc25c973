import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Test files spawn real Valkey servers and relay processes; on two cores
    // running them all at once makes timings meaningless.
    fileParallelism: false,
    pool: "forks",
  },
});
