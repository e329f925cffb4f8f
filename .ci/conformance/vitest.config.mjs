// vitest configuration for the conformance run: one file, node environment,
// generous timeouts for the long-poll and TTL cases.
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["conformance.test.mjs"],
    environment: "node",
    testTimeout: 30000,
    hookTimeout: 30000,
  },
})
