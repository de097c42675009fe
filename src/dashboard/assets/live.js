// Keeps the list of calls in progress current from the server-sent events of /api/live/events.
(() => {
  const list = document.getElementById('live-calls');
  const empty = document.getElementById('live-empty');
  const template = document.getElementById('live-call-template');
  const connection = document.querySelector('[data-testid="live-connection"]');
  const state = connection.querySelector('.state');
  let calls = [];

  const elapsed = (startedAt) => {
    const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(startedAt)) / 1000));
    return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
  };

  const render = () => {
    empty.hidden = calls.length > 0;
    const cards = calls.map((call) => {
      const card = template.content.firstElementChild.cloneNode(true);
      card.dataset.callSid = call.callSid;
      const title = card.querySelector('.title');
      title.textContent = call.from ?? 'Unknown caller';
      title.href = `/dashboard/calls/${encodeURIComponent(call.callSid)}`;
      card.querySelector('.status').textContent = call.status;
      card.querySelector('.profile').textContent = `${call.profileName} · ${call.to ?? ''}`;
      card.querySelector('.elapsed').dataset.startedAt = call.startedAt;
      card.querySelector('.elapsed').textContent = elapsed(call.startedAt);
      const turn = call.latestTurn;
      const caller = card.querySelector('.line.caller');
      const hasCaller = turn && turn.kind !== 'greeting';
      caller.hidden = !hasCaller;
      if (hasCaller) {
        card.querySelector('.caller-text').textContent = turn.callerText ?? (turn.kind === 'silence' ? '(silence)' : '…');
        const confidence = card.querySelector('.confidence');
        confidence.hidden = turn.confidence === null;
        if (turn.confidence !== null) confidence.textContent = turn.confidence.toFixed(2);
      }
      card.querySelector('.assistant-text').textContent = turn?.assistantText ?? (turn ? '(thinking…)' : '(answering…)');
      const turnStatus = { processing: 'speaking', completed: 'replied', failed: 'failed' };
      card.querySelector('.turn-status').textContent = turn ? turnStatus[turn.status] ?? turn.status : 'ringing';
      card.querySelector('.turns').textContent = `${call.turns} caller turn${call.turns === 1 ? '' : 's'}`;
      const details = Object.entries(call.details ?? {});
      card.querySelector('.details').textContent = details.length ? `· collected ${details.map(([key, value]) => `${key}: ${value}`).join(', ')}` : '';
      return card;
    });
    list.replaceChildren(...cards);
  };

  setInterval(() => {
    for (const element of list.querySelectorAll('.elapsed')) element.textContent = elapsed(element.dataset.startedAt);
  }, 1000);

  const source = new EventSource('/api/live/events');
  source.addEventListener('open', () => {
    connection.className = 'connection open';
    state.textContent = 'Live';
  });
  source.addEventListener('error', () => {
    connection.className = 'connection closed';
    state.textContent = source.readyState === EventSource.CLOSED ? 'Disconnected: reload the page' : 'Reconnecting…';
  });
  source.addEventListener('calls', (event) => {
    calls = JSON.parse(event.data).calls;
    render();
  });
})();
