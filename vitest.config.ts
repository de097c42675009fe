import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The reliability suite (faults, load, fuzzing, several instances) has its own command: npm run test:reliability.
    exclude: ['**/node_modules/**', 'test/reliability/**'],
  },
});
