'use strict';
// StateListener: a value shared through one key (replace), late joiners.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useServer } = require('../lib/server');
const {
  driftdb, collector, openDb, closeDb, closeAllDbs, newRoom,
} = require('../lib/client');

const server = useServer();
server.onCleanup(closeAllDbs);

function initSeen(db, key) {
  const msgs = collector();
  db.messageListener.addListener(msgs.push);
  return () => msgs.waitUntil((items) => items.some((m) => m.type === 'init' && m.key === key), `init of ${key}`);
}

async function listener(db, key) {
  const seen = collector();
  const waitInit = initSeen(db, key);
  const state = new driftdb.StateListener({ db, key, callback: seen.push });
  state.subscribe();
  await waitInit();
  return { state, seen };
}

const deepEq = (a, b) => {
  try { assert.deepStrictEqual(a, b); return true; } catch { return false; }
};

test('StateListener shares state between a JSON and a CBOR client; late joiners get it', { timeout: 20000 }, async () => {
  const room = await newRoom(server.base);
  const dbA = await openDb(room.socket_url, false);
  const dbB = await openDb(room.socket_url, true);
  const a = await listener(dbA, 'state');
  const b = await listener(dbB, 'state');
  assert.deepStrictEqual(a.seen.items, [], 'an empty key gives no initial callback');

  const first = { color: 'red', n: 1, list: [1, 2.5, 'three'], ok: true };
  a.state.setStateOptimistic(first);
  assert.deepStrictEqual(a.seen.items, [first], 'the setter sees its own value at once');
  await b.seen.waitCount(1, 'first state at B');
  assert.deepStrictEqual(b.seen.items, [first]);

  const second = { color: 'blue', n: 2, nested: { ünï: 'cødé' } };
  b.state.setStateOptimistic(second);
  await a.seen.waitCount(2, 'second state at A');
  assert.deepStrictEqual(a.seen.items, [first, second]);
  assert.deepStrictEqual(b.seen.items, [first, second]);

  // A burst is debounced by the client (20 ms): the other side ends on the
  // last value and never sees anything that was not set.
  const burst = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => ({ color: 'green', n: 10 + i }));
  for (const v of burst) a.state.setStateOptimistic(v);
  const last = burst[burst.length - 1];
  await b.seen.waitUntil((items) => deepEq(items[items.length - 1], last), 'last burst value at B');
  for (const v of b.seen.items.slice(2)) {
    assert.ok(burst.some((x) => deepEq(x, v)), `B saw ${JSON.stringify(v)}, which was never set`);
  }

  // Late joiners of both encodings get exactly the current state from the replay.
  for (const cbor of [false, true]) {
    const dbC = await openDb(room.socket_url, cbor);
    const c = await listener(dbC, 'state');
    assert.deepStrictEqual(c.seen.items, [last]);
    c.state.destroy();
    closeDb(dbC);
  }

  // The stream holds just that one value (replace).
  const http = new driftdb.HttpConnection(room.http_url);
  const got = await http.send({ type: 'get', key: 'state' });
  assert.equal(got.type, 'init');
  assert.equal(got.data.length, 1);
  assert.deepStrictEqual(got.data[0].value.v, last);

  a.state.destroy();
  b.state.destroy();
  closeDb(dbA);
  closeDb(dbB);
});
