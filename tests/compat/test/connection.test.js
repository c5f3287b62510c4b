'use strict';
// DbConnection: connect, subscribe, push with each action, exact seq numbers,
// stream_size, replay to a late subscriber, latency test, status, disconnect.
// Run once with a JSON writer and a CBOR observer, once the other way round.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useServer } = require('../lib/server');
const {
  driftdb, collector, openDb, trackDb, closeDb, closeAllDbs, newRoom, withTimeout, WebSocket,
} = require('../lib/client');

const server = useServer();
server.onCleanup(closeAllDbs);

// Records everything a DbConnection receives.
function watch(db) {
  const msgs = collector();
  db.messageListener.addListener(msgs.push);
  return msgs;
}

const isInit = (key) => (items) => items.some((m) => m.type === 'init' && m.key === key);

for (const writerCbor of [false, true]) {
  const name = writerCbor ? 'CBOR writer, JSON observer' : 'JSON writer, CBOR observer';

  test(`DbConnection round trip: ${name}`, { timeout: 20000 }, async () => {
    const room = await newRoom(server.base);

    // Status listener: registered before connect, sees exactly one "connected".
    const writer = trackDb(new driftdb.DbConnection());
    const status = collector();
    writer.statusListener.addListener(status.push);
    const wMsgs = watch(writer);
    const connected = writer.connect(room.socket_url, writerCbor);
    await withTimeout(connected, 5000, 'writer connect');
    const wantUrl = writerCbor ? `${room.socket_url}?cbor=true` : room.socket_url;
    assert.deepStrictEqual(status.items, [
      { connected: true, debugUrl: `https://ui.driftdb.com/?url=${encodeURIComponent(wantUrl)}` },
    ]);
    assert.equal(writer.connection.readyState, WebSocket.OPEN);

    const observer = await openDb(room.socket_url, !writerCbor);
    const oMsgs = watch(observer);

    const wValues = collector();
    const wSizes = collector();
    const oValues = collector();
    const oSizes = collector();
    writer.subscribe('k', wValues.push, wSizes.push);
    observer.subscribe('k', oValues.push, oSizes.push);
    await wMsgs.waitUntil(isInit('k'), 'writer init');
    await oMsgs.waitUntil(isInit('k'), 'observer init');
    assert.deepStrictEqual(wMsgs.items, [{ type: 'init', key: 'k', data: [] }]);
    assert.deepStrictEqual(oMsgs.items, [{ type: 'init', key: 'k', data: [] }]);

    // relay (seq 1, not retained), append (2), append (3: stream holds 2 ->
    // stream_size), replace (4: stream holds 1), append (5: holds 2 -> stream_size).
    const pushes = [
      ['relay', { relayed: 'r0' }],
      ['append', { n: 1, tags: ['a', 'b'] }],
      ['append', { n: 2, nested: { deep: { x: [1, 2, 3] } } }],
      ['replace', 'replaced'],
      ['append', [true, false, null, 7]],
    ];
    for (const [action, value] of pushes) {
      writer.send({ type: 'push', key: 'k', value, action: { type: action } });
    }
    const expected = pushes.map(([, value], i) => ({ seq: i + 1, value }));
    await wValues.waitCount(5, 'five values at the writer');
    await oValues.waitCount(5, 'five values at the observer');
    await wSizes.waitCount(2, 'two stream_size callbacks');

    // testLatency() resolves to a number once the pong is back; the server
    // answers in order, so everything for this connection is in by then.
    const latency = await withTimeout(writer.testLatency(), 5000, 'writer testLatency');
    assert.equal(typeof latency, 'number');
    assert.ok(Number.isFinite(latency) && latency >= 0, `latency ${latency}`);
    const oLatency = await withTimeout(observer.testLatency(), 5000, 'observer testLatency');
    assert.equal(typeof oLatency, 'number');

    assert.deepStrictEqual(wValues.items, expected);
    assert.deepStrictEqual(oValues.items, expected);
    assert.deepStrictEqual(wSizes.items, [2, 2], 'stream_size after the 2nd append and after the append that follows replace');
    assert.deepStrictEqual(oSizes.items, [], 'only the sender gets stream_size');

    const push = (seq) => ({ type: 'push', key: 'k', value: expected[seq - 1].value, seq });
    const size2 = { type: 'stream_size', key: 'k', size: 2 };
    const pong = { type: 'pong', nonce: null };
    assert.deepStrictEqual(wMsgs.items, [
      { type: 'init', key: 'k', data: [] },
      push(1), push(2), push(3), size2, push(4), push(5), size2, pong,
    ]);
    assert.deepStrictEqual(oMsgs.items, [
      { type: 'init', key: 'k', data: [] },
      push(1), push(2), push(3), push(4), push(5), pong,
    ]);

    // A late subscriber (either encoding) replays the retained stream: the
    // replace at seq 4 and the append at seq 5; the relay and the replaced
    // appends are gone.
    for (const lateCbor of [false, true]) {
      const late = await openDb(room.socket_url, lateCbor);
      const lMsgs = watch(late);
      const lValues = collector();
      late.subscribe('k', lValues.push);
      await lMsgs.waitUntil(isInit('k'), 'late init');
      assert.deepStrictEqual(lMsgs.items, [{ type: 'init', key: 'k', data: [expected[3], expected[4]] }]);
      assert.deepStrictEqual(lValues.items, [expected[3], expected[4]]);
      closeDb(late);
    }

    // Disconnect: the socket closes, the client stops listening, and the room
    // carries on for the others (the next seq is 6).
    const wSocket = writer.connection;
    const closed = new Promise((resolve) => wSocket.once('close', (code) => resolve(code)));
    closeDb(writer);
    await withTimeout(closed, 5000, 'writer socket to close');
    assert.equal(wSocket.readyState, WebSocket.CLOSED);
    assert.equal(writer.subscriptions.subscriptions.size, 0);

    observer.send({ type: 'push', key: 'k', value: 'after', action: { type: 'append' } });
    await oValues.waitCount(6, 'push after the writer left');
    assert.deepStrictEqual(oValues.items[5], { seq: 6, value: 'after' });
    closeDb(observer);
  });
}

