// The console in a real browser: Debian's Chromium (headless), driven by
// playwright-core, against the worker in `wrangler dev` and the mock AI
// provider streaming at a real token rate. Every step asserts what a person
// sees (text, counts, states); each main screen is screenshot into OUT and
// checked with axe-core (no serious or critical violation).
//
//   node tests/browser/console.mjs OUT      (GRANULATOR_URL and MOCK_URL set: ./test.sh browser layer)
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BASE = process.env.GRANULATOR_URL;
const MOCK = process.env.MOCK_URL;
const OUT = process.argv[2];
if (!BASE || !MOCK || !OUT) {
  console.error('browser: GRANULATOR_URL, MOCK_URL and an OUT directory are required (run it through ./test.sh)');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
mkdirSync(OUT, { recursive: true });

let passed = 0;
let failed = 0;
const axeReport = {};
function check(name, ok, detail = '') {
  if (ok) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`);
  }
}
// The console's money format (console/src/dom.ts), to compare what it shows with the API.
const usd = (n) => (n === 0 ? '$0' : `$${n.toFixed(n >= 1 ? 2 : n >= 0.01 ? 4 : 6)}`);
const unique = (p) => `${p}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;

async function api(method, path, who, body, extra = {}) {
  const headers = { 'Content-Type': 'application/json', ...extra };
  if (who?.key) headers['X-API-Key'] = who.key;
  if (who?.session) headers['x-bitware-session-token'] = who.session;
  const r = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: r.status, body: json, headers: r.headers };
}
async function script(key, steps) {
  const r = await fetch(`${MOCK}/__mock/script`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ key, steps }) });
  if (!r.ok) throw new Error(`mock script: ${r.status}`);
}
const CLIENT = { key: 'dev-client-key' };
const OTHER = { key: 'dev-other-key' };
const ADMIN = { session: 'dev-admin-session' };
const USER = { session: 'dev-user-session' };

const profile = mkdtempSync(join(tmpdir(), 'granulator-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = context.pages()[0] ?? (await context.newPage());
const cspErrors = [];
const pageErrors = [];
page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) cspErrors.push(m.text()); });
page.on('pageerror', (e) => pageErrors.push(String(e)));
const requests = [];
page.on('request', (r) => requests.push(r.url()));

async function shot(name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}
async function axe(name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }));
  });
  axeReport[name] = result;
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(`axe: ${name} has no serious or critical violation`, bad.length === 0, JSON.stringify(bad));
}
const text = (sel) => page.locator(sel).first().innerText();
async function waitText(sel, re, timeout = 15000) {
  try {
    await page.locator(sel).first().filter({ hasText: re }).waitFor({ timeout });
    return true;
  } catch {
    return false;
  }
}
async function signIn(kind, value) {
  await page.goto(`${BASE}/console/#/signin`);
  await page.locator(kind === 'session' ? '#kind-session' : '#kind-key').check();
  await page.fill('#credential', value);
  await page.click('button[type=submit]');
}
// Sign in and land on New job. An outage of the credential check (the KAM
// stand-in timing out on a loaded machine: a 503, which the page says) is
// tried again, as a person would; a refusal is a failure.
async function signInOk(kind, value) {
  for (let attempt = 1; attempt <= 3; attempt++) {
    await signIn(kind, value);
    const outcome = await Promise.race([
      page.locator('h1', { hasText: 'New job' }).waitFor({ timeout: 30000 }).then(() => 'in', () => 'timeout'),
      page.locator('#signin-error', { hasText: /could not be checked|not accepted|Could not sign in/ }).waitFor({ timeout: 30000 }).then(() => 'error', () => 'timeout'),
    ]);
    if (outcome === 'in') return;
    const message = await text('#signin-error');
    console.log(`note: sign-in attempt ${attempt} with a ${kind} did not get in: ${message}`);
    if (!/could not be checked/.test(message)) throw new Error(`sign-in with a ${kind} failed: ${message}`);
  }
  throw new Error(`sign-in with a ${kind}: the credential could not be checked 3 times`);
}
async function signOut() {
  await page.click('#signout');
  await page.locator('h1', { hasText: 'Sign in' }).waitFor();
}

