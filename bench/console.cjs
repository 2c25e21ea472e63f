// The operator console in a real headless Chromium (issue 20; run by .ci/run through
// bench/console.sh). The service runs in JWT mode; a receiver on this machine fails, then is
// fixed. Checks:
//   - the failing receiver's delivery shows as dead, with its error;
//   - replaying it from the dead letters, once the receiver is fixed, turns it delivered; so
//     do a selection of dead letters and a time range of them;
//   - the live tail shows an event committed after the page opened;
//   - a test's page draws the score histogram and the per-question charts;
//   - a learner's token sees nothing of the console.
// With --screenshots DIR, saves a picture of each page there.
//   NODE_PATH=<dir>/node_modules node bench/console.cjs http://127.0.0.1:PORT SECRET [--screenshots DIR]
const { chromium } = require('playwright-core');
const crypto = require('node:crypto');
const http = require('node:http');
const path = require('node:path');

const [base, secret] = process.argv.slice(2, 4);
const shotsAt = process.argv.indexOf('--screenshots');
const shots = shotsAt > 0 ? process.argv[shotsAt + 1] : null;
const API = `${base}/assessment/v1`;
const TENANT = '0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e';
const ORG = '1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d';
const ADMIN = '2b3c4d5e-6f7a-4b2c-9d3e-4f5a6b7c8d9e';

