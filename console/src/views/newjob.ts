// New job: the execute request's fields, templates from /api/templates, an
// estimate from /api/economy/estimate as the form changes, and the API's own
// 400 messages next to the field they name (the form does not pre-validate).
import { ApiError, get, post } from '../api';
import { h, money, int, duration } from '../dom';
import { handleAuth } from '../session';

const TYPES: [string, string][] = [
  ['course', 'Course'], ['quiz', 'Quiz'], ['novel', 'Novel'],
  ['workflow', 'Workflow'], ['knowledge_map', 'Knowledge map'], ['learning_path', 'Learning path'],
];

/// API field names → the form field that shows their message.
const FIELD_OF: Record<string, string> = {
  'input.topic': 'topic', 'input.structureType': 'structureType', 'input.templateName': 'templateName',
  'input.granularityLevel': 'granularityLevel', 'input.targetAudience': 'targetAudience',
  'config.strategy': 'strategy', 'config.maxCostUsd': 'maxCostUsd',
  structureType: 'structureType', templateName: 'templateName', granularityLevel: 'granularityLevel', topic: 'topic',
};

function field(id: string, label: string, control: HTMLElement, hint?: string): HTMLElement {
  control.id = id;
  control.setAttribute('name', id);
  control.setAttribute('aria-describedby', `${id}-error${hint ? ` ${id}-hint` : ''}`);
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    control,
    hint ? h('small', { id: `${id}-hint` }, hint) : null,
    h('p', { class: 'field-error', id: `${id}-error` }));
}

export function newJobView(main: HTMLElement): () => void {
  const topic = h('input', { type: 'text', maxlength: 500, autocomplete: 'off', required: true });
  const type = h('select', {}, ...TYPES.map(([v, l]) => h('option', { value: v }, l)));
  const template = h('select', {}, h('option', { value: '' }, 'Default for the type'));
  const granularity = h('select', {}, ...[1, 2, 3, 4, 5].map((n) => h('option', { value: n, selected: n === 3 }, String(n))));
  const audience = h('input', { type: 'text', maxlength: 200, autocomplete: 'off' });
  const strategy = h('select', {},
    h('option', { value: 'auto' }, 'Auto (fan out large outlines)'),
    h('option', { value: 'single' }, 'Single call'),
    h('option', { value: 'fanout' }, 'Fan out (skeleton, then branches)'));
  const budget = h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off', placeholder: 'e.g. 0.50' });
  const estimate = h('div', { class: 'estimate', id: 'estimate', 'aria-live': 'polite' }, 'Estimate: —');
  const formError = h('p', { class: 'error', role: 'alert', id: 'form-error' });
  const submit = h('button', { type: 'submit' }, 'Start job');
  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'new-title' },
    h('h1', { id: 'new-title' }, 'New job'),
    h('div', { class: 'grid2' },
      field('topic', 'Topic', topic),
      field('structureType', 'Structure type', type),
      field('templateName', 'Template', template),
      field('granularityLevel', 'Granularity (1 = brief, 5 = detailed)', granularity),
      field('targetAudience', 'Audience', audience, 'Optional, e.g. “beginners”.'),
      field('strategy', 'Strategy', strategy),
      field('maxCostUsd', 'Budget (USD)', budget, 'Optional: the most this job may cost.')),
    estimate, formError, submit);
  main.appendChild(form);

  let alive = true;
  let estimateSeq = 0;
  const loadTemplates = async () => {
    try {
      const r = await get(`/api/templates?structure_type=${encodeURIComponent(type.value)}`);
      if (!alive) return;
      while (template.options.length > 1) template.remove(1);
      for (const t of r.body.templates ?? []) template.appendChild(h('option', { value: t.templateName }, t.templateName));
    } catch (e) {
      handleAuth(e);
    }
  };
  const refreshEstimate = async () => {
    const seq = ++estimateSeq;
    const body: Record<string, unknown> = { structureType: type.value, granularityLevel: Number(granularity.value) };
    if (template.value) body.templateName = template.value;
    if (topic.value.trim()) body.topic = topic.value;
    try {
      const r = await post('/api/economy/estimate', body);
      if (!alive || seq !== estimateSeq) return;
      const e = r.body.estimate;
      estimate.textContent = `Estimate: about ${int(e.tokens?.total)} tokens (${int(e.expectedElements)} elements), ${money(e.costUsd)}, ${duration(e.timeMs)} with ${e.model}`;
    } catch (e) {
      if (handleAuth(e) || seq !== estimateSeq) return;
      estimate.textContent = `Estimate unavailable: ${(e as Error).message}`;
    }
  };
  const clearErrors = () => {
    formError.textContent = '';
    for (const p of Array.from(form.querySelectorAll('.field-error'))) p.textContent = '';
    for (const c of Array.from(form.querySelectorAll('[aria-invalid]'))) c.removeAttribute('aria-invalid');
  };
  type.addEventListener('change', () => { loadTemplates().then(refreshEstimate); });
  for (const c of [template, granularity]) c.addEventListener('change', refreshEstimate);
  loadTemplates().then(refreshEstimate);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors();
    const input: Record<string, unknown> = { topic: topic.value, structureType: type.value, granularityLevel: Number(granularity.value) };
    if (template.value) input.templateName = template.value;
    if (audience.value.trim()) input.targetAudience = audience.value;
    const config: Record<string, unknown> = { strategy: strategy.value };
    if (budget.value.trim()) {
      const n = Number(budget.value);
      config.maxCostUsd = Number.isFinite(n) ? n : budget.value;
    }
    submit.disabled = true;
    formError.textContent = 'Submitting…';
    try {
      await refreshEstimate();
      const rid = crypto.randomUUID();
      const r = await post('/api/execute', { action: 'granulate', input, config }, { Prefer: 'respond-async', 'X-Request-ID': rid });
      const id = r.body.jobId ?? r.body.output?.jobId;
      location.hash = `#/jobs/${id}`;
    } catch (e) {
      if (handleAuth(e)) return;
      const err = e as ApiError;
      const target = err.field ? FIELD_OF[err.field] : undefined;
      const slot = target ? document.getElementById(`${target}-error`) : null;
      if (slot) {
        slot.textContent = err.message;
        formError.textContent = 'The job was not started: see the highlighted field.';
        const control = document.getElementById(target!)!;
        control.setAttribute('aria-invalid', 'true');
        control.focus();
      } else {
        formError.textContent = `The job was not started: ${err.message}${err.code ? ` (${err.code})` : ''}`;
      }
    } finally {
      submit.disabled = false;
    }
  });
  topic.focus();
  return () => { alive = false; };
}
