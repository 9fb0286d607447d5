// The demo page: sign up / sign in, simulate a generation, watch it stream, manage sessions.
// Everything goes through the JavaScript client the page is a demo of. This module holds
// the sign-in state and wires the page's buttons and forms; the parts it uses:
//   ui.js           elements by id, notices, error texts
//   sessions.js     the list of the user's sessions
//   stream-view.js  the generation card and the stream it watches
import { AuthClient } from '/clients/js/authstream.js';

import { listSessions } from './sessions.js';
import { StreamView, logNote } from './stream-view.js';
import { $, describe, hideNotice, showNotice } from './ui.js';

const auth = new AuthClient({ onChange: (signedIn) => showSignedIn(signedIn) });

/** Set when the sign-in state changed because the server refused our tokens. */
let signedOutBy = null;

const view = new StreamView({
  auth,
  onSignedOut: () => {
    signedOutBy = 'You were signed out (this session was ended, here or on another device).';
    if (!auth.signedIn) showSignedIn(false);
  },
});

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
  view.updateButtons();
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
    view.updateButtons();
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

async function signOut(everywhere) {
  view.end('signed out');
  try {
    await (everywhere ? auth.logoutAll() : auth.logout());
  } catch {
    // Signed out here either way: the tokens are gone from memory.
  }
}

$('sign-out').addEventListener('click', () => busy($('sign-out'), () => signOut(false)));
$('sign-out-everywhere').addEventListener('click', () => busy($('sign-out-everywhere'), () => signOut(true)));

// -- sessions ----------------------------------------------------------------------------

function refreshSessions() {
  return listSessions(auth, { busy, signOut });
}

$('refresh-sessions').addEventListener('click', () => busy($('refresh-sessions'), refreshSessions));

// -- generations and the stream ---------------------------------------------------------

$('start-simulation').addEventListener('click', () =>
  busy($('start-simulation'), async () => {
    hideNotice('generation-message');
    let watching = false;
    try {
      const created = await auth.request('POST', '/generations', {});
      // Watch first: nothing is missed either way (a new stream gets the history from
      // the start), but this way every event is seen live.
      view.watch(created.generation_id);
      watching = true;
      await auth.request('POST', `/demo/generations/${encodeURIComponent(created.generation_id)}/simulate`, {
        duration_ms: Number($('duration').value),
        outcome: $('fail').checked ? 'failed' : 'completed',
      });
      $('follow-id').value = created.generation_id;
    } catch (error) {
      // No simulation, no events: do not leave a stream waiting for them.
      if (watching) view.end('the simulation did not start');
      showNotice('generation-message', describe(error));
    }
  }),
);

$('follow-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const id = $('follow-id').value.trim();
  if (id) view.watch(id);
});

$('drop-connection').addEventListener('click', () =>
  busy($('drop-connection'), async () => {
    const { generationId } = view;
    if (!generationId) return;
    try {
      await auth.request('POST', `/demo/generations/${encodeURIComponent(generationId)}/disconnect`);
      logNote('The server dropped the connection; the stream resumes after the last event received.');
    } catch (error) {
      showNotice('generation-message', describe(error));
    }
  }),
);

$('stop-stream').addEventListener('click', () => view.end('stopped by you'));

showSignedIn(false);
