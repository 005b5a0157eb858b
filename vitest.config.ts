import { defineConfig } from 'vitest/config';

// Unit tests run in Node: the engine and API layers are DOM-free by design.
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
  },
});
