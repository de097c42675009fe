import type { CallTool, CallToolkit } from '../assistant/call-tool.js';
import type { TransferSettings } from '../assistant/telephony-settings.js';

/**
 * `transfer_to_human`: offered when the profile names a number to hand calls
 * to (webhook calls: the hand-off is a `<Dial>`). The model gives a summary
 * for the person taking over; the call then says its hand-off line and dials.
 */
export const transferTools: CallToolkit = {
  tools(profile) {
    return profile.transfer && profile.mode === 'webhook' ? [transferTool(profile.transfer)] : [];
  },
};

function transferTool(settings: TransferSettings): CallTool {
  return {
    definition: {
      name: 'transfer_to_human',
      description:
        'Put the caller through to a member of staff: when they ask for a person, or need something you cannot do. ' +
        'Put a short hand-off line in your reply text in the same message. If nobody answers, a message is taken.',
      parameters: {
        type: 'object',
        properties: {
          summary: { type: 'string', description: 'Two or three sentences for the person taking over: who is calling, what they want, what was already done.' },
        },
        required: ['summary'],
        additionalProperties: false,
      },
    },
    async run(args) {
      const summary = typeof args === 'object' && args !== null ? (args as { summary?: unknown }).summary : undefined;
      if (typeof summary !== 'string' || summary.trim() === '') return { result: 'error: give a summary of the call for the person taking over' };
      return {
        result: 'ok, the caller is put through after your reply',
        action: { type: 'transfer', to: settings.number, summary: summary.trim().slice(0, 1000) },
      };
    },
  };
}
