// The console's shell: sign-in state, the header, and a hash router
// (#/new, #/jobs, #/jobs/{id}, #/usage, #/admin), so every screen is a static
// file under /console/ and no credential ever appears in a URL.
import { credential, saveCredential, ApiError, Credential, call } from './api';
import { isAdmin, setAdmin, signOut, takeNotice } from './session';
import { h, clear, announce } from './dom';
import { newJobView } from './views/newjob';
import { jobView } from './views/job';
import { jobsView } from './views/jobs';
import { usageView } from './views/usage';
import { adminView } from './views/admin';

let leave: (() => void) | null = null;

function header(): void {
  const c = credential();
  const nav = document.getElementById('nav')!;
  nav.hidden = !c;
  document.getElementById('nav-admin')!.hidden = !(c && isAdmin());
  document.getElementById('signout')!.hidden = !c;
  const who = document.getElementById('who')!;
  who.textContent = c ? `Signed in with ${c.kind === 'session' ? 'a session token' : 'an API key'}${isAdmin() ? ' (admin)' : ''}` : '';
  const current = location.hash.split('?')[0];
  for (const a of Array.from(nav.querySelectorAll('a'))) {
    const href = a.getAttribute('href') ?? '';
    if (current === href || (href === '#/jobs' && current.startsWith('#/jobs'))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function signInView(main: HTMLElement): void {
  const message = takeNotice();
  const error = h('p', { class: 'error', id: 'signin-error', role: 'alert' }, message);
  const kindSession = h('input', { type: 'radio', name: 'kind', id: 'kind-session', value: 'session', checked: true });
  const kindKey = h('input', { type: 'radio', name: 'kind', id: 'kind-key', value: 'apiKey' });
  const valueLabel = h('label', { for: 'credential' }, 'Session token');
  const value = h('input', { id: 'credential', name: 'credential', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'signin-error' });
  const relabel = () => (valueLabel.textContent = kindKey.checked ? 'API key' : 'Session token');
  kindSession.addEventListener('change', relabel);
  kindKey.addEventListener('change', relabel);
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card narrow', novalidate: true },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Use a dashboard session token or a client API key. It is kept in this tab only (sessionStorage) and sent as a header.'),
    h('fieldset', {}, h('legend', {}, 'Credential'),
      h('div', { class: 'radio' }, kindSession, h('label', { for: 'kind-session' }, 'Session token')),
      h('div', { class: 'radio' }, kindKey, h('label', { for: 'kind-key' }, 'API key'))),
    h('div', { class: 'field' }, valueLabel, value),
    error,
    submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const c: Credential = { kind: kindKey.checked ? 'apiKey' : 'session', value: value.value.trim() };
    const what = c.kind === 'session' ? 'session token' : 'API key';
    if (!c.value) {
      error.textContent = `Enter a ${what}.`;
      value.focus();
      return;
    }
    submit.disabled = true;
    error.textContent = 'Checking…';
    try {
      await call('GET', '/api/stats', undefined, {}, c);
      let admin = false;
      try {
        await call('GET', '/api/admin/stats?days=1', undefined, {}, c);
        admin = true;
      } catch {
        admin = false;
      }
      saveCredential(c);
      setAdmin(admin);
      announce('Signed in');
      location.hash = '#/new';
    } catch (e) {
      const err = e as ApiError;
      error.textContent = err.status === 401
        ? `That ${what} was not accepted: it is wrong or has expired. (${err.message})`
        : err.status === 0 || err.status >= 500
          ? `Your ${what} could not be checked just now (${err.message}). Try again in a moment.`
          : `Could not sign in: ${err.message}`;
      value.focus();
    } finally {
      submit.disabled = false;
    }
  });
  main.appendChild(form);
  value.focus();
}

function route(): void {
  if (leave) {
    leave();
    leave = null;
  }
  const main = document.getElementById('main')!;
  clear(main);
  const [path, query] = location.hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query ?? '');
  const c = credential();
  header();
  if (!c || path === '/signin') {
    if (c && path === '/signin') {
      location.hash = '#/new';
      return;
    }
    document.title = 'Sign in · Content Granulator';
    signInView(main);
    return;
  }
  const job = /^\/jobs\/(\d+)$/.exec(path);
  if (job) leave = jobView(main, Number(job[1]));
  else if (path === '/jobs') leave = jobsView(main, params);
  else if (path === '/usage') leave = usageView(main);
  else if (path === '/admin') leave = adminView(main, isAdmin());
  else if (path === '/new' || path === '' || path === '/') leave = newJobView(main);
  else main.appendChild(h('section', { class: 'card' }, h('h1', {}, 'Not found'), h('p', {}, 'No such screen. ', h('a', { href: '#/new' }, 'Start a new job.'))));
  // A new screen takes the focus (unless it put it on a field), so a screen
  // reader starts reading there and Tab continues from it.
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
  const heading = main.querySelector('h1');
  document.title = `${heading?.textContent ?? 'Console'} · Content Granulator`;
}

document.getElementById('signout')!.addEventListener('click', () => {
  signOut('Signed out.');
  announce('Signed out');
});
window.addEventListener('hashchange', route);
route();
