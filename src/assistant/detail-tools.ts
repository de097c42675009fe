import { describeDetails, missingDetails } from './assistant.js';
import type { CallTool, CallToolkit } from './call-tool.js';
import type { AssistantProfile } from './profile.js';

/** The tools every assistant has: `save_details` (the profile's details) and `end_call`. */
export const detailTools: CallToolkit = {
  tools(profile) {
    return [saveDetailsTool(profile), endCallTool];
  },
};

function saveDetailsTool(profile: AssistantProfile): CallTool {
  const properties = Object.fromEntries(
    profile.details.map((detail) => [
      detail.name,
      { type: detail.type === 'integer' ? 'integer' : 'string', description: detail.description },
    ]),
  );
  return {
    definition: {
      name: 'save_details',
      description: 'Save details the caller has given. Call it as soon as you have any of them; later calls add to or correct earlier ones.',
      parameters: { type: 'object', properties, additionalProperties: false },
    },
    async run(args, context) {
      if (typeof args !== 'object' || args === null || Array.isArray(args)) return { result: 'error: expected an object of details' };
      const saved: Record<string, unknown> = {};
      for (const detail of profile.details) {
        const value = (args as Record<string, unknown>)[detail.name];
        if (value === undefined || value === null || String(value).trim() === '') continue;
        if (detail.type === 'integer') {
          const number = typeof value === 'number' ? value : Number.parseInt(String(value), 10);
          if (Number.isInteger(number) && number > 0) saved[detail.name] = number;
        } else saved[detail.name] = String(value).trim().slice(0, 200);
      }
      const merged = { ...context.details, ...saved };
      const missing = missingDetails(profile, merged).map((detail) => detail.name);
      const result = missing.length
        ? `saved. Still missing: ${missing.join(', ')}.`
        : `saved. All details collected: ${describeDetails(profile, merged)}.`;
      return { result, saved };
    },
  };
}

const endCallTool: CallTool = {
  definition: {
    name: 'end_call',
    description: 'Hang up after your goodbye. Put the goodbye in your reply text in the same message.',
    parameters: { type: 'object', properties: { reason: { type: 'string' } }, additionalProperties: false },
  },
  async run(args) {
    const reason = typeof args === 'object' && args !== null ? (args as { reason?: unknown }).reason : undefined;
    return {
      result: 'ok, the call ends after your goodbye',
      action: { type: 'end-call', reason: typeof reason === 'string' ? reason.slice(0, 200) : undefined },
    };
  },
};
