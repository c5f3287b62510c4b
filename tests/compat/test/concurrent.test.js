'use strict';
// Concurrent writers on one key: 2 JSON + 2 CBOR writers, 300 appends each as
// fast as they can, two listeners (JSON, CBOR) subscribed before, and a late
// subscriber afterwards.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useServer } = require('../lib/server');
const {
  collector, openDb, closeDb, closeAllDbs, newRoom, poll, withTimeout,
} = require('../lib/client');

const server = useServer();
server.onCleanup(closeAllDbs);

const KEY = 'log';
const WRITERS = [
  { id: 'json-1', cbor: false },
  { id: 'json-2', cbor: false },
  { id: 'cbor-1', cbor: true },
  { id: 'cbor-2', cbor: true },
];
const PER_WRITER = 300;
const TOTAL = WRITERS.length * PER_WRITER;

async function subscribe(db) {
  const msgs = collector();
  db.messageListener.addListener(msgs.push);
  const values = collector();
  db.subscribe(KEY, values.push);
  await msgs.waitUntil((items) => items.some((m) => m.type === 'init' && m.key === KEY), 'init');
  return { msgs, values };
}

function checkOrder(items, who) {
  assert.equal(items.length, TOTAL, `${who} got ${items.length} values`);
  // Only these pushes happen in the room: seqs are exactly 1..TOTAL in order.
  items.forEach((item, i) => {
    if (item.seq !== i + 1) assert.fail(`${who}: item ${i} has seq ${item.seq}, want ${i + 1}`);
  });
  // Each writer's values arrive in its send order, none missing or doubled.
  for (const w of WRITERS) {
    const mine = items.filter((item) => item.value.w === w.id).map((item) => item.value.i);
    assert.deepStrictEqual(mine, Array.from({ length: PER_WRITER }, (_, i) => i), `${who}: order of ${w.id}`);
  }
}

test(`${WRITERS.length} writers x ${PER_WRITER} appends: every listener gets all, gap-free, in order`, { timeout: 60000 }, async () => {
  const room = await newRoom(server.base);
  const listenerJson = await openDb(room.socket_url, false);
  const listenerCbor = await openDb(room.socket_url, true);
  const lj = await subscribe(listenerJson);
  const lc = await subscribe(listenerCbor);

  const writers = await Promise.all(WRITERS.map(async (w) => {
    const db = await openDb(room.socket_url, w.cbor);
    const msgs = collector();
    db.messageListener.addListener(msgs.push);
    return { ...w, db, msgs };
  }));

  // Interleave the writers' sends in one loop so that they race at the server.
  for (let i = 0; i < PER_WRITER; i++) {
    for (const w of writers) {
      w.db.send({ type: 'push', key: KEY, value: { w: w.id, i, pad: 'x'.repeat(i % 17) }, action: { type: 'append' } });
    }
  }

  await lj.values.waitCount(TOTAL, `${TOTAL} values at the JSON listener`, 30000);
  await lc.values.waitCount(TOTAL, `${TOTAL} values at the CBOR listener`, 30000);
  checkOrder(lj.values.items, 'JSON listener');
  checkOrder(lc.values.items, 'CBOR listener');
  assert.deepStrictEqual(lc.values.items, lj.values.items, 'both listeners saw one total order');

  // The writers are not subscribed: each gets only stream_size replies, one
  // per push except the room's very first; the sizes 2..TOTAL each once.
  const replyCount = () => writers.reduce((n, w) => n + w.msgs.items.length, 0);
  await poll(() => replyCount() >= TOTAL - 1, `${TOTAL - 1} stream_size replies in all`, 10000);
  // Every writer's replies are in once its own pong is back.
  for (const w of writers) await withTimeout(w.db.testLatency(), 5000, `${w.id} testLatency`);
  const sizes = [];
  for (const w of writers) {
    const pong = w.msgs.items.pop();
    assert.deepStrictEqual(pong, { type: 'pong', nonce: null });
    for (const m of w.msgs.items) {
      assert.equal(m.type, 'stream_size', `${w.id} got ${JSON.stringify(m)}`);
      assert.equal(m.key, KEY);
      sizes.push(m.size);
    }
    // A writer's own replies grow with its own pushes.
    const own = w.msgs.items.map((m) => m.size);
    for (let i = 1; i < own.length; i++) assert.ok(own[i] > own[i - 1], `${w.id} sizes increase`);
  }
  sizes.sort((x, y) => x - y);
  assert.deepStrictEqual(sizes, Array.from({ length: TOTAL - 1 }, (_, i) => i + 2));

  // A late subscriber's init holds all values in seq order.
  const late = await openDb(room.socket_url, true);
  const lateMsgs = await subscribe(late);
  const init = lateMsgs.msgs.items.find((m) => m.type === 'init');
  assert.equal(init.key, KEY);
  assert.deepStrictEqual(init.data, lj.values.items);

  for (const db of [listenerJson, listenerCbor, late, ...writers.map((w) => w.db)]) closeDb(db);
});
