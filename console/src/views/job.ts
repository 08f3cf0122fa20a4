// One job: its live view while it runs (the events stream, read with fetch so
// the credential stays in a header), its failure, or its outline viewer.
import { ApiError, get, post, supportsCancel, call } from '../api';
import { follow } from '../sse';
import { h, clear, money, int, duration, when, announce, quality } from '../dom';
import { handleAuth } from '../session';
import { outlineTree, levelCounts } from '../outline';

const STAGES = ['queued', 'generating', 'refining', 'validating', 'storing', 'done'];

function stat(label: string, id: string): HTMLElement {
  return h('div', { class: 'stat' }, h('dt', {}, label), h('dd', { id, 'data-testid': id }, '—'));
}

function set(id: string, text: string): void {
  const el = document.getElementById(id);
  if (el && el.textContent !== text) el.textContent = text;
}

export function jobView(main: HTMLElement, id: number): () => void {
  const controller = new AbortController();
  let alive = true;
  const section = h('section', { class: 'card', 'aria-labelledby': 'job-title' },
    h('h1', { id: 'job-title' }, `Job ${id}`), h('p', { class: 'meta' }, 'Loading…'));
  main.appendChild(section);

  const load = async () => {
    let job: any;
    try {
      job = (await get(`/api/jobs/${id}`)).body.job;
    } catch (e) {
      if (handleAuth(e)) return;
      clear(section);
      const err = e as ApiError;
      section.appendChild(h('h1', { id: 'job-title' }, err.status === 404 ? 'Job not found' : `Job ${id}`));
      section.appendChild(h('p', { role: 'alert', class: 'error' }, err.status === 404
        ? `There is no job ${id} that you can see. It may belong to another client.`
        : `Could not load job ${id}: ${err.message}`));
      section.appendChild(h('p', {}, h('a', { href: '#/jobs' }, 'Back to your jobs')));
      document.title = 'Job not found · Content Granulator';
      return;
    }
    if (!alive) return;
    render(job);
  };

  const render = (job: any) => {
    clear(section);
    section.appendChild(h('h1', { id: 'job-title' }, `Job ${id}: ${job.topic}`));
    section.appendChild(h('p', { class: 'meta' },
      `${job.structureType.replace('_', ' ')} · granularity ${job.granularityLevel} · created ${when(job.createdAt)}`));
    const live = h('div', { class: 'live', id: 'live' },
      h('p', { class: 'status-line' }, 'Status: ', h('strong', { id: 'job-status', 'data-testid': 'job-status' }, job.status),
        ' · stage ', h('strong', { id: 'job-stage' }, job.stage ?? '—')),
      h('div', { class: 'progress-row' },
        h('label', { for: 'job-progress' }, 'Progress'),
        h('progress', { id: 'job-progress', max: 100, value: job.status === 'completed' ? 100 : 0 }),
        h('span', { id: 'job-percent', class: 'num' }, job.status === 'completed' ? '100 %' : '0 %')),
      h('dl', { class: 'stats' },
        stat('Tokens received', 'job-tokens'), stat('Elements received', 'job-elements'),
        stat('Branches done', 'job-branches'), stat('Elapsed', 'job-elapsed'), stat('Time left', 'job-eta')),
      h('ol', { class: 'branches', id: 'job-branch-list', 'aria-label': 'Branches as they arrive' }),
      h('div', { class: 'failure', id: 'job-failure', role: 'alert' }),
      h('div', { class: 'actions', id: 'job-actions' }));
    section.appendChild(live);
    const viewer = h('div', { id: 'viewer' });
    section.appendChild(viewer);
    if (job.status === 'processing') follow_(job);
    else finish(job.status);
  };

  const showStatus = (s: any) => {
    set('job-status', s.status);
    set('job-stage', s.stage ?? '—');
    const pct = s.status === 'completed' ? 100 : Math.max(0, Math.min(100, Number(s.percent ?? s.progress ?? 0)));
    const bar = document.getElementById('job-progress') as HTMLProgressElement | null;
    if (bar && bar.value !== pct) bar.value = pct;
    set('job-percent', `${pct} %`);
    set('job-tokens', s.tokens ? `${int(s.tokens.received)} of ~${int(s.tokens.expected)}` : '—');
    set('job-elements', s.elements ? `${int(s.elements.received)} of ~${int(s.elements.expected)}` : '—');
    set('job-branches', s.branches ? `${s.branches.done} of ${s.branches.total}` : 'single call');
    set('job-elapsed', duration(s.elapsedMs));
    set('job-eta', s.status === 'processing' ? duration(s.estimatedRemainingMs) : '—');
    if (s.status === 'failed') {
      const f = document.getElementById('job-failure');
      if (f) {
        clear(f);
        f.appendChild(h('p', {}, h('strong', {}, 'Failed: '), h('code', { 'data-testid': 'failure-code' }, s.failureCode ?? 'unknown'), ' — ', s.failureReason ?? 'no reason recorded'));
      }
    }
  };

  const addBranch = (data: any) => {
    const list = document.getElementById('job-branch-list');
    if (!list) return;
    const n = data.index ?? data.branch ?? list.children.length + 1;
    const title = data.title ?? data.name ?? data.node?.title ?? data.node?.name ?? '';
    list.appendChild(h('li', {}, `Branch ${n}${data.total ? ` of ${data.total}` : ''}${title ? `: ${title}` : ''}`));
  };

  const follow_ = async (job: any) => {
    if (await supportsCancel()) {
      const actions = document.getElementById('job-actions');
      const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel job');
      cancel.addEventListener('click', async () => {
        cancel.disabled = true;
        try {
          await post(`/api/jobs/${id}/cancel`, {});
          announce('Cancel requested');
        } catch (e) {
          if (!handleAuth(e)) set('job-failure', `Could not cancel: ${(e as Error).message}`);
          cancel.disabled = false;
        }
      });
      actions?.appendChild(cancel);
    }
    let last: any = null;
    try {
      await follow(`/api/jobs/${id}/events`, (e) => {
        if (!alive) return;
        let data: any = null;
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        if (e.event === 'branch') return addBranch(data);
        last = data;
        showStatus(data);
      }, controller.signal);
    } catch (e) {
      if (!alive || handleAuth(e)) return;
    }
    if (!alive) return;
    // The stream ended (or broke): the job's state from /status, polled until it settles.
    for (;;) {
      if (last && last.status !== 'processing') break;
      try {
        last = (await get(`/api/jobs/${id}/status`)).body;
        showStatus(last);
      } catch (e) {
        if (handleAuth(e)) return;
      }
      if (!alive) return;
      if (last?.status !== 'processing') break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    document.getElementById('job-actions') && clear(document.getElementById('job-actions')!);
    finish(last.status);
  };

  const finish = async (status: string) => {
    try {
      const s = (await get(`/api/jobs/${id}/status`)).body;
      if (!alive) return;
      showStatus(s);
    } catch (e) {
      if (handleAuth(e)) return;
    }
    announce(`Job ${id} ${status}`);
    if (status === 'failed') {
      const actions = document.getElementById('job-actions')!;
      const retry = h('button', { type: 'button' }, 'Retry job');
      retry.addEventListener('click', async () => {
        retry.disabled = true;
        try {
          await post(`/api/jobs/${id}/retry`, {}, { Prefer: 'respond-async' });
          if (alive) route_reload();
        } catch (e) {
          if (!handleAuth(e)) set('job-failure', `Retry refused: ${(e as Error).message}`);
          retry.disabled = false;
        }
      });
      actions.appendChild(retry);
    }
    if (status === 'completed') showOutline();
  };

  const route_reload = () => { if (alive) load(); };

  const showOutline = async () => {
    const viewer = document.getElementById('viewer');
    if (!viewer) return;
    viewer.appendChild(h('p', { class: 'meta' }, 'Loading the outline…'));
    let job: any, stored: any, validation: any = null;
    try {
      [job, stored] = await Promise.all([
        get(`/api/jobs/${id}`).then((r) => r.body),
        get(`/api/jobs/${id}/structure`).then((r) => r.body),
      ]);
      validation = await get(`/api/validation/history?job_id=${id}&limit=1`).then((r) => r.body.results?.[0] ?? null).catch(() => null);
    } catch (e) {
      if (handleAuth(e)) return;
      clear(viewer);
      viewer.appendChild(h('p', { class: 'error', role: 'alert' }, `Could not load the outline: ${(e as Error).message}`));
      return;
    }
    if (!alive) return;
    clear(viewer);
    viewer.appendChild(outlineSection(id, job, stored, validation));
  };

  load();
  return () => { alive = false; controller.abort(); };
}

function outlineSection(id: number, detail: any, stored: any, validation: any): HTMLElement {
  const job = detail.job ?? {};
  const json = JSON.stringify(stored.structure, null, 2);
  const tree = outlineTree(stored.structureType, stored.structure);
  const copyNote = h('span', { class: 'meta', 'aria-live': 'polite', id: 'copy-note' });
  const copy = h('button', { type: 'button', class: 'secondary' }, 'Copy JSON');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(json);
      copyNote.textContent = 'Copied.';
    } catch {
      copyNote.textContent = 'The browser refused the clipboard; use Download.';
    }
  });
  const download = h('button', { type: 'button', class: 'secondary' }, 'Download JSON');
  download.addEventListener('click', () => {
    const url = URL.createObjectURL(new Blob([json], { type: 'application/json' }));
    const a = h('a', { href: url, download: `job-${id}-${stored.structureType}.json` });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  });
  const expand = h('button', { type: 'button', class: 'secondary' }, 'Expand all');
  const collapse = h('button', { type: 'button', class: 'secondary' }, 'Collapse all');
  expand.addEventListener('click', () => tree.querySelectorAll('details').forEach((d) => (d.open = true)));
  collapse.addEventListener('click', () => tree.querySelectorAll('details').forEach((d) => (d.open = false)));
  const counts = levelCounts(stored.structureType, stored.structure).map((c) => `${c.count} × ${c.label.toLowerCase()}`).join(', ');
  const tokens = job.tokensUsed ?? {};
  const q = job.qualityScore;
  const report = h('dl', { class: 'stats' },
    h('div', { class: 'stat' }, h('dt', {}, 'Stored'), h('dd', { 'data-testid': 'storage-tier' }, stored.source)),
    h('div', { class: 'stat' }, h('dt', {}, 'Quality score'), h('dd', { 'data-testid': 'quality' }, quality(q))),
    h('div', { class: 'stat' }, h('dt', {}, 'Cost'), h('dd', { 'data-testid': 'cost' }, money(job.costUsd))),
    h('div', { class: 'stat' }, h('dt', {}, 'Tokens'), h('dd', {}, `${int(tokens.input)} in / ${int(tokens.output)} out`)),
    h('div', { class: 'stat' }, h('dt', {}, 'Model'), h('dd', {}, job.model ?? '—')),
    h('div', { class: 'stat' }, h('dt', {}, 'Elements'), h('dd', { 'data-testid': 'elements' }, int(job.totalElements))),
    h('div', { class: 'stat' }, h('dt', {}, 'Word target'), h('dd', { 'data-testid': 'words' }, job.estimatedTotalWords ? `${int(job.estimatedTotalWords)} words` : '—')),
    h('div', { class: 'stat' }, h('dt', {}, 'Template'), h('dd', {}, job.templateName ?? 'default')),
    h('div', { class: 'stat' }, h('dt', {}, 'Took'), h('dd', {}, duration(job.processingTimeMs))));
  const validationView = validation
    ? h('p', { 'data-testid': 'validation' }, `Validation (level ${validation.level ?? validation.validationLevel ?? '?'}): ${validation.passed ? 'passed' : 'did not pass'}, ${validation.accuracyPercentage ?? '—'} % against a threshold of ${validation.threshold ?? '—'} %`)
    : h('p', { 'data-testid': 'validation', class: 'meta' }, job.validationPassed === true ? 'Validation: passed.' : job.validationPassed === false ? 'Validation: did not pass.' : 'Validation: not run for this job.');
  const words = wordTable(detail, stored);
  return h('section', { class: 'viewer', 'aria-labelledby': 'outline-title' },
    h('h2', { id: 'outline-title' }, 'Outline'),
    report,
    validationView,
    h('p', { class: 'meta' }, counts),
    h('div', { class: 'actions' }, expand, collapse, copy, download, copyNote),
    tree,
    words);
}

/// Word targets by level, when the job's result carries wordCountEstimates.
function wordTable(detail: any, _stored: any): HTMLElement | null {
  const est = detail.wordCountEstimates ?? detail.job?.wordCountEstimates ?? detail.output?.wordCountEstimates ?? detail.job?.summary?.wordCountEstimates;
  if (!est || typeof est !== 'object') return null;
  const rows = Object.entries(est).filter(([, v]) => typeof v === 'number');
  if (!rows.length) return null;
  return h('table', { class: 'words' },
    h('caption', {}, 'Word targets'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Part'), h('th', { scope: 'col' }, 'Words'))),
    h('tbody', {}, ...rows.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', { class: 'num' }, int(v as number))))));
}

export { STAGES, call };
