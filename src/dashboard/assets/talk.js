// Talks to an assistant through /mvp/text and /mvp/audio; the server keeps the conversation as a call.
(() => {
  const root = document.getElementById('talk');
  const csrf = root.dataset.csrf;
  const lines = document.getElementById('talk-lines');
  const status = document.getElementById('talk-status');
  const errorBox = document.getElementById('talk-error');
  const template = document.getElementById('talk-line');
  const startForm = document.getElementById('talk-start');
  const textForm = document.getElementById('talk-text');
  const audioForm = document.getElementById('talk-audio');
  const endButton = document.getElementById('talk-end');
  const callLink = document.getElementById('talk-call');
  const profileSelect = startForm.elements.profile;
  let sessionId;
  let busy = false;

  const addLine = (who, text, options = {}) => {
    const line = template.content.firstElementChild.cloneNode(true);
    line.classList.add(who === 'You' ? 'caller' : 'assistant');
    line.querySelector('.who').textContent = who;
    line.querySelector('.bubble').textContent = text;
    if (options.language) {
      const chip = line.querySelector('.language');
      chip.textContent = options.language;
      chip.hidden = false;
    }
    if (options.audioUrl) {
      const audio = document.createElement('audio');
      audio.controls = true;
      audio.preload = 'auto';
      audio.src = options.audioUrl;
      line.append(audio);
      // Browsers may refuse to play before the page was interacted with; the controls are there then.
      audio.play().catch(() => {});
    }
    lines.append(line);
    line.scrollIntoView({ block: 'nearest' });
  };

  const setBusy = (value, message) => {
    busy = value;
    for (const button of root.querySelectorAll('button')) button.disabled = value || (button === endButton && !sessionId);
    if (message) status.textContent = message;
  };

  const showError = (message) => {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  };

  const reset = () => {
    sessionId = undefined;
    lines.replaceChildren();
    callLink.hidden = true;
    textForm.elements.text.disabled = false;
    endButton.disabled = true;
  };

  const post = async (url, body, headers = {}) => {
    const response = await fetch(url, { method: 'POST', headers: { 'x-csrf-token': csrf, ...headers }, body, credentials: 'same-origin' });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer?.error?.message ?? `the server answered ${response.status}`);
    return answer;
  };

  const show = (answer) => {
    sessionId = answer.sessionId;
    if (answer.greeting !== undefined) addLine('Assistant', answer.greeting, { audioUrl: answer.reply === undefined ? answer.audioUrl : undefined });
    if (answer.reply !== undefined) addLine('Assistant', answer.reply, { audioUrl: answer.audioUrl, language: answer.language });
    callLink.href = `/dashboard/calls/${encodeURIComponent(answer.sessionId)}`;
    callLink.hidden = false;
    if (answer.ended) {
      textForm.elements.text.disabled = true;
      status.textContent = 'The assistant ended the conversation. Start a new one to talk again.';
    } else status.textContent = `Conversation ${answer.sessionId} · ${answer.language}`;
  };

  const run = async (message, work) => {
    if (busy) return;
    showError('');
    setBusy(true, message);
    try {
      await work();
    } catch (error) {
      showError(error.message);
      status.textContent = '';
    } finally {
      setBusy(false);
      endButton.disabled = !sessionId || textForm.elements.text.disabled;
    }
  };

  startForm.addEventListener('submit', (event) => {
    event.preventDefault();
    reset();
    run('Calling…', async () => show(await post('/mvp/text', JSON.stringify({ profile: profileSelect.value }), { 'content-type': 'application/json' })));
  });

  textForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const input = textForm.elements.text;
    const text = input.value.trim();
    if (!text) return;
    run('The assistant is answering…', async () => {
      const body = sessionId ? { sessionId, text } : { profile: profileSelect.value, text };
      const answer = await post('/mvp/text', JSON.stringify(body), { 'content-type': 'application/json' });
      input.value = '';
      if (answer.greeting !== undefined) {
        sessionId = answer.sessionId;
        addLine('Assistant', answer.greeting);
      }
      addLine('You', text);
      show({ ...answer, greeting: undefined });
    });
  });

  audioForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const file = audioForm.elements.file.files[0];
    if (!file) return;
    run('Transcribing and answering…', async () => {
      const form = new FormData();
      if (sessionId) form.append('sessionId', sessionId);
      else form.append('profile', profileSelect.value);
      form.append('file', file, file.name);
      const answer = await post('/mvp/audio', form);
      audioForm.reset();
      if (answer.greeting !== undefined) addLine('Assistant', answer.greeting);
      addLine('You', answer.transcript);
      show({ ...answer, greeting: undefined });
    });
  });

  endButton.addEventListener('click', () => {
    if (!sessionId) return;
    run('Ending…', async () => {
      await post('/mvp/text', JSON.stringify({ sessionId, end: true }), { 'content-type': 'application/json' });
      textForm.elements.text.disabled = true;
      status.textContent = 'Conversation ended; it is stored with the calls.';
    });
  });
})();
