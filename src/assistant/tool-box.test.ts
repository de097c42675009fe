import { describe, expect, it } from 'vitest';
import { detailTools } from './detail-tools.js';
import { profileSchema } from './profile.js';
import { ToolBox } from './tool-box.js';
import type { CallToolkit } from './call-tool.js';

const profile = profileSchema.parse({
  id: 'test',
  name: 'Test',
  language: 'en-US',
  greeting: 'Hello',
  systemPrompt: 'Be brief.',
  details: [
    { name: 'name', description: 'the name', question: 'Your name?' },
    { name: 'party_size', description: 'people', question: 'How many?', type: 'integer' },
  ],
  phrases: { repeat: 'r', unclear: 'u', apology: 'a', noInputGoodbye: 'n', goodbye: 'g', confirm: 'c {details}' },
});

const failing: CallToolkit = {
  tools: () => [
    {
      definition: { name: 'explode', description: 'fails', parameters: { type: 'object', properties: {} } },
      run: async () => {
        throw new Error('the table is on fire');
      },
    },
  ],
  instructions: async ({ callerText }) => `The caller said ${callerText.length} characters.`,
};

const context = () => ({ profile, callId: 'CA1', language: 'en-US', details: {}, abortSignal: new AbortController().signal });

describe('ToolBox', () => {
  const box = new ToolBox([detailTools, failing]);

  it('offers every toolkit’s tools', () => {
    expect(box.definitions(profile).map((tool) => tool.name)).toEqual(['save_details', 'end_call', 'explode']);
  });

  it('saves valid details and reports what is missing', async () => {
    const outcome = await box.run({ name: 'save_details', arguments: '{"party_size":"4","unknown":"x"}' }, context());
    expect(outcome.saved).toEqual({ party_size: 4 });
    expect(outcome.result).toBe('saved. Still missing: name.');
  });

  it('turns end_call into an end-call action', async () => {
    const outcome = await box.run({ name: 'end_call', arguments: '{"reason":"done"}' }, context());
    expect(outcome.action).toEqual({ type: 'end-call', reason: 'done' });
  });

  it('reports bad JSON, unknown tools and failing tools to the model instead of throwing', async () => {
    expect((await box.run({ name: 'save_details', arguments: '{oops' }, context())).result).toBe('error: arguments were not valid JSON');
    expect((await box.run({ name: 'nope', arguments: '' }, context())).result).toBe('error: no tool named nope');
    expect((await box.run({ name: 'explode', arguments: '{}' }, context())).result).toBe('error: the table is on fire');
  });

  it('joins the toolkits’ instructions', async () => {
    expect(await box.instructions({ ...context(), callerText: 'hello' })).toBe('The caller said 5 characters.');
  });
});
