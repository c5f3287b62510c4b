'use strict';
// HttpConnection: POST /room/{id}/send with push, get and ping.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useServer } = require('../lib/server');
const {
  driftdb, collector, openDb, closeDb, closeAllDbs, newRoom, withTimeout,
} = require('../lib/client');

const server = useServer();
server.onCleanup(closeAllDbs);

async function subscribed(db, key) {
  const msgs = collector();
  db.messageListener.addListener(msgs.push);
  const values = collector();
  db.subscribe(key, values.push);
  await msgs.waitUntil((items) => items.some((m) => m.type === 'init' && m.key === key), `init of ${key}`);
  return values;
}

const send = (http, msg, what) => withTimeout(http.send(msg), 5000, what);

test('HTTP pushes reach WebSocket subscribers; replies are null or stream_size', { timeout: 20000 }, async () => {
  const room = await newRoom(server.base);
  const http = new driftdb.HttpConnection(room.http_url);
  const jsonDb = await openDb(room.socket_url, false);
  const cborDb = await openDb(room.socket_url, true);
  const atJson = await subscribed(jsonDb, 'h');
  const atCbor = await subscribed(cborDb, 'h');

  const push = (value, action) => ({ type: 'push', key: 'h', value, action: { type: action } });
  assert.deepStrictEqual(await send(http, push({ n: 1 }, 'append'), 'first append'), null);
  assert.deepStrictEqual(await send(http, push({ n: 2 }, 'append'), 'second append'),
    { type: 'stream_size', key: 'h', size: 2 });
  assert.deepStrictEqual(await send(http, push({ n: 3 }, 'append'), 'third append'),
    { type: 'stream_size', key: 'h', size: 3 });
  assert.deepStrictEqual(await send(http, push({ n: 4 }, 'replace'), 'replace'), null);
  assert.deepStrictEqual(await send(http, push({ n: 5 }, 'relay'), 'relay'), null);
  assert.deepStrictEqual(await send(http, push({ n: 6, s: 'ünïcødé' }, 'append'), 'append after replace'),
    { type: 'stream_size', key: 'h', size: 2 });

  const expected = [1, 2, 3, 4, 5, 6].map((n) => ({ seq: n, value: n === 6 ? { n, s: 'ünïcødé' } : { n } }));
  await atJson.waitCount(6, 'six pushes at the JSON subscriber');
  await atCbor.waitCount(6, 'six pushes at the CBOR subscriber');
  assert.deepStrictEqual(atJson.items, expected);
  assert.deepStrictEqual(atCbor.items, expected);

  // get over HTTP answers init with the retained entries (the replace and
  // the append after it), optionally after a given seq.
  assert.deepStrictEqual(await send(http, { type: 'get', key: 'h' }, 'get'),
    { type: 'init', key: 'h', data: [expected[3], expected[5]] });
  assert.deepStrictEqual(await send(http, { type: 'get', key: 'h', seq: 0 }, 'get seq 0'),
    { type: 'init', key: 'h', data: [expected[3], expected[5]] });
  assert.deepStrictEqual(await send(http, { type: 'get', key: 'h', seq: 4 }, 'get seq 4'),
    { type: 'init', key: 'h', data: [expected[5]] });
  assert.deepStrictEqual(await send(http, { type: 'get', key: 'nothing' }, 'get of an empty key'),
    { type: 'init', key: 'nothing', data: [] });

  // A push from a WebSocket client shows up in the next HTTP get.
  jsonDb.send(push('from ws', 'append'));
  await atCbor.waitCount(7, 'WebSocket push');
  assert.deepStrictEqual(atCbor.items[6], { seq: 7, value: 'from ws' });
  assert.deepStrictEqual(await send(http, { type: 'get', key: 'h', seq: 6 }, 'get seq 6'),
    { type: 'init', key: 'h', data: [{ seq: 7, value: 'from ws' }] });
  closeDb(jsonDb);
  closeDb(cborDb);
});

test('HTTP ping returns pong', { timeout: 10000 }, async () => {
  const room = await newRoom(server.base);
  const http = new driftdb.HttpConnection(room.http_url);
  assert.deepStrictEqual(await send(http, { type: 'ping', nonce: 42 }, 'ping 42'), { type: 'pong', nonce: 42 });
  assert.deepStrictEqual(await send(http, { type: 'ping' }, 'ping'), { type: 'pong', nonce: null });
});

test('bad HTTP messages are rejected with 400 and change nothing', { timeout: 10000 }, async () => {
  const room = await newRoom(server.base);
  const http = new driftdb.HttpConnection(room.http_url);
  const bad = [
    { type: 'nope' },
    { type: 'push', key: 'x', value: 1 },
    { type: 'push', key: 'x', value: 1, action: { type: 'explode' } },
    { type: 'push', key: 'x', value: 1, action: { type: 'compact', seq: 5 } },
    { type: 'get', key: 'x', seq: -1 },
    { type: 'get', key: 7 },
    { key: 'x' },
    [1, 2, 3],
    'just a string',
  ];
  for (const msg of bad) {
    await assert.rejects(withTimeout(http.send(msg), 5000, 'bad send'), /^Error: HTTP error 400\b/,
      `HttpConnection.send(${JSON.stringify(msg)})`);
  }
  // The body of a 400 names the problem as an error message.
  for (const body of ['{not json', JSON.stringify({ type: 'nope' }), '']) {
    const res = await fetch(room.http_url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    assert.equal(res.status, 400, `status for body ${JSON.stringify(body)}`);
    const reply = await res.json();
    assert.deepStrictEqual(Object.keys(reply).sort(), ['message', 'type']);
    assert.equal(reply.type, 'error');
    assert.equal(typeof reply.message, 'string');
    assert.ok(reply.message.length > 0);
  }
  // Nothing in the room changed: the first real push takes seq 1.
  assert.deepStrictEqual(await send(http, { type: 'push', key: 'x', value: 'ok', action: { type: 'append' } }, 'good push'), null);
  assert.deepStrictEqual(await send(http, { type: 'get', key: 'x' }, 'get'),
    { type: 'init', key: 'x', data: [{ seq: 1, value: 'ok' }] });

  // An unknown room is a 404.
  const nowhere = new driftdb.HttpConnection(`${server.base}/room/doesnotexist/send`);
  await assert.rejects(withTimeout(nowhere.send({ type: 'ping' }), 5000, 'send to unknown room'),
    /^Error: HTTP error 404\b/);
});
