'use strict';
// Values through CBOR and JSON connections: byte strings (Uint8Array, CBOR
// tag 64 and plain major type 2), nested objects, floats, negative and large
// integers, unicode, null and booleans, in both directions and in replays.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useServer } = require('../lib/server');
const {
  collector, openDb, closeDb, closeAllDbs, newRoom, RawSocket, CBOR,
} = require('../lib/client');

const server = useServer();
server.onCleanup(closeAllDbs);

// Uint8Array -> { $bytes: [...] } so that deepStrictEqual can tell byte
// strings from arrays of numbers.
function markBytes(v) {
  if (v instanceof Uint8Array) return { $bytes: Array.from(v) };
  if (Array.isArray(v)) return v.map(markBytes);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, markBytes(x)]));
  }
  return v;
}

// Uint8Array -> plain array of numbers: what a JSON reader gets.
function bytesToArrays(v) {
  if (v instanceof Uint8Array) return Array.from(v);
  if (Array.isArray(v)) return v.map(bytesToArrays);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, bytesToArrays(x)]));
  }
  return v;
}

const scalars = {
  floats: [0.1, 1.5, -2.25, 1e300, -1e-300, Math.PI, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, 65504.5],
  negInts: [-1, -24, -25, -255, -256, -257, -65536, -65537, -(2 ** 31), -(2 ** 32), -(2 ** 53 - 1)],
  posInts: [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1],
  strings: ['héllo wörld', '日本語テキスト', 'emoji 🎉👩‍💻', 'quote " backslash \\ newline \n tab \t', '\u2028\u2029', ''],
  unicodeKeys: { 'ключ': 1, '鍵': 2, '': 'empty key' },
  nul: null,
  yes: true,
  no: false,
  emptyObj: {},
  emptyArr: [],
  nested: { a: { b: { c: [1, [2, [3, { d: 'deep' }]]] } }, list: [{ x: 1 }, { y: [null, true] }] },
};

const cborPayload = {
  ...scalars,
  bytes: new Uint8Array([0, 1, 2, 127, 128, 254, 255]),
  emptyBytes: new Uint8Array(0),
  nestedBytes: { inner: [new Uint8Array([9, 8, 7]), 'x'] },
  // cbor-web writes 2^53 (not a safe integer) as a float.
  twoTo53: 2 ** 53,
};

function isInitFor(key) {
  return (items) => items.some((m) => m.type === 'init' && m.key === key);
}

async function subscribed(db, key) {
  const msgs = collector();
  db.messageListener.addListener(msgs.push);
  const values = collector();
  db.subscribe(key, values.push);
  await msgs.waitUntil(isInitFor(key), `init of ${key}`);
  return values;
}

test('CBOR client values reach CBOR clients as bytes and JSON clients as arrays', { timeout: 20000 }, async () => {
  const room = await newRoom(server.base);
  const sender = await openDb(room.socket_url, true);
  const cborReader = await openDb(room.socket_url, true);
  const jsonReader = await openDb(room.socket_url, false);
  const atSender = await subscribed(sender, 'v');
  const atCbor = await subscribed(cborReader, 'v');
  const atJson = await subscribed(jsonReader, 'v');

  sender.send({ type: 'push', key: 'v', value: cborPayload, action: { type: 'append' } });
  await atCbor.waitCount(1, 'value at the CBOR reader');
  await atJson.waitCount(1, 'value at the JSON reader');
  await atSender.waitCount(1, 'value back at the sender');

  const wantCbor = { seq: 1, value: markBytes(cborPayload) };
  const wantJson = { seq: 1, value: bytesToArrays(cborPayload) };
  assert.deepStrictEqual(markBytes(atCbor.items), [wantCbor]);
  assert.deepStrictEqual(markBytes(atSender.items), [wantCbor]);
  assert.ok(atCbor.items[0].value.bytes instanceof Uint8Array);
  assert.deepStrictEqual(atJson.items, [wantJson]);

  // Replays keep the representation: late readers of both kinds.
  const lateCbor = await openDb(room.socket_url, true);
  const lateJson = await openDb(room.socket_url, false);
  const lateCborValues = await subscribed(lateCbor, 'v');
  const lateJsonValues = await subscribed(lateJson, 'v');
  assert.deepStrictEqual(markBytes(lateCborValues.items), [wantCbor]);
  assert.deepStrictEqual(lateJsonValues.items, [wantJson]);
  for (const db of [sender, cborReader, jsonReader, lateCbor, lateJson]) closeDb(db);
});

