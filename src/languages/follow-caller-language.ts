import type { AssistantProfile } from '../assistant/profile.js';
import type { CallRepository, CallRow } from '../storage/call-repository.js';
import { languageToFollow } from './detect-language.js';
import { allowedLanguages } from './profile-in-language.js';

/**
 * Switches the call to the language the caller's words are in, when the
 * profile allows it: stored on the call (so every instance and the next
 * webhook see it) and set on `call` for the turn about to run.
 */
export async function followCallerLanguage(
  repository: Pick<CallRepository, 'updateCallState'>,
  profile: AssistantProfile,
  call: CallRow,
  text: string,
): Promise<string | undefined> {
  const allowed = allowedLanguages(profile);
  if (allowed.length < 2) return undefined;
  const language = languageToFollow(text, call.language, allowed);
  if (!language) return undefined;
  await repository.updateCallState(call.call_id, { language });
  call.language = language;
  return language;
}
