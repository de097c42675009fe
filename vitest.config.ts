import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The reliability suite (faults, load, fuzzing, several instances) has its own command: npm run test:reliability.
    exclude: ['**/node_modules/**', 'test/reliability/**'],
    // End-to-end files start a server and a database in their hooks; on a busy two-core machine that can take more than the default 10 s.
    hookTimeout: 60_000,
  },
});
