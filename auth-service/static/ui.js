// The demo page's small helpers: elements by id, the notices, and a short human text
// for an error. Used by every other module of the page.
import { AuthstreamError } from '/clients/js/authstream.js';

export const $ = (id) => document.getElementById(id);

export function showNotice(id, text, ok = false) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle('ok', ok);
  el.hidden = false;
}

export function hideNotice(id) {
  $(id).hidden = true;
}

/** A short human text for an error of the API or the connection. */
export function describe(error) {
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
