import type { AssistantProfile } from '../assistant/profile.js';
import { html } from './html.js';
import { layout, type PageOptions } from './layout.js';

/**
 * Talking to an assistant by text or an uploaded recording, through
 * `/mvp/text` and `/mvp/audio` (talk.js): each conversation is stored as a
 * call and appears in the calls list.
 */
export function talkPage(
  options: Pick<PageOptions, 'principal' | 'csrfToken'> & { profiles: AssistantProfile[]; selected?: string; canTranscribe: boolean },
): string {
  const selected = options.profiles.some((profile) => profile.id === options.selected) ? options.selected : options.profiles[0]?.id;
  const body = html`<div class="page-head">
  <h1>Talk to an assistant</h1>
  <p class="muted">Type, or upload a recording, and the assistant answers as it would on the phone, with the same knowledge and tools. Each conversation is stored as a call (direction <code>staff-test</code>).</p>
</div>
<section id="talk" class="stack" data-csrf="${options.csrfToken ?? ''}">
  <form id="talk-start" class="card filters">
    <label class="grow">Assistant
      <select name="profile" data-testid="talk-profile">
        ${options.profiles.map((profile) => html`<option value="${profile.id}"${profile.id === selected ? html` selected` : html``}>${profile.name} (${profile.id})</option>`)}
      </select>
    </label>
    <div class="actions"><button type="submit" class="button">New conversation</button></div>
  </form>
  <div class="card">
    <ol class="conversation" id="talk-lines" aria-live="polite" data-testid="talk-lines"></ol>
    <p class="muted small" id="talk-status" data-testid="talk-status">Start a conversation, or just type: the assistant greets you first.</p>
  </div>
  <form id="talk-text" class="card filters">
    <label class="grow">You say
      <input name="text" type="text" maxlength="2000" autocomplete="off" required placeholder="Do you have anything with truffles?" data-testid="talk-input">
    </label>
    <div class="actions"><button type="submit" class="button">Send</button></div>
  </form>
  <form id="talk-audio" class="card filters">
    <label class="grow">Or upload what you say (WAV, MP3, M4A, OGG, WebM)
      <input name="file" type="file" accept="audio/*" required data-testid="talk-file"${options.canTranscribe ? html`` : html` disabled`}>
    </label>
    <div class="actions"><button type="submit" class="button"${options.canTranscribe ? html`` : html` disabled title="Needs OPENAI_API_KEY"`}>Send recording</button></div>
  </form>
  <div class="filters">
    <button type="button" id="talk-end" class="button button-ghost" disabled>End conversation</button>
    <a id="talk-call" hidden data-testid="talk-call">Open this conversation in the calls list</a>
  </div>
  <p class="alert alert-bad" id="talk-error" role="alert" hidden></p>
</section>
<template id="talk-line">
  <li class="line"><div class="meta"><strong class="who"></strong> <span class="chip language" hidden></span></div><div class="bubble"></div></li>
</template>`;
  return layout({ title: 'Talk', section: 'talk', principal: options.principal, csrfToken: options.csrfToken, body, scripts: ['talk.js'] });
}
