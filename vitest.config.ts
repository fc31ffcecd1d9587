import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "web/src/**/*.test.{ts,tsx}"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // 2-core machines: integration tests run real servers and sharp; two files at a time keeps them honest.
    maxWorkers: 2,
  },
});
