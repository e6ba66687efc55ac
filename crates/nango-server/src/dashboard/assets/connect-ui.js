// Connect UI (crate::connect_ui): lists the integrations the connect session allows and connects
// one with this server's frontend SDK, without a connection id (the session names the
// connection). Framed by the app (`@nangohq/frontend`'s openConnectUI) it speaks current Nango's
// postMessage protocol: it posts `ready`, takes the token from `{type: 'session_token'}` (only
// from its parent, of one of the app origins the server allows), and reports `connect`, `error`
// and `close`. Opened through a session's connect_link, it reads the token from the URL.
import Nango from '/sdk/frontend.js';

const root = document.querySelector('main.connect-ui');
const appOrigins = JSON.parse(root.dataset.appOrigins || '[]');
const framed = window.parent !== window;
const statusLine = document.getElementById('status');
const choose = document.getElementById('choose');
const list = document.getElementById('integrations');
const form = document.getElementById('credentials');
const done = document.getElementById('done');

if (framed) document.documentElement.classList.add('framed');

let token = new URL(window.location.href).searchParams.get('session_token');
let parentOrigin = null;
let current = null;

function say(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle('error', isError);
}

// Messages go only to the parent that gave the token (its origin is one of the app's).
function tell(type, payload) {
  if (!framed || !parentOrigin) return;
  window.parent.postMessage(payload === undefined ? { type } : { type, payload }, parentOrigin);
}

function show(section) {
  for (const element of [choose, form, done]) element.hidden = element !== section;
}

function close() {
  if (framed) tell('close');
  else window.close();
}

async function load() {
  say('Loading…');
  let response;
  try {
    response = await fetch('/connect/session', { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
  } catch {
    say('The server cannot be reached.', true);
    tell('error', { errorType: 'connection_failed', errorMessage: 'The server cannot be reached.' });
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = body?.error?.message ?? `The server answered ${response.status}.`;
    say(`This link no longer works: ${message}`, true);
    tell('error', { errorType: body?.error?.code ?? 'invalid_connect_session', errorMessage: message });
    return;
  }
  const integrations = body.data.integrations;
  list.replaceChildren();
  for (const integration of integrations) {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.dataset.key = integration.unique_key;
    const name = document.createElement('span');
    name.textContent = integration.display_name;
    const mode = document.createElement('span');
    mode.className = 'mode';
    mode.textContent = integration.auth_mode === 'API_KEY' ? 'API key' : integration.auth_mode === 'BASIC' ? 'Username and password' : 'Sign in';
    button.append(name, mode);
    button.addEventListener('click', () => start(integration));
    item.append(button);
    list.append(item);
  }
  if (integrations.length === 0) {
    say('There is nothing to connect: the session allows no integration that is set up.', true);
    return;
  }
  say(body.data.isReconnecting ? 'Sign in again to reconnect.' : 'Which account do you want to connect?');
  show(choose);
  list.querySelector('button')?.focus();
}

function succeed(result, integration) {
  say('');
  document.getElementById('done-text').textContent = `${integration.display_name} is connected.`;
  show(done);
  document.getElementById('finish').focus();
  tell('connect', { providerConfigKey: result.providerConfigKey, connectionId: result.connectionId });
}

function fail(error) {
  const errorType = error?.type ?? 'unknown_error';
  const errorMessage = error?.message || 'The connection failed.';
  say(errorMessage, true);
  tell('error', { errorType, errorMessage });
}

async function start(integration) {
  current = integration;
  if (integration.auth_mode === 'API_KEY' || integration.auth_mode === 'BASIC') {
    document.getElementById('form-title').textContent = integration.display_name;
    const apiKey = integration.auth_mode === 'API_KEY';
    document.getElementById('field-api-key').hidden = !apiKey;
    document.getElementById('field-username').hidden = apiKey;
    document.getElementById('field-password').hidden = apiKey;
    form.reset();
    say('');
    show(form);
    (apiKey ? form.elements.apiKey : form.elements.username).focus();
    return;
  }
  say(`Waiting for ${integration.display_name} in the popup…`);
  for (const button of list.querySelectorAll('button')) button.disabled = true;
  try {
    const nango = new Nango({ host: window.location.origin, connectSessionToken: token });
    succeed(await nango.auth(integration.unique_key), integration);
  } catch (error) {
    fail(error);
  } finally {
    for (const button of list.querySelectorAll('button')) button.disabled = false;
  }
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const integration = current;
  const credentials =
    integration.auth_mode === 'API_KEY'
      ? { apiKey: form.elements.apiKey.value }
      : { username: form.elements.username.value, password: form.elements.password.value };
  const submit = document.getElementById('submit');
  submit.disabled = true;
  say('Checking…');
  try {
    const nango = new Nango({ host: window.location.origin, connectSessionToken: token });
    succeed(await nango.auth(integration.unique_key, { credentials }), integration);
  } catch (error) {
    fail(error);
  } finally {
    submit.disabled = false;
  }
});

document.getElementById('back').addEventListener('click', () => {
  say('Which account do you want to connect?');
  show(choose);
  list.querySelector(`button[data-key="${CSS.escape(current?.unique_key ?? '')}"]`)?.focus();
});
document.getElementById('close').addEventListener('click', close);
document.getElementById('finish').addEventListener('click', close);
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') close();
});

window.addEventListener('message', (event) => {
  if (!framed || event.source !== window.parent || !appOrigins.includes(event.origin)) return;
  const data = event.data;
  if (data?.type === 'session_token' && typeof data.sessionToken === 'string' && data.sessionToken) {
    token = data.sessionToken;
    parentOrigin = event.origin;
    load();
  }
});

if (token) {
  load();
} else if (framed) {
  say('Waiting for the app…');
  // `ready` carries nothing: the parent answers with the session token (to this page only).
  window.parent.postMessage({ type: 'ready' }, '*');
} else {
  say('Open this page with a connect session link.', true);
}