try {
  // ---- Served: the console is static under /console/, the API is unchanged.
  const res = await page.goto(`${BASE}/console/`);
  const csp = res.headers()['content-security-policy'] ?? '';
  check('GET /console/ is the console page', res.status() === 200 && (await page.title()).includes('Content Granulator'), `${res.status()}`);
  check("the page's CSP allows scripts from its own origin only", /script-src 'self'/.test(csp) && !/unsafe-inline|unsafe-eval|https?:/.test(csp), csp);
  const js = await fetch(`${BASE}/console/app.js`);
  check('the script has the CSP too', (js.headers.get('content-security-policy') ?? '').includes("default-src 'none'"));
  for (const [path, field] of [['/', 'service'], ['/health', 'checks'], ['/help', 'routes'], ['/openapi.json', 'openapi']]) {
    const r = await fetch(BASE + path);
    const body = await r.json().catch(() => null);
    check(`GET ${path} is still the worker's JSON`, body && field in body, `${r.status}`);
  }
  const notFound = await api('GET', '/api/nope', CLIENT);
  check('an unknown /api path is still the worker\'s JSON 404', notFound.status === 404 && notFound.body?.code, JSON.stringify(notFound.body));

  // ---- Sign in: a bad credential, each kind, sign out.
  await signIn('apiKey', 'not-a-real-key');
  check('signed out, the page offers no screen but sign in', (await page.locator('#nav').isHidden()) && (await page.locator('#signout').isHidden()));
  check('a wrong API key says it was not accepted', await waitText('#signin-error', /API key was not accepted/), await text('#signin-error'));
  await shot('01-sign-in-error');
  await axe('sign in');
  await signIn('session', 'expired-or-wrong-session');
  check('a wrong session token says it was not accepted', await waitText('#signin-error', /session token was not accepted/), await text('#signin-error'));
  await signInOk('apiKey', CLIENT.key);
  check('an API key signs in', (await text('#who')).includes('an API key') && (await page.locator('#nav').isVisible()));
  check('a client sees no Admin link', await page.locator('#nav-admin').isHidden());
  const stored = await page.evaluate(() => JSON.stringify(sessionStorage));
  check('the credential is in sessionStorage, not in the URL', stored.includes('dev-client-key') && !page.url().includes('dev-client-key'));
  await signOut();
  check('signing out says so', (await text('#signin-error')).includes('Signed out'));
  check('signing out forgets the credential', !(await page.evaluate(() => JSON.stringify(sessionStorage))).includes('dev-client-key'));
  await signInOk('session', USER.session);
  check('a user session signs in', (await text('#who')).includes('a session token') && !(await text('#who')).includes('admin'));
  await signOut();
  await signInOk('session', ADMIN.session);
  check('an admin session signs in and sees Admin', (await text('#who')).includes('(admin)') && (await page.locator('#nav-admin').isVisible()));
  await signOut();

  // ---- New job: the estimate, then the API's own 400 next to its field.
  await signInOk('apiKey', CLIENT.key);
  check('the estimate shows tokens and cost before submitting', await waitText('#estimate', /about [\d,]+ tokens .*\$/), await text('#estimate'));
  const templates = await page.locator('#templateName option').allInnerTexts();
  const apiTemplates = (await api('GET', '/api/templates?structure_type=course', CLIENT)).body.templates.map((t) => t.templateName);
  check('the template list is /api/templates of the type', apiTemplates.every((t) => templates.includes(t)) && templates.length === apiTemplates.length + 1, `${templates} vs ${apiTemplates}`);
  await page.fill('#topic', '   ');
  await page.click('button[type=submit]');
  check("a blank topic shows the API's 400 next to Topic", await waitText('#topic-error', /input\.topic/), await text('#topic-error'));
  check('the topic is marked invalid', (await page.getAttribute('#topic', 'aria-invalid')) === 'true');
  await page.fill('#topic', 'Budget check');
  await page.fill('#maxCostUsd', '-1');
  await page.click('button[type=submit]');
  check("a negative budget shows the API's 400 next to Budget", await waitText('#maxCostUsd-error', /maxCostUsd/), await text('#maxCostUsd-error'));
  await page.fill('#maxCostUsd', '');
  await page.setViewportSize({ width: 375, height: 800 });
  await page.waitForTimeout(200);
  const formWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  check('the new job form fits 375 px without a horizontal scroll', formWidth <= 375, `${formWidth}`);
  await shot('02-new-job-375px');
  await page.setViewportSize({ width: 1280, height: 900 });
  await shot('02-new-job');
  await axe('new job');

  // ---- Live job: a granularity-5 fan-out at model speed; progress and branches advance.
  const fanTopic = unique('Browser fan-out');
  const slow = { kind: 'valid', measured: true, tokensPerSecond: 120, ttftMs: 300 };
  await script(fanTopic, Array.from({ length: 40 }, () => slow));
  await page.fill('#topic', fanTopic);
  await page.selectOption('#granularityLevel', '5');
  await page.selectOption('#strategy', 'fanout');
  await page.click('button[type=submit]');
  await page.waitForURL(/#\/jobs\/\d+$/);
  const fanId = Number(page.url().split('/').pop());
  await page.locator('#job-progress').waitFor();
  await page.evaluate(() => {
    window.__shift = 0;
    new PerformanceObserver((l) => { for (const e of l.getEntries()) if (!e.hadRecentInput) window.__shift += e.value; }).observe({ type: 'layout-shift', buffered: false });
  });
  const seen = [];
  let midShot = false;
  let shiftWhileRunning = null;
  for (let i = 0; i < 600; i++) {
    const s = await page.evaluate(() => ({
      status: document.getElementById('job-status')?.textContent,
      value: document.getElementById('job-progress')?.value,
      percent: document.getElementById('job-percent')?.textContent,
      branches: document.getElementById('job-branches')?.textContent,
      tokens: document.getElementById('job-tokens')?.textContent,
      cancel: [...document.querySelectorAll('#job-actions button')].filter((b) => b.textContent === 'Cancel job').length,
      shift: window.__shift,
    }));
    seen.push(s);
    if (s.status === 'processing') shiftWhileRunning = s.shift;
    if (!midShot && s.status === 'processing' && s.value > 0 && /^\d+ of \d+$/.test(s.branches ?? '')) {
      await shot('03-live-job');
      await axe('live job');
      midShot = true;
    }
    if (s.status !== 'processing') break;
    await page.waitForTimeout(250);
  }
  const running = seen.filter((s) => s.status === 'processing');
  const values = running.map((s) => s.value);
  check('the job runs for a while in the live view', running.length >= 4, `${running.length} samples`);
  check('the progress bar advances before completion', values.some((v) => v > 0 && v < 100) && new Set(values).size >= 3, JSON.stringify(values));
  check('the progress bar never goes back', values.every((v, i) => i === 0 || v >= values[i - 1]), JSON.stringify(values));
  const done = running.map((s) => /^(\d+) of (\d+)$/.exec(s.branches ?? '')).filter(Boolean);
  check('the branch counter advances before completion', done.some((m) => Number(m[1]) > 0 && Number(m[1]) < Number(m[2])) && new Set(done.map((m) => m[1])).size >= 2, JSON.stringify(running.map((s) => s.branches)));
  const tokens = running.map((s) => Number((s.tokens ?? '0').split(' ')[0].replace(/,/g, '')));
  check('the tokens received count rises while the model streams', tokens.some((t, i) => i > 0 && t > tokens[i - 1]), JSON.stringify(tokens));
  check('the page does not shift while progress updates', shiftWhileRunning !== null && shiftWhileRunning < 0.01, `CLS ${shiftWhileRunning}`);
  check('the job ends completed', await waitText('#job-status', /^completed$/, 30000), await text('#job-status'));
  check('the progress bar ends at 100', await waitText('#job-percent', /^100 %$/), await text('#job-percent'));
  const total = Number((await text('#job-branches')).split(' of ')[1]);
  check('every branch is done at the end', (await text('#job-branches')) === `${total} of ${total}` && total >= 3, await text('#job-branches'));
  const cancelShown = await page.locator('button', { hasText: 'Cancel job' }).count();
  const hasCancel = Boolean((await (await fetch(`${BASE}/openapi.json`)).json()).paths['/api/jobs/{id}/cancel']);
  check('Cancel is offered only when the worker has a cancel route', hasCancel || cancelShown === 0);
  check('the worker has a cancel route, offered while the job runs', hasCancel && running.some((s) => s.cancel > 0), JSON.stringify(running.map((s) => s.cancel)));
  check('Cancel is gone once the job has ended', cancelShown === 0, `${cancelShown}`);

  // ---- Outline viewer: the fan-out's outline, then one outline of each storage tier.
  await page.locator('#outline-title').waitFor({ timeout: 20000 });
  check('the finished fan-out shows its outline as modules', /\d+ modules/.test(await text('[data-testid=outline-count]')), await text('[data-testid=outline-count]'));
  await shot('04-outline-viewer');
  await axe('outline viewer');
  const tierJobs = {};
  for (const [tier, counts, pad] of [['inline', [3, 2, 1], 0], ['kv', [12, 5, 4], 0], ['r2', [12, 5, 4], 600]]) {
    const topic = unique(`Tier ${tier}`);
    await script(topic, [{ kind: 'valid', counts, pad }]);
    const r = await api('POST', '/api/execute', CLIENT, { action: 'granulate', input: { topic, structureType: 'course', granularityLevel: 5 }, config: { strategy: 'single' } });
    if (r.status !== 200) { check(`a ${tier} outline is made`, false, JSON.stringify(r.body)); continue; }
    tierJobs[tier] = r.body.output.jobId;
    check(`the ${tier} job is stored ${tier}`, r.body.metadata.storageTier === tier, r.body.metadata.storageTier);
    await page.goto(`${BASE}/console/#/jobs/${tierJobs[tier]}`);
    await page.locator('#outline-title').waitFor({ timeout: 20000 });
    check(`the viewer says the ${tier} outline is stored ${tier}`, (await text('[data-testid=storage-tier]')) === tier);
    check(`the ${tier} outline shows ${counts[0]} modules`, (await text('[data-testid=outline-count]')) === `${counts[0]} modules`, await text('[data-testid=outline-count]'));
    const first = page.locator('.outline > ol > li > details').first();
    check(`the ${tier} outline starts collapsed`, !(await first.evaluate((d) => d.open)));
    await first.locator(':scope > summary').focus();
    await page.keyboard.press('Enter');
    check(`Enter expands the first module of the ${tier} outline`, await first.evaluate((d) => d.open));
    const lessons = first.locator(':scope > .node-body > ol > li > details > summary .kind');
    check(`the expanded module lists ${counts[1]} lessons`, (await lessons.count()) === counts[1] && (await lessons.first().innerText()).toLowerCase() === 'lesson 1', `${await lessons.count()}`);
    check(`the ${tier} outline shows its cost and quality`, /\$/.test(await text('[data-testid=cost]')) && /\/ 100|—/.test(await text('[data-testid=quality]')));
    if (tier === 'inline') {
      const structure = (await api('GET', `/api/jobs/${tierJobs[tier]}/structure`, CLIENT)).body.structure;
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("Download JSON")')]);
      const saved = JSON.parse(readFileSync(await download.path(), 'utf8'));
      check('Download JSON saves the outline the API stores', JSON.stringify(saved) === JSON.stringify(structure) && download.suggestedFilename() === `job-${tierJobs[tier]}-course.json`, download.suggestedFilename());
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
      await page.click('button:has-text("Copy JSON")');
      await page.locator('#copy-note', { hasText: 'Copied.' }).waitFor();
      const copied = await page.evaluate(() => navigator.clipboard.readText());
      check('Copy JSON puts the outline on the clipboard', JSON.stringify(JSON.parse(copied)) === JSON.stringify(structure));
      await page.click('button:has-text("Expand all")');
      const closed = await page.locator('.outline details:not([open])').count();
      check('Expand all opens every node', closed === 0 && (await page.locator('.outline details[open]').count()) === 3 + 3 * 2 + 3 * 2 * 1, `${closed} closed`);
    }
    if (tier === 'r2') {
      await page.setViewportSize({ width: 375, height: 800 });
      await page.waitForTimeout(200);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      check('the viewer fits 375 px without a horizontal scroll', width <= 375, `${width}`);
      await shot('05-outline-375px');
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  }

  // ---- Jobs: a failed job, filtered, retried; paging.
  const failTopic = unique('Browser failure');
  // Both providers refuse the request (OpenAI, then Anthropic): the job fails; a retry then succeeds.
  await script(failTopic, [{ kind: 'status', code: 400 }, { kind: 'status', code: 400 }]);
  const failed_ = await api('POST', '/api/execute', CLIENT, { action: 'granulate', input: { topic: failTopic, structureType: 'quiz', granularityLevel: 2 }, config: { strategy: 'single' } });
  const failId = failed_.body?.details?.jobId ?? (await api('GET', '/api/jobs?status=failed&limit=1', CLIENT)).body.jobs?.[0]?.id;
  check('a job the provider refuses fails', failed_.status >= 400 && failId, JSON.stringify(failed_.body));
  await page.goto(`${BASE}/console/#/jobs?status=failed`);
  await page.locator('#jobs-summary', { hasText: /Showing/ }).waitFor();
  const failedRows = page.locator('tbody tr');
  const statuses = await failedRows.locator('.badge').allInnerTexts();
  check('the failed filter shows only failed jobs', statuses.length > 0 && statuses.every((s) => s === 'failed'), JSON.stringify(statuses));
  check('a failed job has a Retry button', (await page.locator(`tr[data-job="${failId}"] button`, { hasText: 'Retry' }).count()) === 1);
  await page.goto(`${BASE}/console/#/jobs/${failId}`);
  check('the failed job shows its failure code and reason', await waitText('#job-failure', /Failed: \S+ — .+/), await text('#job-failure'));
  await page.goto(`${BASE}/console/#/jobs?status=failed`);
  await page.locator(`tr[data-job="${failId}"] button`, { hasText: 'Retry' }).click();
  await page.waitForURL(new RegExp(`#/jobs/${failId}$`));
  check('a retried job runs again and completes', await waitText('#job-status', /^completed$/, 60000), await text('#job-status'));
  // Enough jobs for a second page.
  for (let i = 0; i < 6; i++) await api('POST', '/api/execute', CLIENT, { action: 'granulate', input: { topic: unique('Paging'), structureType: 'quiz', granularityLevel: 1 } });
  await page.goto(`${BASE}/console/#/jobs`);
  await page.locator('#jobs-summary', { hasText: /Showing/ }).waitFor();
  const all = (await api('GET', '/api/jobs?limit=1', CLIENT)).body.total;
  check('the jobs list counts every job of the caller', (await text('#jobs-summary')) === `Showing 1–${Math.min(10, all)} of ${all} jobs`, await text('#jobs-summary'));
  check('the jobs list shows 10 a page', (await page.locator('tbody tr').count()) === Math.min(10, all));
  await shot('06-jobs');
  await axe('jobs');
  check('there is a second page', all > 10, `${all} jobs`);
  await page.click('a[rel=next]');
  await page.locator('#jobs-summary', { hasText: /Showing 11/ }).waitFor();
  check('Next shows the second page', (await text('#jobs-summary')) === `Showing 11–${Math.min(20, all)} of ${all} jobs` && (await text('.pager')).includes('Page 2 of'), await text('#jobs-summary'));
  const firstOnPage2 = Number(await page.locator('tbody tr').first().getAttribute('data-job'));
  const apiPage2 = (await api('GET', '/api/jobs?limit=10&offset=10', CLIENT)).body.jobs[0].id;
  check('page 2 starts with the 11th newest job', firstOnPage2 === apiPage2, `${firstOnPage2} vs ${apiPage2}`);
  await page.goto(`${BASE}/console/#/jobs/${tierJobs.inline}`);
  await page.locator('#outline-title').waitFor();
  await page.click('#signout');

  // ---- Another client cannot see the job.
  await signInOk('apiKey', OTHER.key);
  await page.goto(`${BASE}/console/#/jobs/${tierJobs.inline}`);
  check("another client's job shows Job not found", await waitText('h1', /^Job not found$/), await text('h1'));
  check("and nothing of the job's outline", (await page.locator('#outline-title').count()) === 0);
  await signOut();

  // ---- Usage: today's spend.
  await signInOk('apiKey', CLIENT.key);
  await page.goto(`${BASE}/console/#/usage`);
  await page.locator('[data-testid=today-spend]').waitFor();
  const econ = (await api('GET', '/api/economy/stats?days=14', CLIENT)).body;
  const today = new Date().toISOString().slice(0, 10);
  const row = (econ.daily ?? []).find((d) => String(d.day ?? d.date).startsWith(today));
  const spend = Number(row?.costUsd ?? 0);
  const shown = await text('[data-testid=today-spend]');
  const expected = usd(spend);
  check("the usage page shows today's spend", spend > 0 && shown.startsWith(`${expected} spent today`), `${shown} vs ${expected}`);
  check("an API key sees the daily cap of every tier", /basic \$[\d.]+, standard \$[\d.]+/.test(await text('[data-testid=caps]')), await text('main'));
  const stats = (await api('GET', '/api/stats', CLIENT)).body;
  check('the usage page shows the job count of /api/stats', (await text('[data-testid=jobs-total]')) === stats.jobs.total.toLocaleString('en-US'));
  const pct = (r) => `${(r <= 1 ? r * 100 : r).toFixed(1)} %`;
  const q100 = (q) => `${Math.round(q <= 1 ? q * 100 : q)} / 100`;
  check('the usage page shows the success rate and quality of /api/stats',
    (await text('[data-testid=success-rate]')) === pct(stats.successRate) && (await text('[data-testid=avg-quality]')) === q100(stats.averageQualityScore),
    `${await text('[data-testid=success-rate]')} ${await text('[data-testid=avg-quality]')} vs ${JSON.stringify(stats)}`);
  check('the chart has a bar pair per day', (await page.locator('svg.chart rect').count()) === 28);
  await signOut();
  // A session pays at the default tier: its spend is the client's, against that tier's cap.
  await signInOk('session', USER.session);
  await page.goto(`${BASE}/console/#/usage`);
  await page.locator('[data-testid=today-spend]').waitFor();
  const cap = (await (await fetch(`${BASE}/help`)).json()).money.tiers.find((t) => t.tier === 'standard').dailySpendCapUsd;
  const capText = usd(cap);
  check("a session sees today's spend against the standard tier's cap", (await text('[data-testid=today-spend]')) === `${expected} spent today of ${capText} (standard tier daily cap)`, await text('[data-testid=today-spend]'));
  await shot('07-usage');
  await axe('usage');
  await signOut();

  // ---- Admin edits a template.
  const tname = unique('browser_template').replace(/-/g, '_');
  const created = await api('POST', '/api/admin/templates', ADMIN, { action: 'create', template: { templateName: tname, structureType: 'course', description: 'made by the browser test', aiPromptTemplate: 'Outline {topic} for {audience}.' } });
  check('a template to edit exists', created.status === 201, JSON.stringify(created.body));
  await signInOk('session', ADMIN.session);
  await page.click('#nav-admin');
  await page.locator(`tr[data-template="${tname}"]`).waitFor();
  await page.locator(`tr[data-template="${tname}"] button`, { hasText: 'Edit' }).click();
  check('Edit fills the form with the template', (await page.inputValue('#t-name')) === tname && (await page.inputValue('#t-desc')) === 'made by the browser test');
  await page.fill('#t-desc', 'edited in the console');
  await page.click('button[value=update]');
  check('the update is confirmed', await waitText('#admin-status', new RegExp(`Template ${tname} updated`)), await text('#admin-status'));
  check('the list shows the new description', await waitText(`tr[data-template="${tname}"] td:nth-child(3)`, /^edited in the console$/, 5000), await page.locator(`tr[data-template="${tname}"] td`).nth(2).innerText());
  const after = await api('GET', `/api/templates/${encodeURIComponent(tname)}`, CLIENT);
  check('the API has the new description', after.body?.template?.description === 'edited in the console', JSON.stringify(after.body));
  await page.locator('#analytics table').waitFor();
  check('admin analytics are shown', (await page.locator('#analytics tbody tr').count()) > 0);
  await shot('08-admin');
  await axe('admin');
  await page.fill('#t-name', 'Not A Valid Name!');
  await page.click('button[value=create]');
  check("a template name the API refuses shows its 400 next to the name", await waitText('#t-name-error', /templateName: must be/), await text('#t-name-error'));
  await signOut();
  await signInOk('apiKey', CLIENT.key);
  await page.goto(`${BASE}/console/#/admin`);
  check('a client opening Admin is told it is for admins', await waitText('[role=alert]', /Only admin sessions/), await text('main'));

  // ---- Whole-run properties.
  check('no CSP violation on any screen', cspErrors.length === 0, cspErrors.join(' | '));
  check('no script error on any screen', pageErrors.length === 0, pageErrors.join(' | '));
  const foreign = requests.filter((u) => !u.startsWith(BASE) && !u.startsWith('data:') && !u.startsWith('blob:'));
  check('no request leaves the worker\'s origin', foreign.length === 0, foreign.join(' '));
  check('no credential in any URL the page requested', !requests.some((u) => /dev-(client|other|admin|user)-(key|session)/.test(u)));
} catch (e) {
  check('the browser run finished', false, e.stack ?? String(e));
  await shot('zz-failure').catch(() => {});
} finally {
  writeFileSync(join(OUT, 'axe.json'), JSON.stringify(axeReport, null, 2));
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
const found = Object.entries(axeReport).map(([k, v]) => `${k}: ${v.length ? v.map((x) => `${x.id} (${x.impact})`).join(', ') : 'none'}`);
console.log(`axe violations by screen: ${found.join('; ')}`);
console.log(`browser: ${passed} passed, ${failed} failed; screenshots in ${OUT}`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
