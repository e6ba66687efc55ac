// Nango dashboard, on an integration's page: "Connect a test account" runs the real flow with
// the frontend SDK this server serves, exactly as an app would (a popup for OAuth, entered
// credentials for API_KEY and BASIC). When the server requires connect sessions, one is minted
// first by the dashboard (POST .../connect-session with the CSRF token).
import Nango from '/sdk/frontend.js';

const form = document.getElementById('connect-test');
const status = document.getElementById('connect-status');
const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

function say(text, isError = false) {
  status.textContent = text;
  status.classList.toggle('error', isError);
}

async function mintConnectSession(connectionId) {
  const response = await fetch(form.dataset.sessionUrl, {
    method: 'POST',
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRF-Token': csrfToken },
    body: new URLSearchParams({ connection_id: connectionId }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.token) throw new Error(body.error ?? `the server answered ${response.status}`);
  return body.token;
}

if (form && status) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    const key = form.dataset.key;
    const connectionId = form.elements.connection_id.value.trim();
    if (!connectionId) {
      say('Enter a connection ID.', true);
      return;
    }
    button.disabled = true;
    try {
      let options;
      if (form.dataset.authMode === 'API_KEY') {
        options = { credentials: { apiKey: form.elements.api_key.value } };
      } else if (form.dataset.authMode === 'BASIC') {
        options = { credentials: { username: form.elements.username.value, password: form.elements.password.value } };
      }
      say(options ? 'Saving the credentials…' : 'Waiting for the provider in the popup…');
      const connectSessionToken =
        form.dataset.requireSession === 'true' ? await mintConnectSession(connectionId) : undefined;
      const nango = new Nango({ host: window.location.origin, connectSessionToken });
      const result = await nango.auth(key, connectionId, options);
      say(`Connected ${result.connectionId}.`);
      const next = new URL(window.location.pathname, window.location.origin);
      next.searchParams.set('notice', 'connected');
      next.searchParams.set('subject', result.connectionId);
      window.location.assign(next);
    } catch (error) {
      const type = error?.type ? `${error.type}: ` : '';
      say(`${type}${error?.message ?? error}`, true);
    } finally {
      button.disabled = false;
    }
  });
}
