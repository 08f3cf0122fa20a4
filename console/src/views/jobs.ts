// The caller's jobs, newest first: filter by status, 10 a page, open one,
// retry a failed one. The filter and page live in the hash (#/jobs?status=failed&page=2).
import { get, post } from '../api';
import { h, money, when, duration } from '../dom';
import { handleAuth } from '../session';

const PAGE = 10;

export function jobsView(main: HTMLElement, params: URLSearchParams): () => void {
  let alive = true;
  const status = params.get('status') ?? '';
  const page = Math.max(1, Number(params.get('page') ?? '1') || 1);
  const filter = h('select', { id: 'status-filter' },
    ...[['', 'All'], ['processing', 'Processing'], ['completed', 'Completed'], ['failed', 'Failed']]
      .map(([v, l]) => h('option', { value: v, selected: v === status }, l)));
  filter.addEventListener('change', () => {
    location.hash = `#/jobs${filter.value ? `?status=${filter.value}` : ''}`;
  });
  const summary = h('p', { class: 'meta', id: 'jobs-summary', 'aria-live': 'polite' }, 'Loading…');
  const body = h('tbody', {});
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  main.appendChild(h('section', { class: 'card', 'aria-labelledby': 'jobs-title' },
    h('h1', { id: 'jobs-title' }, 'Jobs'),
    h('div', { class: 'field inline' }, h('label', { for: 'status-filter' }, 'Status'), filter),
    summary,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'jobs' },
        h('caption', { class: 'visually-hidden' }, 'Your jobs, newest first'),
        h('thead', {}, h('tr', {}, ...['Job', 'Topic', 'Type', 'Status', 'Cost', 'Duration', 'Created'].map((c) => h('th', { scope: 'col' }, c)), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
        body)),
    pager));

  const hrefFor = (p: number) => `#/jobs?${new URLSearchParams({ ...(status ? { status } : {}), page: String(p) })}`;
  (async () => {
    const q = new URLSearchParams({ limit: String(PAGE), offset: String((page - 1) * PAGE) });
    if (status) q.set('status', status);
    let r: any;
    try {
      r = (await get(`/api/jobs?${q}`)).body;
    } catch (e) {
      if (!handleAuth(e)) summary.textContent = `Could not load jobs: ${(e as Error).message}`;
      return;
    }
    if (!alive) return;
    const jobs: any[] = r.jobs ?? [];
    const total: number = r.total ?? jobs.length;
    const first = total ? (page - 1) * PAGE + 1 : 0;
    summary.textContent = total
      ? `Showing ${first}–${first + jobs.length - 1} of ${total} ${status ? `${status} ` : ''}jobs`
      : `No ${status ? `${status} ` : ''}jobs yet.`;
    for (const j of jobs) {
      const ms = j.durationMs ?? j.processingTimeMs ?? (j.status !== 'processing' && j.createdAt && j.updatedAt ? Date.parse(j.updatedAt) - Date.parse(j.createdAt) : null);
      const actions = h('td', { class: 'row-actions' }, h('a', { href: `#/jobs/${j.id}`, 'aria-label': `Open job ${j.id}` }, 'Open'));
      if (j.status === 'failed') {
        const retry = h('button', { type: 'button', class: 'secondary small', 'aria-label': `Retry job ${j.id}` }, 'Retry');
        retry.addEventListener('click', async () => {
          retry.disabled = true;
          try {
            await post(`/api/jobs/${j.id}/retry`, {}, { Prefer: 'respond-async' });
            location.hash = `#/jobs/${j.id}`;
          } catch (e) {
            if (!handleAuth(e)) summary.textContent = `Retry of job ${j.id} refused: ${(e as Error).message}`;
            retry.disabled = false;
          }
        });
        actions.appendChild(retry);
      }
      body.appendChild(h('tr', { 'data-job': j.id },
        h('td', { class: 'num' }, String(j.id)),
        h('td', {}, j.topic),
        h('td', {}, String(j.structureType).replace('_', ' ')),
        h('td', {}, h('span', { class: `badge ${j.status}` }, j.status)),
        h('td', { class: 'num' }, money(j.costUsd)),
        h('td', { class: 'num' }, duration(ms)),
        h('td', {}, when(j.createdAt)),
        actions));
    }
    if (page > 1) pager.appendChild(h('a', { href: hrefFor(page - 1), rel: 'prev' }, 'Previous'));
    pager.appendChild(h('span', {}, `Page ${page} of ${Math.max(1, Math.ceil(total / PAGE))}`));
    if (page * PAGE < total) pager.appendChild(h('a', { href: hrefFor(page + 1), rel: 'next' }, 'Next'));
  })();
  return () => { alive = false; };
}