test('subscribing twice to a key does not double delivery', { timeout: 15000 }, async () => {
  const room = await newRoom(server.base);
  const db = await openDb(room.socket_url);
  const msgs = watch(db);
  const values = collector();
  db.subscribe('twice', values.push);
  db.subscribe('other', () => {});
  db.send({ type: 'get', key: 'twice', seq: 0 });
  await msgs.waitUntil((items) => items.filter((m) => m.type === 'init').length === 3, 'three inits');
  db.send({ type: 'push', key: 'twice', value: 1, action: { type: 'append' } });
  await values.waitCount(1, 'one value');
  await withTimeout(db.testLatency(), 5000, 'testLatency');
  assert.deepStrictEqual(msgs.items, [
    { type: 'init', key: 'twice', data: [] },
    { type: 'init', key: 'other', data: [] },
    { type: 'init', key: 'twice', data: [] },
    { type: 'push', key: 'twice', value: 1, seq: 1 },
    { type: 'pong', nonce: null },
  ]);
  closeDb(db);
});

test('unicode keys work across JSON and CBOR connections', { timeout: 15000 }, async () => {
  const room = await newRoom(server.base);
  const key = 'ключ/🎉 with spaces & "quotes"';
  const jsonDb = await openDb(room.socket_url, false);
  const cborDb = await openDb(room.socket_url, true);
  const atJson = collector();
  const atCbor = collector();
  const cborMsgs = watch(cborDb);
  const jsonMsgs = watch(jsonDb);
  jsonDb.subscribe(key, atJson.push);
  cborDb.subscribe(key, atCbor.push);
  await jsonMsgs.waitUntil(isInit(key), 'JSON init');
  await cborMsgs.waitUntil(isInit(key), 'CBOR init');
  jsonDb.send({ type: 'push', key, value: 'from json', action: { type: 'append' } });
  cborDb.send({ type: 'push', key, value: 'from cbor', action: { type: 'append' } });
  await atJson.waitCount(2, 'two values at JSON');
  await atCbor.waitCount(2, 'two values at CBOR');
  assert.deepStrictEqual(atCbor.items, atJson.items);
  assert.deepStrictEqual(atJson.items.map((v) => v.seq), [1, 2]);
  assert.deepStrictEqual(atJson.items.map((v) => v.value).sort(), ['from cbor', 'from json']);
  closeDb(jsonDb);
  closeDb(cborDb);
});
