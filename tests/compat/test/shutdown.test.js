'use strict';
// SIGTERM with connected clients: every WebSocket is closed with 1001 (going
// away) and the process exits 0.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useServer, STOP_TIMEOUT_MS } = require('../lib/server');
const {
  collector, openDb, closeDb, closeAllDbs, newRoom, RawSocket, withTimeout,
} = require('../lib/client');

const server = useServer();
server.onCleanup(closeAllDbs);

test('SIGTERM closes client sockets with 1001 and exits 0', { timeout: 20000 }, async () => {
  const roomA = await newRoom(server.base);
  const roomB = await newRoom(server.base);

  const clients = [];
  for (const [room, cbor] of [[roomA, false], [roomA, true], [roomB, false]]) {
    const db = await openDb(room.socket_url, cbor);
    const msgs = collector();
    db.messageListener.addListener(msgs.push);
    db.subscribe('k', () => {});
    await msgs.waitCount(1, 'init');
    const status = collector();
    db.statusListener.addListener(status.push);
    const closed = new Promise((resolve) => db.connection.once('close', (code) => resolve(code)));
    clients.push({ db, closed, status, name: `DbConnection cbor=${cbor}` });
  }
  const raws = [];
  let nonce = 1;
  for (const url of [roomA.socket_url, `${roomB.socket_url}?cbor=true`, `${roomB.socket_url}?subscribe=all`,
    `${roomA.socket_url}?debug=true`]) {
    const sock = await RawSocket.open(url);
    await sock.drainUntilPong(nonce++); // live and answered
    raws.push({ sock, name: url });
  }
  // Some traffic right before the signal.
  raws[0].sock.sendJson({ type: 'push', key: 'k', value: 'last words', action: { type: 'append' } });

  const exit = server.srv.stop();
  const codes = await withTimeout(Promise.all([
    ...clients.map((c) => c.closed),
    ...raws.map((r) => r.sock.waitClose(STOP_TIMEOUT_MS).then((info) => info.code)),
  ]), STOP_TIMEOUT_MS + 1000, 'every client socket to close');
  assert.deepStrictEqual(codes, [...clients, ...raws].map(() => 1001),
    `close codes of ${[...clients, ...raws].map((c) => c.name).join(', ')}`);
  for (const c of clients) {
    assert.deepStrictEqual(c.status.items, [{ connected: false }], `${c.name} status`);
    closeDb(c.db); // stop the client's reconnect timer
  }

  const res = await exit;
  assert.ok(!res.hung, `driftd did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM\n${server.srv.stderr()}`);
  assert.deepStrictEqual({ code: res.code, signal: res.signal }, { code: 0, signal: null },
    `exit after SIGTERM\n${server.srv.stderr()}`);
});
