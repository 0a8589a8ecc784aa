import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'dservices/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    // Limits against hangs, not speed checks (those are in bench/): a fresh 2-core CI machine must
    // not fail a correct test for being slow. Tests and setups that start central, a node and miner
    // processes took up to 43 s here under load, too close to the 60 s these were. Longer ones say so.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests start real processes and bind ports: keep files apart.
    fileParallelism: false,
  },
});
