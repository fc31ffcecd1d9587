import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // 2-core machines: integration tests run real servers and sharp; two files at a time keeps them honest.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: "default",
          include: ["test/**/*.test.ts", "web/src/**/*.test.{ts,tsx}"],
          exclude: [...configDefaults.exclude, "test/container/**"],
        },
      },
      {
        // The container smoke builds an image and puts both cores under load for seconds: it runs alone, after
        // every other file, so neither it nor the timing-sensitive integration tests measure the other.
        extends: true,
        test: { name: "container", include: ["test/container/**/*.test.ts"], sequence: { groupOrder: 1 } },
      },
    ],
  },
});
