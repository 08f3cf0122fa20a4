// Admin (admin sessions only): templates create/update/delete through
// POST /api/admin/templates, and the analytics of /api/admin/analytics.
import { ApiError, get, post } from '../api';
import { h, clear, money, int, quality, percent } from '../dom';
import { handleAuth } from '../session';

const TYPES = ['course', 'quiz', 'novel', 'workflow', 'knowledge_map', 'learning_path'];

function input(id: string, label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement): HTMLElement {
  control.id = id;
  control.setAttribute('name', id);
  control.setAttribute('aria-describedby', `${id}-error`);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, h('p', { class: 'field-error', id: `${id}-error` }));
}

const FIELD_OF: Record<string, string> = {
  'template.templateName': 't-name', 'template.structureType': 't-type', 'template.description': 't-desc',
  'template.aiPromptTemplate': 't-prompt', 'template.complexityLevel': 't-complexity', 'template.targetAudience': 't-audience',
};

export function adminView(main: HTMLElement, admin: boolean): () => void {
  let alive = true;
  if (!admin) {
    main.appendChild(h('section', { class: 'card' }, h('h1', {}, 'Admin'), h('p', { role: 'alert' }, 'Only admin sessions can open this screen. Sign in with an admin session token.')));
    return () => {};
  }
  const list = h('tbody', {});
  const status = h('p', { class: 'meta', id: 'admin-status', role: 'status' });
  const name = h('input', { type: 'text', maxlength: 64, autocomplete: 'off' });
  const type = h('select', {}, ...TYPES.map((t) => h('option', { value: t }, t.replace('_', ' '))));
  const desc = h('input', { type: 'text', maxlength: 500, autocomplete: 'off' });
  const prompt = h('textarea', { rows: 4 });
  const complexity = h('select', {}, ...[1, 2, 3, 4, 5].map((n) => h('option', { value: n, selected: n === 3 }, String(n))));
  const audience = h('input', { type: 'text', maxlength: 200, autocomplete: 'off' });
  const formError = h('p', { class: 'error', role: 'alert', id: 'template-error' });
  const create = h('button', { type: 'submit', value: 'create' }, 'Create');
  const update = h('button', { type: 'submit', value: 'update', class: 'secondary' }, 'Update');
  const remove = h('button', { type: 'submit', value: 'delete', class: 'danger' }, 'Delete');
  const form = h('form', { class: 'template-form', novalidate: true, 'aria-labelledby': 'tpl-form-title' },
    h('h2', { id: 'tpl-form-title' }, 'Create or edit a template'),
    h('div', { class: 'grid2' },
      input('t-name', 'Template name', name), input('t-type', 'Structure type', type),
      input('t-desc', 'Description', desc), input('t-complexity', 'Complexity level', complexity),
      input('t-audience', 'Target audience', audience)),
    input('t-prompt', 'AI prompt template', prompt),
    formError,
    h('div', { class: 'actions' }, create, update, remove));
  const analytics = h('div', { id: 'analytics' }, h('p', { class: 'meta' }, 'Loading analytics…'));
  main.appendChild(h('section', { class: 'card', 'aria-labelledby': 'admin-title' },
    h('h1', { id: 'admin-title' }, 'Admin'),
    h('h2', {}, 'Templates'),
    status,
    h('div', { class: 'table-wrap' }, h('table', { class: 'templates' },
      h('caption', { class: 'visually-hidden' }, 'Active templates'),
      h('thead', {}, h('tr', {}, ...['Name', 'Type', 'Description'].map((c) => h('th', { scope: 'col' }, c)), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      list)),
    form,
    h('h2', {}, 'Analytics (30 days)'),
    analytics));

  const fill = (t: any) => {
    name.value = t.templateName ?? '';
    type.value = t.structureType ?? 'course';
    desc.value = t.description ?? '';
    prompt.value = t.aiPromptTemplate ?? '';
    complexity.value = String(t.complexityLevel ?? 3);
    audience.value = t.targetAudience ?? '';
    name.focus();
  };
  const loadTemplates = async () => {
    try {
      const r = await get('/api/templates');
      if (!alive) return;
      clear(list);
      for (const t of r.body.templates ?? []) {
        const edit = h('button', { type: 'button', class: 'secondary small', 'aria-label': `Edit ${t.templateName}` }, 'Edit');
        edit.addEventListener('click', () => fill(t));
        list.appendChild(h('tr', { 'data-template': t.templateName },
          h('td', {}, t.templateName), h('td', {}, String(t.structureType).replace('_', ' ')), h('td', {}, t.description ?? ''), h('td', {}, edit)));
      }
      status.textContent = `${r.body.count ?? (r.body.templates ?? []).length} active templates.`;
    } catch (e) {
      if (!handleAuth(e)) status.textContent = `Could not load templates: ${(e as Error).message}`;
    }
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const action = ((ev as SubmitEvent).submitter as HTMLButtonElement | null)?.value ?? 'create';
    formError.textContent = '';
    for (const p of Array.from(form.querySelectorAll('.field-error'))) p.textContent = '';
    const template: Record<string, unknown> = { templateName: name.value };
    if (action !== 'delete') {
      Object.assign(template, { structureType: type.value, description: desc.value, aiPromptTemplate: prompt.value, complexityLevel: Number(complexity.value) });
      if (audience.value.trim()) template.targetAudience = audience.value;
    }
    try {
      await post('/api/admin/templates', { action, template });
      // Said once the list shows the change.
      await loadTemplates();
      status.textContent = action === 'delete' ? `Template ${template.templateName} deleted.` : `Template ${template.templateName} ${action === 'create' ? 'created' : 'updated'}.`;
    } catch (e) {
      if (handleAuth(e)) return;
      const err = e as ApiError;
      const slot = err.field && FIELD_OF[err.field] ? document.getElementById(`${FIELD_OF[err.field]}-error`) : null;
      if (slot) slot.textContent = err.message;
      formError.textContent = `Not saved: ${err.message}`;
    }
  });
  (async () => {
    await loadTemplates();
    try {
      const a = (await get('/api/admin/analytics?days=30')).body;
      if (!alive) return;
      clear(analytics);
      analytics.appendChild(h('div', { class: 'table-wrap' }, h('table', {},
        h('caption', {}, 'Per-template performance'),
        h('thead', {}, h('tr', {}, ...['Template', 'Type', 'Jobs', 'Success', 'Quality', 'Avg cost'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ...(a.templates ?? []).map((t: any) => h('tr', {},
          h('td', {}, t.templateName), h('td', {}, t.structureType), h('td', { class: 'num' }, int(t.jobs)),
          h('td', { class: 'num' }, percent(t.successRate, 0)),
          h('td', { class: 'num' }, quality(t.averageQualityScore)),
          h('td', { class: 'num' }, money(t.averageCostUsd))))))));
      const types = (a.structureTypes ?? []).map((s: any) => `${s.structureType ?? s.type}: ${s.jobs ?? s.count}`).join(', ');
      if (types) analytics.appendChild(h('p', {}, `Jobs by type: ${types}`));
      const recs = a.recommendations ?? [];
      if (recs.length) analytics.appendChild(h('ul', { 'aria-label': 'Recommendations' }, ...recs.map((r: any) => h('li', {}, typeof r === 'string' ? r : r.message ?? JSON.stringify(r)))));
    } catch (e) {
      if (!handleAuth(e)) { clear(analytics); analytics.appendChild(h('p', { class: 'error' }, `Could not load analytics: ${(e as Error).message}`)); }
    }
  })();
  return () => { alive = false; };
}
