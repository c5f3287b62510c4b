'use strict';
// Reducer with compaction: a counter shared by a JSON and a CBOR client with a
// small sizeThreshold, so that the clients compact the stream while writing.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useServer } = require('../lib/server');
const {
  driftdb, collector, openDb, closeDb, closeAllDbs, newRoom, poll, withTimeout,
} = require('../lib/client');

const server = useServer();
server.onCleanup(closeAllDbs);

const KEY = 'counter';
const ROUNDS = 60;

function counter(state, action) {
  return state + action.add;
}

async function makeReducer(db) {
  const msgs = collector();
  db.messageListener.addListener(msgs.push);
  const states = collector();
  const reducer = new driftdb.Reducer({
    key: KEY, reducer: counter, initialValue: 0, sizeThreshold: 3, db, callback: states.push,
  });
  reducer.subscribe();
  await msgs.waitUntil((items) => items.some((m) => m.type === 'init' && m.key === KEY), 'init of the counter');
  return { reducer, states, msgs };
}

// Replays a retained stream the way the Compactor does.
function fold(data) {
  let state = 0;
  for (const { value } of data) {
    if (value.reset !== undefined) state = value.reset;
    else state = counter(state, value.apply);
  }
  return state;
}

test('Reducer: two clients converge through compaction; a late joiner agrees', { timeout: 30000 }, async () => {
  const room = await newRoom(server.base);
  const dbA = await openDb(room.socket_url, false);
  const dbB = await openDb(room.socket_url, true);
  const a = await makeReducer(dbA);
  const b = await makeReducer(dbB);

  let total = 0;
  for (let i = 1; i <= ROUNDS; i++) {
    a.reducer.dispatch({ add: i });
    b.reducer.dispatch({ add: 1000 });
    total += i + 1000;
  }
  assert.equal(total, (ROUNDS * (ROUNDS + 1)) / 2 + ROUNDS * 1000);

  // Converged: every action is confirmed by the server on both sides.
  const confirmed = (r) => r.reducer.compactor.lastConfirmedState === total;
  await poll(() => confirmed(a) && confirmed(b), `both reducers to confirm ${total}`, 15000);
  // The client only reports confirmed state when a message of the other
  // client arrives (its own echoes are skipped as already applied), so the
  // app-visible state of a side may lag; one no-op action from each side
  // makes both report the confirmed total.
  a.reducer.dispatch({ add: 0 });
  b.reducer.dispatch({ add: 0 });
  await a.states.waitUntil((s) => s[s.length - 1] === total, `A's callback to report ${total}`);
  await b.states.waitUntil((s) => s[s.length - 1] === total, `B's callback to report ${total}`);
  await poll(() => a.reducer.compactor.lastConfirmedSeq === b.reducer.compactor.lastConfirmedSeq
    && a.reducer.compactor.lastConfirmedSeq >= 2 * ROUNDS + 2, 'both sides to confirm the no-ops');
  assert.equal(a.reducer.compactor.lastConfirmedSeq, 2 * ROUNDS + 2, 'one seq per action, none for compact');
  for (const r of [a, b]) {
    assert.ok(r.msgs.items.every((m) => m.type !== 'error'), 'no error messages');
  }

  // Both clients compacted: they were told the stream size and sent compact.
  const sizes = [...a.msgs.items, ...b.msgs.items].filter((m) => m.type === 'stream_size');
  assert.ok(sizes.length > 0, 'stream_size reached the writers');

  // The retained stream was compacted: a reset first, fewer entries than
  // actions, seqs increasing, and folding it gives the total.
  const http = new driftdb.HttpConnection(room.http_url);
  const got = await withTimeout(http.send({ type: 'get', key: KEY }), 5000, 'HTTP get');
  const { data } = got;
  assert.equal(got.type, 'init');
  assert.equal(got.key, KEY);
  assert.ok(data.length < 2 * ROUNDS, `retained ${data.length} entries for ${2 * ROUNDS} actions`);
  assert.ok(data[0].value.reset !== undefined, `first entry ${JSON.stringify(data[0])} is a reset`);
  assert.equal(typeof data[0].value.reset, 'number');
  for (let i = 1; i < data.length; i++) {
    assert.ok(data[i].seq > data[i - 1].seq, `seqs increase: ${JSON.stringify(data.map((d) => d.seq))}`);
  }
  assert.ok(data[data.length - 1].seq === 2 * ROUNDS + 2, 'the last entry is the last action');
  assert.equal(fold(data), total, `the retained stream folds to the total: ${JSON.stringify(data)}`);

  // Late joiners (both encodings) start from the compacted stream.
  for (const cbor of [false, true]) {
    const dbC = await openDb(room.socket_url, cbor);
    const c = await makeReducer(dbC);
    assert.equal(c.reducer.compactor.lastConfirmedState, total);
    assert.equal(c.states.last(), total);
    const init = c.msgs.items.find((m) => m.type === 'init');
    assert.ok(init.data.length < 2 * ROUNDS);
    c.reducer.destroy();
    closeDb(dbC);
  }
  a.reducer.destroy();
  b.reducer.destroy();
  closeDb(dbA);
  closeDb(dbB);
});
