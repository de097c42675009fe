import { parseArgs } from 'node:util';
import { latencyProfiles, startFakeOpenAI } from './fake-openai-server.js';

/**
 * Runs the fake OpenAI-compatible server on its own, to try callme without an
 * OpenAI account: `npm run fake-openai -- --port 8100`, then start callme with
 * OPENAI_API_KEY=fake OPENAI_BASE_URL=http://127.0.0.1:8100/v1. It answers
 * with canned replies and synthetic speech; it is never used unless pointed at.
 */
const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8100' },
    profile: { type: 'string', default: 'zero' },
  },
});
const profile = latencyProfiles[values.profile as keyof typeof latencyProfiles];
if (!profile) {
  console.error(`--profile must be one of ${Object.keys(latencyProfiles).join(', ')}`);
  process.exit(2);
}
const fake = await startFakeOpenAI({ profile, port: Number(values.port) });
console.log(`fake OpenAI-compatible server at ${fake.url} (latency profile: ${values.profile})`);
console.log(`start callme with: OPENAI_API_KEY=fake OPENAI_BASE_URL=${fake.url} npm start`);
const stop = () => void fake.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
