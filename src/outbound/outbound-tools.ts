import type { CallToolkit } from '../assistant/call-tool.js';
import type { OutboundDialer } from './outbound-dialer.js';

/** Calls remembered per instance; whether a call was placed by this server never changes. */
const rememberedCalls = 2_000;

/**
 * No tools of its own: on calls this server placed, it tells the model why
 * it called (the purpose and its details). The answer is remembered per call,
 * so an inbound call's turns cost one lookup, not one per turn.
 */
export function outboundContext(dialer: OutboundDialer): CallToolkit {
  const remembered = new Map<string, string | null>();
  return {
    tools: () => [],
    async instructions(context) {
      if (remembered.has(context.callId)) return remembered.get(context.callId) ?? undefined;
      const text = (await dialer.instructions(context.callId)) ?? null;
      if (remembered.size >= rememberedCalls) remembered.delete(remembered.keys().next().value!);
      remembered.set(context.callId, text);
      return text ?? undefined;
    },
  };
}