function token(sub, roles) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = enc({ alg: 'HS256', typ: 'JWT' });
  const claims = enc({ sub, tenantId: TENANT, organisationId: ORG, roles, exp: Math.floor(Date.now() / 1000) + 3600 });
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${claims}`).digest('base64url');
  return `${head}.${claims}.${sig}`;
}
const admin = token(ADMIN, ['admin']);
const learnerId = (i) => `9a8b7c6d-5e4f-4a3b-8c2d-${String(i).padStart(12, '0')}`;

async function call(method, p, body, as = admin, expect = [200, 201]) {
  const res = await fetch(`${API}${p}`, {
    method,
    headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => null);
  if (!expect.includes(res.status)) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
  return json && json.result;
}

async function until(what, check, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// A receiver that answers 500 until fixed, then 200.
function receiver() {
  const state = { ok: false, got: 0 };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      state.got += 1;
      res.writeHead(state.ok ? 200 : 500, { 'content-type': 'text/plain' });
      res.end(state.ok ? 'thanks' : 'receiver down');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, state, port: server.address().port })));
}

// A published test with three questions, taken by four learners.
async function takenTest() {
  const test = (await call('POST', '/tests', { title: 'Fractions', type: 'plain', questionsShuffle: false, answersShuffle: false })).testId;
  const section = (await call('POST', '/sections', { testId: test, title: 'S' })).sectionId;
  const qs = [];
  for (const [text, marks] of [['Half of 8', 1], ['A third of 9', 2], ['A quarter of 10', 2]]) {
    qs.push(await call('POST', '/questions', {
      text, type: 'mcq', marks, testId: test, sectionId: section,
      options: [{ text: 'right', isCorrect: true }, { text: 'wrong' }],
    }));
  }
  await call('POST', `/tests/${test}/publish`);
  const sheets = [[0, 0, 0], [0, 0, 1], [0, 1, 1], [1, 1, 1]];
  for (const [i, sheet] of sheets.entries()) {
    const as = token(learnerId(i + 1), ['learner']);
    const attempt = (await call('POST', `/attempts/start/${test}`, undefined, as)).attemptId;
    const answers = qs.map((q, n) => ({ questionId: q.questionId, answer: { selectedOptionIds: [q.options[sheet[n]].questionOptionId] } }));
    await call('POST', `/attempts/${attempt}/answers`, { answers }, as);
    await call('POST', `/attempts/${attempt}/submit`, undefined, as);
  }
  return { test, questions: qs.length };
}

async function signIn(page, tok) {
  await page.goto(`${base}/console`);
  await page.fill('#token', tok);
  await page.click('#connect');
}

(async () => {
  const rx = await receiver();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
  });
  const checks = {};
  try {
    // A webhook that gives up after one try, and an event for it.
    const hook = await call('POST', '/webhooks', {
      name: 'grades receiver', url: `http://127.0.0.1:${rx.port}/hook`, events: ['question.created'], retries: 0,
    });
    await call('POST', '/questions', { text: 'Spare', type: 'essay' });
    const dead = await until('a dead letter', async () => {
      const page = await call('GET', '/webhooks/dead-letters');
      return page.totalElements > 0 && page.content[0];
    });
    const { test, questions } = await takenTest();

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const outside = [];
    page.on('request', (r) => {
      const host = new URL(r.url()).hostname;
      if (host !== '127.0.0.1') outside.push(r.url());
    });
    await signIn(page, admin);

    await page.waitForSelector('#subscriptions tr.subscription');
    const subsText = await page.locator('#subscriptions').innerText();
    checks.subscriptionListed = subsText.includes('grades receiver');
    checks.noSecretShown = !!hook.secret && !(await page.content()).includes(hook.secret);
    if (shots) await page.screenshot({ path: path.join(shots, 'subscriptions.png'), fullPage: true });

    // The dead letter, with its error.
    await page.goto(`${base}/console#/dead`);
    const row = page.locator(`tr.delivery[data-id="${dead.deliveryId}"]`);
    await row.waitFor();
    checks.deadShown = (await row.getAttribute('data-status')) === 'dead';
    const error = await row.locator('td.error').innerText();
    checks.deadErrorShown = /500/.test(error) || /500/.test(await row.innerText());
    await row.click();
    await page.waitForSelector('tr.tries tr.try');
    const tries = await page.locator('tr.tries').innerText();
    // Status, duration and error. (The response's start is not kept for a tenant's webhook
    // while private networks are allowed, as here: it could be an internal page.)
    checks.triesShown = /\b500\b/.test(tries) && /\d+ ms/.test(tries) && tries.includes('HTTP 500');
    if (!checks.triesShown) console.error(`the tries shown: ${tries}`);
    if (shots) await page.screenshot({ path: path.join(shots, 'dead-letters.png'), fullPage: true });

    // Fixed receiver; replay from the page; the delivery turns delivered.
    rx.state.ok = true;
    await row.locator('button.replay').click();
    await page.waitForSelector('#notice:not([hidden])');
    const replayed = await page.locator('#notice').innerText();
    if (!/queued again/.test(replayed)) throw new Error(`the replay answered: ${replayed}`);
    await page.goto(`${base}/console#/deliveries`);
    await page.waitForSelector('#deliveries');
    checks.replayDelivered = await until('the replayed delivery delivered', async () => {
      await page.click('#f-apply'); // the log again, as it is now
      const r = page.locator(`tr.delivery[data-id="${dead.deliveryId}"][data-status="delivered"]`);
      return (await r.count()) === 1;
    });
    if (shots) await page.screenshot({ path: path.join(shots, 'deliveries.png'), fullPage: true });

    // The other dead letters: two replayed as a selection, the rest by a time range.
    await page.goto(`${base}/console#/dead`);
    await page.waitForSelector('#deliveries');
    const left = await page.locator('tr.delivery').count();
    checks.selectionReplayed = false;
    if (left >= 3) {
      const picks = page.locator('tr.delivery input.pick');
      await picks.nth(0).check();
      await picks.nth(1).check();
      await page.click('#replay-selected');
      await page.waitForFunction(() => /^2 deliveries queued again/.test(document.querySelector('#notice').textContent));
      checks.selectionReplayed = true;
    }
    const local = (ms) => {
      const d = new Date(ms);
      const p2 = (n) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}`;
    };
    await until('the selection delivered', async () => (await call('GET', '/webhooks/dead-letters')).totalElements === left - 2);
    await page.goto(`${base}/console#/subscriptions`);
    await page.goto(`${base}/console#/dead`);
    await page.waitForSelector('#deliveries');
    await page.fill('#range-from', local(Date.now() - 3600e3));
    await page.fill('#range-to', local(Date.now() + 3600e3));
    await page.click('#replay-range');
    await page.waitForFunction(() => /dead letters of that range queued again/.test(document.querySelector('#notice').textContent));
    checks.rangeReplayed = await until('every dead letter delivered', async () => (await call('GET', '/webhooks/dead-letters')).totalElements === 0);

    // The live tail: an event committed after the page opened.
    await page.goto(`${base}/console#/live`);
    await page.waitForFunction(() => document.querySelector('#live-state').textContent.startsWith('Listening'));
    const created = await call('POST', '/questions', { text: 'Committed after the page opened', type: 'essay' });
    const live = page.locator('li.event[data-name="question.created"]');
    await live.first().waitFor({ timeout: 15000 });
    checks.liveTailShowsNewEvent = (await live.first().innerText()).includes(created.questionId);
    if (shots) await page.screenshot({ path: path.join(shots, 'live.png'), fullPage: true });

    // A test's charts.
    await page.goto(`${base}/console#/tests/${test}`);
    await page.waitForSelector('svg#histogram rect').catch(async () => {
      throw new Error(`no histogram: ${await page.locator('#notice').innerText()} ${await page.locator('#view').innerHTML()}`);
    });
    checks.histogramDrawn = (await page.locator('svg#histogram rect.bar').count()) === 4;
    checks.facilityDrawn = (await page.locator('svg#facility rect').count()) === questions;
    checks.discriminationDrawn = (await page.locator('svg#discrimination rect').count()) === questions;
    if (shots) await page.screenshot({ path: path.join(shots, 'test-statistics.png'), fullPage: true });
    checks.nothingLeftThisMachine = outside.length === 0;

    // A learner's token: nothing of the console.
    const learner = await (await browser.newContext()).newPage();
    await signIn(learner, token(learnerId(1), ['learner']));
    let sawNothing = true;
    for (const hash of ['#/subscriptions', '#/deliveries', '#/dead', '#/live', `#/tests/${test}`]) {
      await learner.goto(`${base}/console${hash}`);
      await learner.waitForSelector('#notice:not([hidden])');
      const refused = (await learner.locator('#notice').innerText()).includes('admin role');
      const rows = await learner.locator('#view tr, #view li, #view svg').count();
      sawNothing = sawNothing && refused && rows === 0;
    }
    checks.learnerSeesNothing = sawNothing;
    // The token stays in the tab: a new tab of the same browser is asked again.
    const other = await context.newPage();
    await other.goto(`${base}/console`);
    checks.tokenKeptInTabOnly = await other.locator('#login').isVisible();
  } finally {
    await browser.close();
    rx.server.close();
  }
  console.log(JSON.stringify(checks, null, 1));
  const failed = Object.entries(checks).filter(([, ok]) => !ok).map(([k]) => k);
  if (failed.length) {
    console.error(`console checks failed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
