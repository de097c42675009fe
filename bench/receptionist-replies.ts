import type { FakeChatReply, FakeChatRequest } from '../src/testing/fake-openai-server.js';
import { hashString, mulberry32 } from './stats.js';

/**
 * What the bench's fake model says: a Bella Vista receptionist's reply of two
 * or three sentences (150–250 characters, the length a phone assistant's
 * replies have), chosen by a seed made of the caller's number and the turn, so
 * every run says the same things. One turn in ten also calls `save_details`.
 * No reply ends the call: every call lasts as many turns as the bench asks.
 */

const days = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const times = ['half past six', 'seven', 'a quarter past seven', 'half past seven', 'eight', 'half past eight', 'one', 'noon'];
const names = ['Anna', 'Mr Rossi', 'Maria', 'David', 'Ms Novak', 'James', 'Elena', 'Tom'];
const dishes = ['lobster linguine', 'wood-fired Diavola', 'fresh carbonara', 'tiramisu', 'Margherita'];
const parties = ['two', 'three', 'four', 'five', 'six', 'eight'];

const openers = [
  'Of course.',
  'Certainly, {name}.',
  'Thank you, {name}, that helps.',
  'Let me check that for you.',
  'Good news, we have a table for {party} on {day} at {time}.',
  "I'm sorry, {time} on {day} is fully booked, but {time2} is still free.",
  'Yes, we are open on {day} from twelve until half past ten.',
  'Great, a table for {party} on {day} works well.',
  'Happy to help with that.',
  'Sure, I have noted {party} guests for {day}.',
];
const middles = [
  'Our {dish} is very popular this week, and we also have vegetarian and gluten-free options.',
  'There is free parking behind the restaurant, and high chairs are available for children.',
  'The last seating is at half past nine, so {time} leaves you plenty of time.',
  'We are at 12 Harbour Street, a short walk from the harbour.',
  'For groups larger than twelve we ask you to send us an email instead.',
  'I can put a note on the booking if anyone has allergies.',
  'The kitchen can make a vegan pizza on request, and the {dish} is a favourite.',
];
const closers = [
  'May I have a name for the reservation, please?',
  'What time would suit you best?',
  'Is there anything else I can help you with today?',
  'Would you like me to confirm the booking by text message?',
  'How many guests should I put down?',
  'Shall I go ahead and reserve it for you?',
];

/** What simulated callers say, one line a turn. */
export const callerLines = [
  "Hi, I'd like to book a table for four on Friday evening.",
  'Do you have anything around half past seven?',
  'It will be under the name Rossi.',
  'Is there parking near the restaurant?',
  'Do you have vegetarian options?',
  'Can we bring a child? We would need a high chair.',
  'Actually, could we make it five people?',
  'What time do you close on Sundays?',
  "That's great, thank you.",
  'Could you confirm the booking by text?',
];

/** The caller number the bench gives call `index`; the fake finds it in the system prompt. */
export function callerNumberFor(index: number): string {
  return `+1555${String(index % 10_000_000).padStart(7, '0')}`;
}

export function callerLineFor(callIndex: number, turn: number): string {
  return callerLines[(callIndex * 7 + turn) % callerLines.length];
}

/** The call (by its caller number) and the caller turn a chat request belongs to. */
export function chatRequestOwner(messages: FakeChatRequest['messages']): { callerNumber?: string; turn: number } {
  const system = messages.find((message) => message.role === 'system');
  const text = typeof system?.content === 'string' ? system.content : '';
  const callerNumber = /caller's number is (\+\d+)/.exec(text)?.[1];
  return { callerNumber, turn: messages.filter((message) => message.role === 'user').length };
}

export function receptionistReply(request: FakeChatRequest): FakeChatReply {
  // A tool result gets a short acknowledgement (not reached while text comes with the tool call).
  if (request.messages.at(-1)?.role === 'tool') return { text: 'Done. Is there anything else I can help you with today?' };
  const { callerNumber, turn } = chatRequestOwner(request.messages);
  const random = mulberry32(hashString(`${callerNumber ?? 'unknown'}#${turn}`));
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
  const fill = (template: string) =>
    template
      .replace('{name}', pick(names))
      .replace('{day}', pick(days))
      .replace('{time2}', pick(times))
      .replace('{time}', pick(times))
      .replace('{dish}', pick(dishes))
      .replace('{party}', pick(parties));

  let text = '';
  for (let attempt = 0; attempt < 50; attempt++) {
    const shape = random();
    const sentences = shape < 0.6 ? [pick(openers), pick(middles), pick(closers)] : shape < 0.8 ? [pick(openers), pick(middles)] : [pick(middles), pick(closers)];
    text = sentences.map(fill).join(' ');
    if (text.length >= 150 && text.length <= 250) break;
  }
  const saveDetails = request.tools.some((tool) => tool.name === 'save_details') && random() < 0.1;
  if (!saveDetails) return { text };
  return { text, toolCalls: [{ name: 'save_details', arguments: { name: pick(names), party_size: 2 + Math.floor(random() * 6) } }] };
}
