// The outline viewer's tree: each structure type's own levels and labels
// (contracts.md §4), as nested <details> (native, keyboard-operable
// disclosure: Enter/Space on a summary opens and closes it).
import { h } from './dom';

interface Level { key: string; label: string }

/// The child lists of each type, level by level, with a person's word for an item.
export const LEVELS: Record<string, Level[]> = {
  course: [{ key: 'modules', label: 'Module' }, { key: 'lessons', label: 'Lesson' }, { key: 'activities', label: 'Activity' }],
  quiz: [{ key: 'categories', label: 'Category' }, { key: 'questions', label: 'Question' }],
  novel: [{ key: 'acts', label: 'Act' }, { key: 'chapters', label: 'Chapter' }, { key: 'scenes', label: 'Scene' }],
  workflow: [{ key: 'phases', label: 'Phase' }, { key: 'steps', label: 'Step' }, { key: 'tasks', label: 'Task' }],
  knowledge_map: [{ key: 'concepts', label: 'Concept' }, { key: 'subconcepts', label: 'Subconcept' }, { key: 'details', label: 'Detail' }],
  learning_path: [{ key: 'milestones', label: 'Milestone' }, { key: 'skills', label: 'Skill' }, { key: 'activities', label: 'Activity' }],
};

const TITLE_FIELDS = ['title', 'name', 'question', 'description', 'type'];
const WORD_FIELDS = ['wordTarget', 'targetWords', 'targetWordCount', 'wordCount', 'estimatedWords', 'words'];

function titleOf(node: any): string {
  for (const f of TITLE_FIELDS) if (typeof node?.[f] === 'string' && node[f].trim()) return node[f];
  return '(untitled)';
}

function wordsOf(node: any): number | null {
  for (const f of WORD_FIELDS) if (typeof node?.[f] === 'number') return node[f];
  return null;
}

/// The node's own fields worth reading (text, numbers, short lists), not its children.
function facts(node: any, childKey: string | undefined, shown: string): HTMLElement | null {
  const rows: HTMLElement[] = [];
  for (const [k, v] of Object.entries(node ?? {})) {
    if (k === childKey || k === 'id' || WORD_FIELDS.includes(k)) continue;
    if (typeof v === 'string' && v === shown) continue;
    let text: string | null = null;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') text = String(v);
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) text = v.join('; ');
    else if (Array.isArray(v) && v.every((x) => x && typeof x === 'object' && !Array.isArray(x))) {
      text = v.map((x) => Object.values(x).filter((y) => typeof y === 'string' || typeof y === 'number').join(' → ')).join('; ');
    }
    if (text === null || text === '') continue;
    rows.push(h('dt', {}, k), h('dd', {}, text));
  }
  return rows.length ? h('dl', { class: 'facts' }, ...rows) : null;
}

function countLabel(n: number, label: string): string {
  const plural = label.endsWith('y') ? label.slice(0, -1) + 'ies' : label + 's';
  return `${n} ${(n === 1 ? label : plural).toLowerCase()}`;
}

function nodeView(node: any, levels: Level[], depth: number, index: number, path: string): HTMLElement {
  const level = levels[depth];
  const next = levels[depth + 1];
  const children: any[] = next && Array.isArray(node?.[next.key]) ? node[next.key] : [];
  const title = titleOf(node);
  const words = wordsOf(node);
  const summary = h('summary', {},
    h('span', { class: 'kind' }, `${level.label} ${index + 1}`),
    h('span', { class: 'title' }, title),
    children.length ? h('span', { class: 'meta' }, countLabel(children.length, next.label)) : null,
    words !== null ? h('span', { class: 'meta words' }, `${words} words`) : null,
  );
  const body = h('div', { class: 'node-body' }, facts(node, next?.key, title));
  if (children.length) {
    const list = h('ol', { class: 'tree' });
    children.forEach((c, i) => list.appendChild(h('li', {}, nodeView(c, levels, depth + 1, i, `${path}.${i + 1}`))));
    body.appendChild(list);
  }
  return h('details', { 'data-path': path }, summary, body);
}

/// The whole outline: its root fields, then level 1 as a collapsible tree.
export function outlineTree(type: string, structure: any): HTMLElement {
  const levels = LEVELS[type];
  const root = h('div', { class: 'outline' });
  if (!levels || !structure || typeof structure !== 'object') {
    root.appendChild(h('p', {}, `No tree view for structure type “${type}”; the JSON is below.`));
    return root;
  }
  const first = levels[0];
  const items: any[] = Array.isArray(structure[first.key]) ? structure[first.key] : [];
  root.appendChild(h('h3', {}, titleOf(structure)));
  root.appendChild(facts(structure, first.key, titleOf(structure)) ?? h('span'));
  root.appendChild(h('p', { class: 'meta', 'data-testid': 'outline-count' }, countLabel(items.length, first.label)));
  const list = h('ol', { class: 'tree', 'aria-label': `${type.replace('_', ' ')} outline` });
  items.forEach((item, i) => list.appendChild(h('li', {}, nodeView(item, levels, 0, i, String(i + 1)))));
  root.appendChild(list);
  return root;
}

/// How many nodes each level holds (a summary line above the tree).
export function levelCounts(type: string, structure: any): { label: string; count: number }[] {
  const levels = LEVELS[type] ?? [];
  const out: { label: string; count: number }[] = [];
  let nodes: any[] = [structure];
  for (const level of levels) {
    nodes = nodes.flatMap((n) => (Array.isArray(n?.[level.key]) ? n[level.key] : []));
    if (!nodes.length) break;
    out.push({ label: level.label, count: nodes.length });
  }
  return out;
}
