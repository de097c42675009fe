import type { CallTool, CallToolkit } from '../assistant/call-tool.js';
import type { AssistantProfile } from '../assistant/profile.js';
import { baseLanguage, languageName } from './language-catalog.js';
import { allowedLanguages } from './profile-in-language.js';

/**
 * Languages for the model: every turn is told which language to reply in and
 * which the line offers, and `switch_language` moves the call (its
 * `<Gather>` language, voice and phrases) when the caller asks for another.
 * Only profiles that allow more than one language take part.
 */
export const languageTools: CallToolkit = {
  tools(profile) {
    return allowedLanguages(profile).length > 1 ? [switchLanguageTool(profile)] : [];
  },

  async instructions({ profile, language }) {
    const allowed = allowedLanguages(profile);
    if (allowed.length < 2) return undefined;
    const current = languageName(language);
    const offered = allowed.map(languageName).join(', ');
    return [
      `The caller speaks ${current}: reply in ${current}.`,
      `This line serves callers in ${offered}. When the caller speaks another of these languages or asks for one, call switch_language and reply in that language.`,
      `For any other language, say in ${current} which languages you speak.`,
    ].join(' ');
  },
};

function switchLanguageTool(profile: AssistantProfile): CallTool {
  const allowed = allowedLanguages(profile);
  return {
    definition: {
      name: 'switch_language',
      description: `Switch the call to another language the line serves (${allowed.map((tag) => `${tag} ${languageName(tag)}`).join(', ')}). Reply in that language in the same message.`,
      parameters: {
        type: 'object',
        properties: { language: { type: 'string', enum: allowed, description: 'The language tag' } },
        required: ['language'],
        additionalProperties: false,
      },
    },
    async run(args, context) {
      const asked = typeof args === 'object' && args !== null ? (args as { language?: unknown }).language : undefined;
      const tag = typeof asked === 'string' ? matchLanguage(asked, allowed) : undefined;
      if (!tag) return { result: `error: this line speaks only ${allowed.map(languageName).join(', ')}` };
      if (tag === context.language) return { result: `the call is already in ${languageName(tag)}` };
      return { result: `switched: reply in ${languageName(tag)} from now on`, action: { type: 'switch-language', language: tag } };
    },
  };
}

/** `ru-RU`, `ru` or `Russian` → `ru-RU` when allowed. */
function matchLanguage(asked: string, allowed: string[]): string | undefined {
  const wanted = asked.trim();
  return (
    allowed.find((tag) => tag.toLowerCase() === wanted.toLowerCase()) ??
    allowed.find((tag) => baseLanguage(tag) === wanted.slice(0, 2).toLowerCase() && wanted.length <= 3) ??
    allowed.find((tag) => languageName(tag).toLowerCase() === wanted.toLowerCase())
  );
}
