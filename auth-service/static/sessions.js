// The demo page's list of the user's sessions, each with its own "Sign out" button.
import { $, describe, showNotice } from './ui.js';

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

/**
 * Lists `auth`'s sessions in #sessions. `busy(button, work)` runs a button's work;
 * `signOut(everywhere)` signs this page out (the "Sign out" of its own session).
 */
export async function listSessions(auth, { busy, signOut }) {
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
        await listSessions(auth, { busy, signOut });
      }),
    );
    li.append(text, button);
    return li;
  });
  $('sessions').replaceChildren(...items);
}
