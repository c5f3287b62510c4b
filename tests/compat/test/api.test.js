'use strict';
// Room API: POST /new, GET /room/{id}, 404 for rooms that do not exist.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useServer } = require('../lib/server');
const { driftdb, RawSocket, withTimeout, closeAllDbs } = require('../lib/client');

const server = useServer();
server.onCleanup(closeAllDbs);

const ROOM_ID_RE = /^[A-Za-z0-9_-]+$/;

function expectedRoom(port, id) {
  return {
    room: id,
    socket_url: `ws://127.0.0.1:${port}/room/${id}/connect`,
    http_url: `http://127.0.0.1:${port}/room/${id}/send`,
  };
}

test('Api.newRoom returns room, socket_url and http_url', { timeout: 15000 }, async () => {
  const api = new driftdb.Api(server.base);
  const room = await withTimeout(api.newRoom(), 5000, 'newRoom');
  assert.deepStrictEqual(Object.keys(room).sort(), ['http_url', 'room', 'socket_url']);
  assert.equal(typeof room.room, 'string');
  assert.match(room.room, ROOM_ID_RE, 'room id is URL-safe');
  // At least 128 bits: 22 base64url characters, 26 base32 characters.
  assert.ok(room.room.length >= 22, `room id ${room.room} is too short to hold 128 bits`);
  assert.deepStrictEqual(room, expectedRoom(server.port, room.room));

  // A trailing slash on the API URL makes no difference (the client adds one).
  const api2 = new driftdb.Api(`${server.base}/`);
  const room2 = await withTimeout(api2.newRoom(), 5000, 'newRoom');
  assert.notEqual(room2.room, room.room, 'every room is fresh');
  assert.deepStrictEqual(room2, expectedRoom(server.port, room2.room));
});

test('Api.getRoom returns the same three fields for an existing room', { timeout: 15000 }, async () => {
  const api = new driftdb.Api(server.base);
  const room = await withTimeout(api.newRoom(), 5000, 'newRoom');
  const got = await withTimeout(api.getRoom(room.room), 5000, 'getRoom');
  assert.deepStrictEqual(got, room);

  const res = await fetch(`${server.base}/room/${room.room}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') || '', /application\/json/);
});

test('unknown rooms answer 404 on GET /room/{id} and on connect', { timeout: 15000 }, async () => {
  const api = new driftdb.Api(server.base);
  const room = await withTimeout(api.newRoom(), 5000, 'newRoom');
  // An id that was never issued, and a real id with one character changed.
  const last = room.room[room.room.length - 1];
  const tampered = room.room.slice(0, -1) + (last === 'a' ? 'b' : 'a');
  for (const id of ['doesnotexist', 'A'.repeat(40), tampered]) {
    const res = await fetch(`${server.base}/room/${id}`);
    assert.equal(res.status, 404, `GET /room/${id}`);
    await res.arrayBuffer();
    await assert.rejects(RawSocket.open(`ws://127.0.0.1:${server.port}/room/${id}/connect`),
      /HTTP 404/, `connect to room ${id}`);
  }
  // The real room still connects.
  const sock = await RawSocket.open(room.socket_url);
  sock.close();
});

// The client runs in browsers: /new, /room/{id} and the HttpConnection's
// JSON POST (which needs a preflight) must pass CORS with the default config
// (any origin).
test('CORS: preflight and responses allow any origin by default', { timeout: 15000 }, async () => {
  const api = new driftdb.Api(server.base);
  const room = await withTimeout(api.newRoom(), 5000, 'newRoom');
  const origin = 'http://app.example';
  for (const url of [`${server.base}/new`, room.http_url]) {
    const res = await fetch(url, {
      method: 'OPTIONS',
      headers: {
        Origin: origin,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type',
      },
    });
    await res.arrayBuffer();
    assert.ok(res.status === 200 || res.status === 204, `preflight ${url}: ${res.status}`);
    assert.ok(['*', origin].includes(res.headers.get('access-control-allow-origin')),
      `allow-origin ${res.headers.get('access-control-allow-origin')}`);
    const methods = (res.headers.get('access-control-allow-methods') || '').toUpperCase();
    assert.match(methods, /\bPOST\b/, `allow-methods ${methods}`);
    const headers = (res.headers.get('access-control-allow-headers') || '').toLowerCase();
    assert.ok(headers === '*' || /\bcontent-type\b/.test(headers), `allow-headers ${headers}`);
  }
  for (const [url, init] of [
    [`${server.base}/new`, { method: 'POST' }],
    [`${server.base}/room/${room.room}`, {}],
    [room.http_url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"type":"ping","nonce":1}' }],
  ]) {
    const res = await fetch(url, { ...init, headers: { ...(init.headers || {}), Origin: origin } });
    await res.arrayBuffer();
    assert.equal(res.status, 200, url);
    assert.ok(['*', origin].includes(res.headers.get('access-control-allow-origin')), `allow-origin on ${url}`);
  }
});
