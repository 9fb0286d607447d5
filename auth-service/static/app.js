// The demo page: sign up / sign in, simulate a generation, watch it stream, manage sessions.
// Everything goes through the JavaScript client the page is a demo of.
import { AuthClient, AuthstreamError, GenerationStream } from '/clients/js/authstream.js';

const $ = (id) => document.getElementById(id);

const auth = new AuthClient({ onChange: (signedIn) => showSignedIn(signedIn) });

/** The stream being watched, if any, and its generation id. */
let stream = null;
let generationId = null;
/** Set when the sign-in state changed because the server refused our tokens. */
let signedOutBy = null;

// -- sign-in state --------------------------------------------------------------------

function showSignedIn(signedIn) {
  document.body.dataset.state = signedIn ? 'signed-in' : 'signed-out';
  $('who').hidden = !signedIn;
  $('account-card').hidden = signedIn;
  $('generation-card').hidden = !signedIn;
  $('sessions-card').hidden = !signedIn;
  $('user-email').textContent = signedIn ? auth.email ?? '' : '';
  if (signedIn) {
    signedOutBy = null;
    $('password').value = '';
    hideNotice('auth-message');
    refreshSessions();
  } else {
    $('sessions').replaceChildren();
    if (signedOutBy) showNotice('auth-message', signedOutBy);
    // The stream, if still running, finds out by itself (its next token is refused).
  }
  updateButtons();
}

function showNotice(id, text, ok = false) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle('ok', ok);
  el.hidden = false;
}

function hideNotice(id) {
  $(id).hidden = true;
}

/** A short human text for an error of the API or the connection. */
function describe(error) {
  if (!(error instanceof AuthstreamError)) return String(error?.message ?? error);
  switch (error.code) {
    case 'invalid_credentials':
      return 'Wrong email or password.';
    case 'email_taken':
      return 'This email is already registered: sign in instead.';
    case 'validation_failed': {
      const fields = Object.entries(error.fields ?? {}).map(([field, problem]) => `${field} ${problem}`);
      return fields.length ? `Please check: ${fields.join('; ')}.` : error.message;
    }
    case 'rate_limited':
      return 'Too many attempts: wait a moment and try again.';
    case 'network_error':
      return 'The server cannot be reached.';
    default:
      return error.message;
  }
}

function credentials() {
  return { email: $('email').value.trim(), password: $('password').value };
}

async function busy(button, work) {
  button.disabled = true;
  try {
    return await work();
  } finally {
    button.disabled = false;
    updateButtons();
  }
}

$('auth-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy($('sign-in'), async () => {
    hideNotice('auth-message');
    const { email, password } = credentials();
    try {
      await auth.login(email, password);
    } catch (error) {
      showNotice('auth-message', describe(error));
    }
  });
});

$('sign-up').addEventListener('click', () => {
  busy($('sign-up'), async () => {
    hideNotice('auth-message');
    const { email, password } = credentials();
    try {
      await auth.register(email, password);
      await auth.login(email, password);
    } catch (error) {
      showNotice('auth-message', describe(error));
    }
  });
});

/** Ends the watched stream here, saying why. */
function endStream(reason) {
  if (stream && !['completed', 'failed', 'error', 'stopped'].includes(stream.state)) {
    stream.stop();
    setStatus('ended', `Stream ended: ${reason}`);
  }
  updateButtons();
}

async function signOut(everywhere) {
  endStream('signed out');
  try {
    await (everywhere ? auth.logoutAll() : auth.logout());
  } catch {
    // Signed out here either way: the tokens are gone from memory.
  }
}

$('sign-out').addEventListener('click', () => busy($('sign-out'), () => signOut(false)));
$('sign-out-everywhere').addEventListener('click', () => busy($('sign-out-everywhere'), () => signOut(true)));

// -- sessions ----------------------------------------------------------------------------

