'use strict';
// Hand-written messages through raw sockets: bad input stays on its own
// connection, limits, replay from a seq, subscribe=all and debug=true.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useServer } = require('../lib/server');
const {
  collector, openDb, closeDb, closeAllDbs, newRoom, RawSocket, withTimeout, CBOR,
} = require('../lib/client');

const server = useServer(['--max-frame-bytes', '64k', '--max-body-bytes', '64k']);
const rawSockets = [];
server.onCleanup(() => { for (const s of rawSockets) s.close(); });
server.onCleanup(closeAllDbs);

async function raw(url) {
  const s = await RawSocket.open(url);
  rawSockets.push(s);
  return s;
}

function assertError(msg, what) {
  assert.ok(msg && typeof msg === 'object', `${what}: got ${JSON.stringify(msg)}`);
  assert.deepStrictEqual(Object.keys(msg).sort(), ['message', 'type'], `${what}: ${JSON.stringify(msg)}`);
  assert.equal(msg.type, 'error', `${what}: ${JSON.stringify(msg)}`);
  assert.equal(typeof msg.message, 'string');
  assert.ok(msg.message.length > 0, `${what}: empty error message`);
}

let nonce = 1000;

function nested(depth) {
  let v = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

const BAD_TEXT = [
  'garbage',
  '{"type":"push"',
  '',
  '42',
  '[]',
  '"push"',
  '{}',
  '{"type":"nope"}',
  '{"type":7}',
  '{"type":"get"}',
  '{"type":"get","key":null}',
  '{"type":"get","key":"k","seq":"x"}',
  '{"type":"get","key":"k","seq":-1}',
  '{"type":"get","key":"k","seq":1.5}',
  '{"type":"push","key":"k","value":1}',
  '{"type":"push","key":"k","action":{"type":"append"}}',
  '{"type":"push","key":"k","value":1,"action":{"type":"explode"}}',
  '{"type":"push","key":"k","value":1,"action":"append"}',
  '{"type":"push","key":5,"value":1,"action":{"type":"append"}}',
  '{"type":"push","key":"k","value":1,"action":{"type":"compact"}}',
  '{"type":"push","key":"k","value":1,"action":{"type":"compact","seq":0}}',
  // The room has no seq yet: any compact seq is out of range.
  '{"type":"push","key":"k","value":1,"action":{"type":"compact","seq":1}}',
  JSON.stringify({ type: 'push', key: 'k'.repeat(2048), value: 1, action: { type: 'append' } }),
  // --max-key-bytes (default 1k) counts bytes: 513 two-byte characters.
  JSON.stringify({ type: 'push', key: 'é'.repeat(513), value: 1, action: { type: 'append' } }),
  JSON.stringify({ type: 'get', key: 'é'.repeat(513) }),
  JSON.stringify({ type: 'push', key: 'k', value: nested(200), action: { type: 'append' } }),
];

test('bad text messages get an error, the connection stays open, the room is untouched', { timeout: 20000 }, async () => {
  const room = await newRoom(server.base);
  const good = await openDb(room.socket_url, false);
  const goodMsgs = collector();
  good.messageListener.addListener(goodMsgs.push);
  good.subscribe('k', () => {});
  await goodMsgs.waitCount(1, 'init at the good client');

  for (const cbor of [false, true]) {
    const bad = await raw(cbor ? `${room.socket_url}?cbor=true` : room.socket_url);
    for (const text of BAD_TEXT) {
      bad.sendText(text);
      const frame = await bad.nextFrame(`error for ${text.slice(0, 80)}`);
      assertError(frame.msg, `cbor=${cbor} reply to ${text.slice(0, 80)}`);
      assert.equal(frame.binary, cbor, 'the error comes in the connection format');
    }
    assert.ok(bad.isOpen());
    assert.deepStrictEqual(await bad.drainUntilPong(++nonce), [], 'nothing but errors were sent');
  }

  // A key of exactly 1024 bytes is fine.
  const edge = await raw(room.socket_url);
  edge.sendJson({ type: 'get', key: 'é'.repeat(512) });
  assert.deepStrictEqual(await edge.next('init of a 1024-byte key'), { type: 'init', key: 'é'.repeat(512), data: [] });

  // Nothing changed in the room: the first real push takes seq 1 and the good
  // client saw nothing but its init and that push.
  const writer = await raw(room.socket_url);
  writer.sendJson({ type: 'push', key: 'k', value: 'first', action: { type: 'append' } });
  await goodMsgs.waitCount(2, 'the first push at the good client');
  await withTimeout(good.testLatency(), 5000, 'testLatency');
  assert.deepStrictEqual(goodMsgs.items, [
    { type: 'init', key: 'k', data: [] },
    { type: 'push', key: 'k', value: 'first', seq: 1 },
    { type: 'pong', nonce: null },
  ]);
  closeDb(good);
});

test('bad binary (CBOR) messages get an error and the connection stays open', { timeout: 20000 }, async () => {
  const room = await newRoom(server.base);
  const bad = [
    Buffer.from([0xff]),
    Buffer.from([0x1c]),
    Buffer.from([0xa2, 0x61, 0x61]),
    Buffer.from([0x9f, 0x01]),
    Buffer.alloc(0),
    CBOR.encode('push'),
    CBOR.encode([1, 2, 3]),
    CBOR.encode({ type: 'nope' }),
    CBOR.encode({ type: 'get', key: 'k', seq: -3 }),
    CBOR.encode({ type: 'get', key: new Uint8Array([1, 2]) }),
    CBOR.encode({ type: 'push', key: 'k', value: 1, action: { type: 'explode' } }),
    CBOR.encode({ type: 'push', key: 'k', value: nested(200), action: { type: 'append' } }),
  ];
  for (const cbor of [true, false]) {
    const sock = await raw(cbor ? `${room.socket_url}?cbor=true` : room.socket_url);
    for (const bytes of bad) {
      sock.sendBinary(bytes);
      const frame = await sock.nextFrame(`error for ${bytes.toString('hex').slice(0, 40)}`);
      assertError(frame.msg, `cbor=${cbor} reply to ${bytes.toString('hex').slice(0, 40)}`);
      assert.equal(frame.binary, cbor);
    }
    assert.deepStrictEqual(await sock.drainUntilPong(++nonce, 5000, true), []);
  }
  const http = await fetch(room.http_url, { method: 'POST', body: JSON.stringify({ type: 'get', key: 'k' }) });
  assert.deepStrictEqual(await http.json(), { type: 'init', key: 'k', data: [] });
});

test('frames over --max-frame-bytes close that connection with 1009, others carry on', { timeout: 20000 }, async () => {
  const room = await newRoom(server.base);
  const watcher = await raw(room.socket_url);
  watcher.sendJson({ type: 'get', key: 'big' });
  assert.deepStrictEqual(await watcher.next('init'), { type: 'init', key: 'big', data: [] });

  // Just under the limit (64 KiB) is fine.
  const sender = await raw(room.socket_url);
  const okValue = 'a'.repeat(60 * 1024);
  sender.sendJson({ type: 'push', key: 'big', value: okValue, action: { type: 'append' } });
  assert.deepStrictEqual(await watcher.next('large push'), { type: 'push', key: 'big', value: okValue, seq: 1 });

  const tooBig = 'b'.repeat(70 * 1024);
  sender.sendJson({ type: 'push', key: 'big', value: tooBig, action: { type: 'append' } });
  const closed = await sender.waitClose();
  assert.equal(closed.code, 1009, `close ${JSON.stringify(closed)}`);

  // The room did not take it; the watcher still works.
  const other = await raw(room.socket_url);
  other.sendJson({ type: 'push', key: 'big', value: 'small', action: { type: 'append' } });
  assert.deepStrictEqual(await watcher.next('push after the oversized frame'),
    { type: 'push', key: 'big', value: 'small', seq: 2 });
  assert.deepStrictEqual(await watcher.drainUntilPong(++nonce), []);

});

// driftd --help: "--max-body-bytes SIZE  largest HTTP request body (413 above)".
test('HTTP bodies over --max-body-bytes get 413', { timeout: 20000 }, async () => {
  const room = await newRoom(server.base);
  const body = JSON.stringify({ type: 'push', key: 'big', value: 'b'.repeat(70 * 1024), action: { type: 'append' } });
  const res = await fetch(room.http_url, { method: 'POST', body });
  await res.arrayBuffer();
  assert.equal(res.status, 413);
  // Nothing was pushed.
  const get = await fetch(room.http_url, { method: 'POST', body: JSON.stringify({ type: 'get', key: 'big' }) });
  assert.deepStrictEqual(await get.json(), { type: 'init', key: 'big', data: [] });
});

test('get with seq replays entries after it; get with seq null only subscribes', { timeout: 20000 }, async () => {
  const room = await newRoom(server.base);
  const writer = await raw(room.socket_url);
  for (let i = 1; i <= 5; i++) {
    writer.sendJson({ type: 'push', key: 'r', value: i, action: { type: 'append' } });
  }
  writer.sendJson({ type: 'push', key: 'other', value: 'o', action: { type: 'append' } });
  const replies = await writer.drainUntilPong(++nonce);
  assert.deepStrictEqual(replies, [2, 3, 4, 5].map((size) => ({ type: 'stream_size', key: 'r', size })));

  const reader = await raw(room.socket_url);
  const all = [1, 2, 3, 4, 5].map((i) => ({ seq: i, value: i }));
  for (const [seq, want] of [[undefined, all], [0, all], [3, all.slice(3)], [5, []], [6, []]]) {
    const get = { type: 'get', key: 'r' };
    if (seq !== undefined) get.seq = seq;
    reader.sendJson(get);
    assert.deepStrictEqual(await reader.next(`init after ${seq}`), { type: 'init', key: 'r', data: want });
  }

  // A seq beyond the room's last seq is bad input: an error, no subscription.
  const beyond = await raw(room.socket_url);
  beyond.sendJson({ type: 'get', key: 'r', seq: 1000 });
  assertError(await beyond.next('error for seq 1000'), 'get seq 1000');

  // seq: null subscribes without replaying anything; later pushes arrive.
  const nullReader = await raw(room.socket_url);
  nullReader.sendJson({ type: 'get', key: 'r', seq: null });
  const before = await nullReader.drainUntilPong(++nonce);
  assert.ok(before.length === 0 || (before.length === 1 && before[0].type === 'init' && before[0].data.length === 0),
    `no replay for seq null: ${JSON.stringify(before)}`);
  writer.sendJson({ type: 'push', key: 'r', value: 7, action: { type: 'relay' } });
  assert.deepStrictEqual(await nullReader.next('relay after seq null'), { type: 'push', key: 'r', value: 7, seq: 7 });
  // The reader asked for 'r' several times but gets the relay once.
  assert.deepStrictEqual(await reader.next('relay at the reader'), { type: 'push', key: 'r', value: 7, seq: 7 });
  assert.deepStrictEqual(await reader.drainUntilPong(++nonce), []);
  assert.deepStrictEqual(await beyond.drainUntilPong(++nonce), [], 'the failed get subscribed nothing');
});

test('subscribe=all receives every push of the room without asking', { timeout: 20000 }, async () => {
  const room = await newRoom(server.base);
  const allJson = await raw(`${room.socket_url}?subscribe=all`);
  const allCbor = await raw(`${room.socket_url}?subscribe=all&cbor=true`);
  const keyed = await raw(room.socket_url);
  keyed.sendJson({ type: 'get', key: 'b' });
  assert.deepStrictEqual(await keyed.next('init'), { type: 'init', key: 'b', data: [] });

  const writer = await raw(room.socket_url);
  const pushes = [['a', 'append', 1], ['b', 'replace', { two: 2 }], ['c', 'relay', [3]], ['a', 'append', 'four']];
  for (const [key, action, value] of pushes) {
    writer.sendJson({ type: 'push', key, value, action: { type: action } });
  }
  const want = pushes.map(([key, , value], i) => ({ type: 'push', key, value, seq: i + 1 }));
  for (const sock of [allJson, allCbor]) {
    for (const w of want) assert.deepStrictEqual(await sock.next(`push ${w.seq}`), w);
  }
  assert.deepStrictEqual(await keyed.next('push on b'), want[1]);
  assert.deepStrictEqual(await keyed.drainUntilPong(++nonce), [], 'a keyed connection gets only its key');
  assert.deepStrictEqual(await allJson.drainUntilPong(++nonce), []);

  // Asking for a key on a subscribe=all connection replays it but never
  // doubles delivery.
  allJson.sendJson({ type: 'get', key: 'a' });
  assert.deepStrictEqual(await allJson.next('init of a'),
    { type: 'init', key: 'a', data: [{ seq: 1, value: 1 }, { seq: 4, value: 'four' }] });
  writer.sendJson({ type: 'push', key: 'a', value: 5, action: { type: 'append' } });
  assert.deepStrictEqual(await allJson.next('push 5'), { type: 'push', key: 'a', value: 5, seq: 5 });
  assert.deepStrictEqual(await allJson.drainUntilPong(++nonce), []);
});

for (const cbor of [false, true]) {
  test(`debug=true${cbor ? '&cbor=true' : ''}: init per key on connect and after each change`, { timeout: 20000 }, async () => {
    const room = await newRoom(server.base);
    const writer = await raw(room.socket_url);
    const send = (key, action, value, extra = {}) => writer.sendJson({ type: 'push', key, value, action: { type: action, ...extra } });
    send('x', 'append', 'x1');
    send('x', 'append', 'x2');
    send('y', 'replace', { y: 1 });
    send('y', 'replace', { y: 2 });
    await writer.drainUntilPong(++nonce);

    const debug = await raw(`${room.socket_url}?debug=true${cbor ? '&cbor=true' : ''}`);
    const first = [await debug.nextFrame('debug init 1'), await debug.nextFrame('debug init 2')];
    assert.ok(first.every((f) => f.binary === cbor));
    const inits = first.map((f) => f.msg).sort((p, q) => (p.key < q.key ? -1 : 1));
    assert.deepStrictEqual(inits, [
      { type: 'init', key: 'x', data: [{ seq: 1, value: 'x1' }, { seq: 2, value: 'x2' }] },
      { type: 'init', key: 'y', data: [{ seq: 4, value: { y: 2 } }] },
    ]);
    assert.deepStrictEqual(await debug.drainUntilPong(++nonce), [], 'one init per key');

    send('x', 'append', 'x3');
    assert.deepStrictEqual(await debug.next('init after append'), {
      type: 'init', key: 'x', data: [{ seq: 1, value: 'x1' }, { seq: 2, value: 'x2' }, { seq: 5, value: 'x3' }],
    });
    send('y', 'replace', { y: 3 });
    assert.deepStrictEqual(await debug.next('init after replace'),
      { type: 'init', key: 'y', data: [{ seq: 6, value: { y: 3 } }] });
    send('x', 'relay', 'ephemeral');
    assert.deepStrictEqual(await debug.next('relay as push'), { type: 'push', key: 'x', value: 'ephemeral', seq: 7 });
    send('x', 'compact', { reset: 'x1..x2' }, { seq: 2 });
    assert.deepStrictEqual(await debug.next('init after compact'), {
      type: 'init', key: 'x', data: [{ seq: 2, value: { reset: 'x1..x2' } }, { seq: 5, value: 'x3' }],
    });
    send('z', 'append', 'new key');
    assert.deepStrictEqual(await debug.next('init of a new key'),
      { type: 'init', key: 'z', data: [{ seq: 8, value: 'new key' }] });
    assert.deepStrictEqual(await debug.drainUntilPong(++nonce), []);
  });
}
