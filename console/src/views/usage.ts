// Usage: today's spend against the tier's daily cap, spend and tokens per day
// (a small SVG bar chart), quality and success rate (/api/stats,
// /api/economy/stats, and the caps /help publishes).
import { credential, get } from '../api';
import { h, svg, money, int, quality, percent } from '../dom';
import { handleAuth } from '../session';

const DAYS = 14;

function chart(daily: { day: string; cost: number; tokens: number }[]): SVGElement {
  const w = 560, hgt = 180, pad = 28, bw = (w - pad * 2) / Math.max(1, daily.length);
  const maxCost = Math.max(...daily.map((d) => d.cost), 1e-9);
  const maxTokens = Math.max(...daily.map((d) => d.tokens), 1);
  const g = svg('svg', { viewBox: `0 0 ${w} ${hgt}`, role: 'img', 'aria-labelledby': 'chart-title chart-desc', class: 'chart' },
    svg('title', { id: 'chart-title' }, `Spend and tokens per day, last ${daily.length} days`),
    svg('desc', { id: 'chart-desc' }, daily.map((d) => `${d.day}: ${money(d.cost)}, ${int(d.tokens)} tokens`).join('; ')));
  g.appendChild(svg('line', { x1: pad, y1: hgt - pad, x2: w - pad, y2: hgt - pad, class: 'axis' }));
  daily.forEach((d, i) => {
    const x = pad + i * bw;
    const ch = ((hgt - pad * 2) * d.cost) / maxCost;
    const th = ((hgt - pad * 2) * d.tokens) / maxTokens;
    g.appendChild(svg('rect', { x: x + bw * 0.1, y: hgt - pad - ch, width: bw * 0.38, height: ch, class: 'bar cost' }));
    g.appendChild(svg('rect', { x: x + bw * 0.52, y: hgt - pad - th, width: bw * 0.38, height: th, class: 'bar tokens' }));
    if ((daily.length - 1 - i) % 2 === 0 || daily.length < 8) g.appendChild(svg('text', { x: x + bw / 2, y: hgt - pad + 14, class: 'tick' }, d.day.slice(5)));
  });
  return g;
}

function lastDays(n: number): string[] {
  const out: string[] = [];
  const now = Date.now();
  for (let i = n - 1; i >= 0; i--) out.push(new Date(now - i * 86400000).toISOString().slice(0, 10));
  return out;
}

export function usageView(main: HTMLElement): () => void {
  let alive = true;
  const section = h('section', { class: 'card', 'aria-labelledby': 'usage-title' }, h('h1', { id: 'usage-title' }, 'Usage'), h('p', { class: 'meta' }, 'Loading…'));
  main.appendChild(section);
  (async () => {
    let stats: any, economy: any, help: any;
    try {
      [stats, economy, help] = await Promise.all([
        get('/api/stats').then((r) => r.body),
        get(`/api/economy/stats?days=${DAYS}`).then((r) => r.body),
        fetch('/help', { cache: 'no-store' }).then((r) => r.json()).catch(() => null),
      ]);
    } catch (e) {
      if (!handleAuth(e)) section.appendChild(h('p', { class: 'error', role: 'alert' }, `Could not load usage: ${(e as Error).message}`));
      return;
    }
    if (!alive) return;
    section.lastChild?.remove();
    const byDay = new Map<string, any>();
    for (const d of economy.daily ?? []) byDay.set(String(d.day ?? d.date).slice(0, 10), d);
    const daily = lastDays(DAYS).map((day) => {
      const d = byDay.get(day) ?? {};
      return { day, cost: Number(d.costUsd ?? 0), tokens: Number(d.tokensInput ?? 0) + Number(d.tokensOutput ?? 0) };
    });
    const today = daily[daily.length - 1];
    // The API does not report an API key's KAM tier; a session pays at the
    // default tier (README), so only a session's cap is known for sure.
    const tiers: any[] = help?.money?.tiers ?? [];
    const tier = stats.tier ?? (credential()?.kind === 'session' ? help?.money?.defaultTier : undefined);
    const cap = tiers.find((t: any) => t.tier === tier)?.dailySpendCapUsd;
    const share = cap ? Math.min(100, (today.cost / cap) * 100) : 0;
    section.appendChild(h('div', { class: 'today' },
      h('h2', {}, 'Today (UTC)'),
      h('p', { 'data-testid': 'today-spend', class: 'big' }, `${money(today.cost)} spent today`, cap ? ` of ${money(cap)} (${tier} tier daily cap)` : ''),
      cap ? h('div', { class: 'progress-row' }, h('label', { for: 'cap-meter' }, 'Share of the cap'),
        h('meter', { id: 'cap-meter', min: 0, max: 100, value: share.toFixed(1), high: 80 }), h('span', { class: 'num' }, `${share.toFixed(1)} %`)) : null,
      !cap && tiers.length ? h('p', { 'data-testid': 'caps' }, 'Daily caps by tier: ', tiers.map((t) => `${t.tier} ${money(t.dailySpendCapUsd)}`).join(', '), '. Your API key\'s tier is set in the Key Account Manager.') : null,
      h('p', { class: 'meta' }, `${int(today.tokens)} tokens today.`, stats.scope ? ` Scope: ${stats.scope}.` : '')));
    const rate = stats.successRate;
    const averageQuality = stats.averageQualityScore;
    section.appendChild(h('dl', { class: 'stats' },
      h('div', { class: 'stat' }, h('dt', {}, 'Jobs'), h('dd', { 'data-testid': 'jobs-total' }, int(stats.jobs?.total))),
      h('div', { class: 'stat' }, h('dt', {}, 'Success rate'), h('dd', { 'data-testid': 'success-rate' }, percent(rate))),
      h('div', { class: 'stat' }, h('dt', {}, 'Average quality'), h('dd', { 'data-testid': 'avg-quality' }, quality(averageQuality))),
      h('div', { class: 'stat' }, h('dt', {}, 'Total cost'), h('dd', {}, money(stats.costUsd))),
      h('div', { class: 'stat' }, h('dt', {}, 'Tokens'), h('dd', {}, `${int(stats.tokens?.input)} in / ${int(stats.tokens?.output)} out`))));
    section.appendChild(h('h2', {}, `Spend and tokens per day (last ${DAYS} days)`));
    section.appendChild(h('p', { class: 'legend' }, h('span', { class: 'swatch cost' }), ' spend ', h('span', { class: 'swatch tokens' }), ' tokens (each scaled to its own maximum)'));
    section.appendChild(h('div', { class: 'chart-wrap' }, chart(daily)));
  })();
  return () => { alive = false; };
}
