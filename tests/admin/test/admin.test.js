'use strict';
// The admin page in headless Chromium against a 3-node cluster: it lists the members with
// their figures, opens a room from #room=ID with its entries, shows a push made afterwards
// without a reload, sends a push from its form, shows nothing without the right token, and
// raises no script error. It writes a screenshot to $ADMIN_SCREENSHOT.
//
// Also checks that /metrics counts pushes exactly across the cluster: 5 pushes, +5 summed
// over the nodes, whichever node they arrived at.

const path = require('node:path');
const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const puppeteer = require('puppeteer-core');
const { useCluster } = require(path.join(__dirname, '..', '..', 'compat', 'lib', 'cluster'));

const TOKEN = 'admin-page-test-token-5d2e';
const WAIT_MS = 10000;

const cluster = useCluster(['a', 'b', 'c'], ['--admin-token', TOKEN]);
let browser;

before(async () => {
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    // Root in a container has no user namespace for Chromium's sandbox.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
});

after(async () => {
  if (browser) await browser.close();
});

async function post(base, route, body, headers = {}) {
  const res = await fetch(`${base}${route}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.text() };
}

function push(key, value, type = 'append') {
  return { type: 'push', key, value, action: { type } };
}

// The sum over the nodes of one sample of /metrics.
async function clusterSample(name, labels) {
  let total = 0;
  const want = labels ? `${name}{${labels}} ` : `${name} `;
  for (const n of cluster.nodes) {
    const text = await (await fetch(`${n.base}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(want));
    assert.ok(line, `${n.name} has no sample ${want}\n${text}`);
    total += Number(line.slice(want.length));
  }
  return total;
}

// A page that records every script error and failed console message.
async function openPage(url) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const errors = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  await page.goto(url, { waitUntil: 'load' });
  return { page, errors };
}

test('/metrics counts 5 pushes as 5 across the cluster', async () => {
  const [a, b, c] = cluster.nodes;
  const room = JSON.parse((await post(a.base, '/new')).body).room;
  const before = await clusterSample('driftd_pushes_total', 'action="append"');
  const latencyBefore = await clusterSample('driftd_push_latency_seconds_count');
  for (const [i, n] of [a, b, c, a, b].entries()) {
    const res = await post(n.base, `/room/${room}/send`, push('k', i));
    assert.equal(res.status, 200, res.body);
  }
  assert.equal(await clusterSample('driftd_pushes_total', 'action="append"'), before + 5);
  assert.equal(await clusterSample('driftd_push_latency_seconds_count'), latencyBefore + 5);
  assert.equal(await clusterSample('driftd_cluster_members', 'state="up"'), 9, 'three nodes see three up');
});

test('the admin page shows the cluster and a room, live', async () => {
  const [a] = cluster.nodes;
  const room = JSON.parse((await post(a.base, '/new')).body).room;
  for (let i = 1; i <= 3; i++) {
    assert.equal((await post(a.base, `/room/${room}/send`, push('chat', { n: i, text: `hello ${i}` }))).status, 200);
  }
  assert.equal((await post(a.base, `/room/${room}/send`, push('cursor', { x: 10, y: 20 }, 'replace'))).status, 200);
  const owner = (await (await fetch(`${a.base}/cluster/room/${room}`)).json()).owner;

  const { page, errors } = await openPage(`${a.base}/admin#token=${TOKEN}&room=${room}`);

  // The members, each with its figures.
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#members tbody tr')];
    return rows.length === 3 && rows.every((r) => r.querySelector('.state').textContent === 'up'
      && r.querySelector('.rooms').textContent !== '—');
  }, { timeout: WAIT_MS });
  const members = await page.$$eval('#members tbody tr', (rows) => rows.map((r) => r.dataset.member).sort());
  assert.deepEqual(members, ['a', 'b', 'c']);
  assert.equal(await page.evaluate(() => location.hash.includes('token')), false,
    'the token leaves the address bar');

  // The room, with its keys and entries.
  await page.waitForFunction(() => document.querySelectorAll('#keys tr[data-key="chat"] li').length === 3,
    { timeout: WAIT_MS });
  assert.equal(await page.$eval('#room-id', (e) => e.textContent), room);
  assert.ok((await page.$eval('#room-owner', (e) => e.textContent)).startsWith(owner));
  assert.equal(await page.$eval('#keys tr[data-key="chat"] .size', (e) => e.textContent), '3');
  assert.equal(await page.$eval('#keys tr[data-key="cursor"] li', (e) => e.textContent),
    '#4{"x":10,"y":20}');
  await page.waitForFunction(() => document.getElementById('feed-state').textContent === 'open',
    { timeout: WAIT_MS });

  // A push from elsewhere appears without a reload, in the live list and in its key.
  const b = cluster.nodes[1];
  assert.equal((await post(b.base, `/room/${room}/send`, push('chat', { n: 4, text: 'from b' }))).status, 200);
  await page.waitForFunction(() => [...document.querySelectorAll('#live li')]
    .some((li) => li.textContent.includes('"from b"')), { timeout: WAIT_MS });
  await page.waitForFunction(() => document.querySelector('#keys tr[data-key="chat"] .size').textContent === '4',
    { timeout: WAIT_MS });

  // The page's own form sends a push with any action: a relay shows in the live list only.
  await page.type('#push-key', 'presence');
  await page.select('#push-action', 'relay');
  await page.$eval('#push-value', (e) => { e.value = '{"user":"admin"}'; });
  await page.click('#push-form button[type=submit]');
  await page.waitForFunction(() => [...document.querySelectorAll('#live li[data-kind="relay"]')]
    .some((li) => li.textContent.includes('"user":"admin"')), { timeout: WAIT_MS });
  assert.match(await page.$eval('#push-result', (e) => e.textContent), /^sent/);

  // Rates need two samples of the figures: wait for a refresh that shows pushes/s.
  await page.waitForFunction(() => [...document.querySelectorAll('#members tbody .pushes')]
    .every((td) => td.textContent !== '—'), { timeout: WAIT_MS });
  if (process.env.ADMIN_SCREENSHOT) {
    await page.screenshot({ path: process.env.ADMIN_SCREENSHOT, fullPage: true });
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test('without the right token the page shows no cluster data', async () => {
  const [, , c] = cluster.nodes;
  for (const fragment of ['', '#token=wrong-token']) {
    const { page, errors } = await openPage(`${c.base}/admin${fragment}`);
    await page.waitForFunction(() => !document.getElementById('auth').hidden, { timeout: WAIT_MS });
    assert.equal(await page.$eval('#content', (e) => e.hidden), true);
    assert.equal(await page.$$eval('#members tbody tr', (rows) => rows.length), 0);
    if (fragment) {
      assert.match(await page.$eval('#auth-error', (e) => e.textContent), /token/);
    }
    // The form takes the right one.
    await page.type('#token-input', TOKEN);
    await page.click('#token-form button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#members tbody tr').length === 3,
      { timeout: WAIT_MS });
    // The browser logs the 401 of a wrong token as a failed resource; nothing else may fail.
    assert.deepEqual(errors.filter((e) => !e.includes('401')), []);
    await page.close();
  }
});