test('JSON client values reach CBOR clients unchanged', { timeout: 20000 }, async () => {
  const room = await newRoom(server.base);
  const sender = await openDb(room.socket_url, false);
  const cborReader = await openDb(room.socket_url, true);
  const jsonReader = await openDb(room.socket_url, false);
  const atCbor = await subscribed(cborReader, 'j');
  const atJson = await subscribed(jsonReader, 'j');

  const payload = { ...scalars, numbersThatLookLikeBytes: [0, 1, 255] };
  sender.send({ type: 'push', key: 'j', value: payload, action: { type: 'replace' } });
  sender.send({ type: 'push', key: 'j', value: { big: 2 ** 53 }, action: { type: 'append' } });
  await atCbor.waitCount(2, 'values at the CBOR reader');
  await atJson.waitCount(2, 'values at the JSON reader');

  assert.deepStrictEqual(atCbor.items[0], { seq: 1, value: payload });
  assert.deepStrictEqual(atJson.items[0], { seq: 1, value: payload });
  // JSON has no integer/float distinction: 9007199254740992 arrives as an
  // integer, which a CBOR encoder writes as uint64 and cbor-web decodes as a
  // BigInt. Only the value is checked here.
  assert.equal(atCbor.items[1].seq, 2);
  assert.equal(Number(atCbor.items[1].value.big), 2 ** 53);
  assert.deepStrictEqual(atJson.items[1], { seq: 2, value: { big: 2 ** 53 } });

  const late = await openDb(room.socket_url, true);
  const lateValues = await subscribed(late, 'j');
  assert.deepStrictEqual(lateValues.items[0], { seq: 1, value: payload });
  for (const db of [sender, cborReader, jsonReader, late]) closeDb(db);
});

test('raw CBOR frames: plain byte strings and tag 64 typed arrays', { timeout: 20000 }, async () => {
  const room = await newRoom(server.base);
  const cborSock = await RawSocket.open(`${room.socket_url}?cbor=true`);
  const jsonSock = await RawSocket.open(room.socket_url);
  cborSock.sendCbor({ type: 'get', key: 'b' });
  jsonSock.sendJson({ type: 'get', key: 'b' });
  const cborInit = await cborSock.nextFrame('CBOR init');
  assert.equal(cborInit.binary, true, 'a cbor=true connection gets binary frames');
  assert.deepStrictEqual(cborInit.msg, { type: 'init', key: 'b', data: [] });
  const jsonInit = await jsonSock.nextFrame('JSON init');
  assert.equal(jsonInit.binary, false, 'a JSON connection gets text frames');
  assert.deepStrictEqual(jsonInit.msg, { type: 'init', key: 'b', data: [] });

  // Buffer encodes as CBOR major type 2, Uint8Array as tag 64.
  const plain = CBOR.encode(Buffer.from([1, 2, 3]));
  assert.equal(plain[0], 0x43, 'major type 2, length 3');
  const tagged = CBOR.encode(new Uint8Array([4, 5, 6]));
  assert.deepStrictEqual(Array.from(tagged.subarray(0, 2)), [0xd8, 0x40], 'tag 64');

  cborSock.sendCbor({ type: 'push', key: 'b', value: { plain: Buffer.from([1, 2, 3]), tagged: new Uint8Array([4, 5, 6]) }, action: { type: 'append' } });
  const atCbor = await cborSock.nextFrame('push at the CBOR socket');
  assert.equal(atCbor.binary, true);
  assert.deepStrictEqual(markBytes(atCbor.msg),
    { type: 'push', key: 'b', seq: 1, value: { plain: { $bytes: [1, 2, 3] }, tagged: { $bytes: [4, 5, 6] } } });
  const atJson = await jsonSock.nextFrame('push at the JSON socket');
  assert.equal(atJson.binary, false);
  assert.deepStrictEqual(atJson.msg, { type: 'push', key: 'b', seq: 1, value: { plain: [1, 2, 3], tagged: [4, 5, 6] } });

  // Binary frames are CBOR on any connection; the reply follows the
  // connection's format (JSON here).
  jsonSock.sendCbor({ type: 'push', key: 'b', value: new Uint8Array([7]), action: { type: 'append' } });
  assert.deepStrictEqual(await jsonSock.next('push of a CBOR frame on a JSON connection'),
    { type: 'push', key: 'b', seq: 2, value: [7] });
  assert.deepStrictEqual(await jsonSock.next('stream_size'), { type: 'stream_size', key: 'b', size: 2 });
  assert.deepStrictEqual(markBytes(await cborSock.next('push 2 at the CBOR socket')),
    { type: 'push', key: 'b', seq: 2, value: { $bytes: [7] } });
  // And text frames are JSON on a CBOR connection; replies stay CBOR.
  cborSock.sendJson({ type: 'ping', nonce: 77 });
  const pong = await cborSock.nextFrame('pong');
  assert.equal(pong.binary, true);
  assert.deepStrictEqual(pong.msg, { type: 'pong', nonce: 77 });
  cborSock.close();
  jsonSock.close();
});
