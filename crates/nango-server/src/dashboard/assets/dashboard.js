// Nango dashboard, on every page: copy buttons, "Reveal" of one secret (a POST with the CSRF
// token, answered as JSON), and the provider search of the integration form (GET /providers).
// Everything the server or the user supplies is set as text, never as HTML.

const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

/** Shows `text` on a button for a moment, then its own label again. */
function flash(button, text) {
  const label = button.dataset.label ?? button.textContent;
  button.dataset.label = label;
  button.textContent = text;
  clearTimeout(button.flashTimer);
  button.flashTimer = setTimeout(() => {
    button.textContent = label;
  }, 1500);
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-HTTP origins have no clipboard API: the old way.
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.className = 'offscreen';
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('copy refused');
}

for (const button of document.querySelectorAll('[data-copy]')) {
  button.addEventListener('click', async () => {
    try {
      await copyText(button.dataset.copy);
      flash(button, 'Copied');
    } catch {
      flash(button, 'Copy failed');
    }
  });
}

/** POSTs a form to a dashboard route with the CSRF token; returns the parsed JSON answer. */
async function postForm(url, fields) {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRF-Token': csrfToken },
    body: new URLSearchParams(fields),
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: reported below
  }
  if (!response.ok || body === null) {
    throw new Error(body?.error ?? `the server answered ${response.status}`);
  }
  return body;
}

for (const button of document.querySelectorAll('[data-reveal]')) {
  button.addEventListener('click', async () => {
    const target = document.getElementById(button.dataset.target);
    if (!target) return;
    if (button.dataset.shown === 'true') {
      target.textContent = target.dataset.masked;
      target.classList.remove('revealed');
      button.dataset.shown = 'false';
      button.textContent = 'Reveal';
      return;
    }
    button.disabled = true;
    try {
      const { value } = await postForm(button.dataset.reveal, { field: button.dataset.field });
      target.textContent = value;
      target.classList.add('revealed');
      button.dataset.shown = 'true';
      button.textContent = 'Hide';
    } catch (error) {
      flash(button, 'Failed');
      target.title = String(error.message);
    } finally {
      button.disabled = false;
    }
  });
}

// --- provider search ---------------------------------------------------------------------------

const providerInput = document.getElementById('provider');
const providerResults = document.getElementById('provider-results');
const providerSelected = document.getElementById('provider-selected');

if (providerInput && providerResults) {
  let sequence = 0;
  let timer;

  const describe = (provider) =>
    provider.display_name ? `${provider.display_name} (${provider.name})` : provider.name;

  const close = () => {
    providerResults.hidden = true;
    providerResults.replaceChildren();
  };

  const choose = (provider) => {
    providerInput.value = provider.name;
    if (providerSelected) providerSelected.textContent = `Selected: ${describe(provider)}, ${provider.auth_mode}`;
    close();
    providerInput.focus();
  };

  const show = (providers, search) => {
    providerResults.replaceChildren();
    const exact = providers.find((p) => p.name === search);
    if (exact && providerSelected) providerSelected.textContent = `Selected: ${describe(exact)}, ${exact.auth_mode}`;
    if (providers.length === 0) {
      const item = document.createElement('li');
      item.className = 'none';
      item.textContent = 'No provider matches.';
      providerResults.append(item);
    }
    for (const provider of providers.slice(0, 50)) {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.provider = provider.name;
      const title = document.createElement('span');
      title.textContent = provider.display_name ?? provider.name;
      const mode = document.createElement('span');
      mode.className = 'mode';
      mode.textContent = provider.auth_mode;
      button.append(title);
      if (provider.display_name) {
        const name = document.createElement('span');
        name.className = 'name';
        name.textContent = provider.name;
        button.append(name);
      }
      button.append(mode);
      button.addEventListener('click', () => choose(provider));
      item.append(button);
      providerResults.append(item);
    }
    providerResults.hidden = false;
  };

  const search = async () => {
    const text = providerInput.value.trim();
    const mine = ++sequence;
    if (providerSelected) providerSelected.textContent = '';
    if (!text) {
      close();
      return;
    }
    try {
      const response = await fetch(`/providers?search=${encodeURIComponent(text)}`, { credentials: 'same-origin' });
      if (!response.ok) return;
      const { providers } = await response.json();
      if (mine === sequence) show(providers, text);
    } catch {
      // the search is a convenience: typing the exact name still works
    }
  };

  providerInput.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(search, 120);
  });
  providerInput.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') close();
    if (event.key === 'ArrowDown') {
      event.preventDefault();
      providerResults.querySelector('button')?.focus();
    }
  });
  providerResults.addEventListener('keydown', (event) => {
    const buttons = [...providerResults.querySelectorAll('button')];
    const at = buttons.indexOf(document.activeElement);
    if (event.key === 'ArrowDown' && at < buttons.length - 1) {
      event.preventDefault();
      buttons[at + 1].focus();
    } else if (event.key === 'ArrowUp') {
      event.preventDefault();
      (at > 0 ? buttons[at - 1] : providerInput).focus();
    } else if (event.key === 'Escape') {
      close();
      providerInput.focus();
    }
  });
  document.addEventListener('click', (event) => {
    if (!providerResults.contains(event.target) && event.target !== providerInput) close();
  });
}