function when(time) {
  const ms = time < 1e12 ? time * 1000 : time;
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function browserName(userAgent) {
  if (!userAgent) return 'Unknown client';
  const browser =
    /Edg\//.test(userAgent) ? 'Edge'
    : /(HeadlessChrome|Chromium|Chrome)\//.test(userAgent) ? (/Headless/.test(userAgent) ? 'Headless Chrome' : 'Chrome')
    : /Firefox\//.test(userAgent) ? 'Firefox'
    : /Safari\//.test(userAgent) ? 'Safari'
    : null;
  const os =
    /Windows/.test(userAgent) ? 'Windows'
    : /Android/.test(userAgent) ? 'Android'
    : /(iPhone|iPad)/.test(userAgent) ? 'iOS'
    : /Mac OS X/.test(userAgent) ? 'macOS'
    : /Linux/.test(userAgent) ? 'Linux'
    : null;
  if (browser && os) return `${browser} on ${os}`;
  return userAgent.length > 60 ? `${userAgent.slice(0, 57)}...` : userAgent;
}

async function refreshSessions() {
  if (!auth.signedIn) return;
  let sessions;
  try {
    sessions = await auth.sessions();
  } catch (error) {
    if (!auth.signedIn) return;
    $('sessions').replaceChildren(Object.assign(document.createElement('li'), { textContent: describe(error) }));
    return;
  }
  const items = sessions.map((session) => {
    const li = document.createElement('li');
    li.dataset.sessionId = session.session_id;
    li.dataset.current = String(Boolean(session.current));

    const text = document.createElement('div');
    const name = document.createElement('div');
    name.className = 'name';
    name.textContent = browserName(session.user_agent);
    if (session.current) {
      const here = document.createElement('span');
      here.className = 'here';
      here.textContent = 'this page';
      name.append(here);
    }
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = [
      session.ip ? `from ${session.ip}` : null,
      `signed in ${when(session.created_at)}`,
      `last seen ${when(session.last_seen_at)}`,
    ].filter(Boolean).join(' · ');
    text.append(name, meta);

    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'btn small';
    button.textContent = 'Sign out';
    button.setAttribute('aria-label', `Sign out ${name.textContent}`);
    button.addEventListener('click', () =>
      busy(button, async () => {
        if (session.current) return signOut(false);
        try {
          await auth.deleteSession(session.session_id);
        } catch (error) {
          if (error.code !== 'not_found') showNotice('generation-message', describe(error));
        }
        await refreshSessions();
      }),
    );
    li.append(text, button);
    return li;
  });
  $('sessions').replaceChildren(...items);
}

$('refresh-sessions').addEventListener('click', () => busy($('refresh-sessions'), refreshSessions));

// -- generations and the stream ---------------------------------------------------------

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

function updateCounters() {
  $('connections').textContent = String(stream?.stats.connected ?? 0);
  $('duplicates').textContent = String(stream?.stats.duplicates ?? 0);
  $('token-fetches').textContent = String(stream?.stats.tokenFetches ?? 0);
  $('event-count').textContent = String($('event-log').querySelectorAll('li[data-event-id]').length);
}

function updateButtons() {
  const watching = Boolean(stream) && ['connecting', 'open', 'reconnecting'].includes(stream.state);
  $('stop-stream').disabled = !watching;
  $('drop-connection').disabled = !(watching && stream.state === 'open' && auth.signedIn);
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

function logNote(text) {
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

function watch(id) {
  stream?.stop();
  generationId = id;
  $('generation-id').textContent = id;
  $('event-log').replaceChildren();
  $('stage').textContent = '–';
  $('message').textContent = 'Waiting for events...';
  setProgress(0);
  setGenerationStatus('pending');

  const current = new GenerationStream({
    generationId: id,
    getAccessToken: (options) => auth.accessToken(options),
    onStatus: ({ state, delayMs, browserAttempt, attempt }) => {
      if (current !== stream) return;
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
      updateCounters();
      updateButtons();
    },
    onProgress: (event, { id: eventId }) => {
      if (current !== stream) return;
      setProgress(event.progress);
      setGenerationStatus(event.status);
      if (event.stage) $('stage').textContent = event.stage;
      if (event.message) $('message').textContent = event.message;
      $('progress-bar').setAttribute('aria-valuetext', `${Math.round((event.progress ?? 0) * 100)}%, ${event.stage ?? ''}`);
      logEvent(eventId, event);
      updateCounters();
    },
    onComplete: (event) => {
      if (current !== stream) return;
      setStatus(event.status, event.status === 'completed' ? 'Completed' : 'Failed');
      updateCounters();
      updateButtons();
    },
    onReset: () => {
      if (current !== stream) return;
      logNote('The server no longer keeps the events since the last one seen; what follows is all it kept.');
    },
    onError: (error) => {
      if (current !== stream) return;
      if (error.isAuthError || error.cause?.status === 401) {
        signedOutBy = 'You were signed out (this session was ended, here or on another device).';
        if (!auth.signedIn) showSignedIn(false);
      }
      setStatus('ended', `Stream ended: ${endReason(error)}`);
      updateCounters();
      updateButtons();
    },
  });
  stream = current;
  current.start();
  updateButtons();
}

$('start-simulation').addEventListener('click', () =>
  busy($('start-simulation'), async () => {
    hideNotice('generation-message');
    let watching = false;
    try {
      const created = await auth.request('POST', '/generations', {});
      // Watch first: nothing is missed either way (a new stream gets the history from
      // the start), but this way every event is seen live.
      watch(created.generation_id);
      watching = true;
      await auth.request('POST', `/demo/generations/${encodeURIComponent(created.generation_id)}/simulate`, {
        duration_ms: Number($('duration').value),
        outcome: $('fail').checked ? 'failed' : 'completed',
      });
      $('follow-id').value = created.generation_id;
    } catch (error) {
      // No simulation, no events: do not leave a stream waiting for them.
      if (watching) endStream('the simulation did not start');
      showNotice('generation-message', describe(error));
    }
  }),
);

$('follow-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const id = $('follow-id').value.trim();
  if (id) watch(id);
});

$('drop-connection').addEventListener('click', () =>
  busy($('drop-connection'), async () => {
    if (!generationId) return;
    try {
      await auth.request('POST', `/demo/generations/${encodeURIComponent(generationId)}/disconnect`);
      logNote('The server dropped the connection; the stream resumes after the last event received.');
    } catch (error) {
      showNotice('generation-message', describe(error));
    }
  }),
);

$('stop-stream').addEventListener('click', () => endStream('stopped by you'));

showSignedIn(false);
