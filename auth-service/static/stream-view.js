// The demo page's generation card: one generation's stream at a time, shown as a
// status line, a progress bar, the stage and message, counters and an event log.
import { GenerationStream } from '/clients/js/authstream.js';

import { $ } from './ui.js';

function setStatus(state, text) {
  $('status').dataset.state = state;
  $('status').textContent = text;
}

function setGenerationStatus(status) {
  $('gen-status').dataset.status = status;
  $('gen-status').textContent = status;
  $('progress-bar').dataset.status = status;
}

function setProgress(fraction) {
  const percent = Math.round(Math.min(1, Math.max(0, Number(fraction) || 0)) * 100);
  $('progress-fill').style.width = `${percent}%`;
  $('progress-bar').setAttribute('aria-valuenow', String(percent));
  $('progress-percent').textContent = `${percent}%`;
}

function clock(timestamp) {
  const date = new Date(Number(timestamp) || Date.now());
  return `${date.toLocaleTimeString([], { hour12: false })}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

function logEvent(id, event) {
  const li = document.createElement('li');
  li.dataset.eventId = id;
  li.dataset.status = event.status ?? '';
  const time = Object.assign(document.createElement('span'), { className: 'time', textContent: clock(event.timestamp) });
  const pct = Object.assign(document.createElement('span'), {
    className: 'pct',
    textContent: typeof event.progress === 'number' ? `${Math.round(event.progress * 100)}%` : '',
  });
  const text = Object.assign(document.createElement('span'), { className: 'text', textContent: event.message ?? event.status });
  const detail = [event.stage, event.current_file].filter(Boolean).join(' · ');
  if (detail) text.append(Object.assign(document.createElement('small'), { textContent: detail }));
  li.append(time, pct, text);
  const log = $('event-log');
  const follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
  log.append(li);
  if (follow) log.scrollTop = log.scrollHeight;
}

/** A line of the event log that is not an event. */
export function logNote(text) {
  const li = Object.assign(document.createElement('li'), { className: 'note', textContent: text });
  $('event-log').append(li);
}

/** Why a stream ended, in a few words. */
function endReason(error) {
  if (error.isAuthError || error.cause?.status === 401) return 'signed out';
  switch (error.code) {
    case 'forbidden':
      return 'this generation belongs to someone else';
    case 'not_found':
      return 'no such generation';
    case 'gave_up':
      return 'connection lost (gave up retrying)';
    default:
      return error.message;
  }
}

/**
 * The stream being watched, if any, with `auth`'s tokens. `onSignedOut` runs when the
 * stream ended because the server refused them.
 */
export class StreamView {
  constructor({ auth, onSignedOut }) {
    this._auth = auth;
    this._onSignedOut = onSignedOut;
    /** The stream being watched, if any, and its generation id. */
    this.stream = null;
    this.generationId = null;
  }

  updateCounters() {
    const { stream } = this;
    $('connections').textContent = String(stream?.stats.connected ?? 0);
    $('duplicates').textContent = String(stream?.stats.duplicates ?? 0);
    $('token-fetches').textContent = String(stream?.stats.tokenFetches ?? 0);
    $('event-count').textContent = String($('event-log').querySelectorAll('li[data-event-id]').length);
  }

  updateButtons() {
    const { stream } = this;
    const watching = Boolean(stream) && ['connecting', 'open', 'reconnecting'].includes(stream.state);
    $('stop-stream').disabled = !watching;
    $('drop-connection').disabled = !(watching && stream.state === 'open' && this._auth.signedIn);
  }

  /** Ends the watched stream here, saying why. */
  end(reason) {
    const { stream } = this;
    if (stream && !['completed', 'failed', 'error', 'stopped'].includes(stream.state)) {
      stream.stop();
      setStatus('ended', `Stream ended: ${reason}`);
    }
    this.updateButtons();
  }

  /** Watches generation `id`, instead of the one watched so far. */
  watch(id) {
    this.stream?.stop();
    this.generationId = id;
    $('generation-id').textContent = id;
    $('event-log').replaceChildren();
    $('stage').textContent = '–';
    $('message').textContent = 'Waiting for events...';
    setProgress(0);
    setGenerationStatus('pending');

    const auth = this._auth;
    const current = new GenerationStream({
      generationId: id,
      getAccessToken: (options) => auth.accessToken(options),
      onStatus: ({ state, delayMs, browserAttempt, attempt }) => {
        if (current !== this.stream) return;
        switch (state) {
          case 'connecting':
            setStatus('connecting', 'Connecting...');
            break;
          case 'open':
            setStatus('open', 'Streaming live');
            break;
          case 'reconnecting':
            setStatus(
              'reconnecting',
              delayMs !== undefined
                ? `Connection lost: reconnecting in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt})...`
                : browserAttempt
                  ? `Connection lost: resuming (attempt ${browserAttempt})...`
                  : 'Reconnecting...',
            );
            break;
          default:
            break; // completed, failed, error and stopped are shown by their own callbacks
        }
        this.updateCounters();
        this.updateButtons();
      },
      onProgress: (event, { id: eventId }) => {
        if (current !== this.stream) return;
        setProgress(event.progress);
        setGenerationStatus(event.status);
        if (event.stage) $('stage').textContent = event.stage;
        if (event.message) $('message').textContent = event.message;
        $('progress-bar').setAttribute('aria-valuetext', `${Math.round((event.progress ?? 0) * 100)}%, ${event.stage ?? ''}`);
        logEvent(eventId, event);
        this.updateCounters();
      },
      onComplete: (event) => {
        if (current !== this.stream) return;
        setStatus(event.status, event.status === 'completed' ? 'Completed' : 'Failed');
        this.updateCounters();
        this.updateButtons();
      },
      onReset: () => {
        if (current !== this.stream) return;
        logNote('The server no longer keeps the events since the last one seen; what follows is all it kept.');
      },
      onError: (error) => {
        if (current !== this.stream) return;
        if (error.isAuthError || error.cause?.status === 401) this._onSignedOut();
        setStatus('ended', `Stream ended: ${endReason(error)}`);
        this.updateCounters();
        this.updateButtons();
      },
    });
    this.stream = current;
    current.start();
    this.updateButtons();
  }
}
