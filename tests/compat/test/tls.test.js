'use strict';
// The published client over https:// and wss:// (--tls-cert/--tls-key), trusting the test
// CA through NODE_EXTRA_CA_CERTS only: room URLs, DbConnection in both formats,
// HttpConnection, what is not TLS refused without harm, and SIGHUP rereading the
// certificate while open connections stay.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const tls = require('node:tls');
const { useServer } = require('../lib/server');
const { issueServerCert, scratchDir } = require('../lib/pki');
const {
  driftdb, collector, openDb, closeAllDbs, newRoom, withTimeout, poll, RawSocket, WebSocket,
} = require('../lib/client');

const FIRST_SERIAL = 1001;
const SECOND_SERIAL = 2002;

const dir = scratchDir();
const files = issueServerCert(dir, 'driftd-compat-one', FIRST_SERIAL);
const server = useServer(['--tls-cert', files.cert, '--tls-key', files.key]);
server.onCleanup(closeAllDbs);

const serialOf = (cert) => Number(BigInt(`0x${cert.serialNumber}`));

// The certificate a fresh TLS connection is shown, checked against the CA Node was given.
function presentedCertificate(port) {
  return withTimeout(new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost' }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.once('error', reject);
  }), 5000, 'a TLS handshake');
}

// Everything until the peer closes; `bytes` is what was read.
function sendAndReadToEnd(port, bytes) {
  return withTimeout(new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    const chunks = [];
    socket.on('data', (c) => chunks.push(c));
    socket.once('error', reject);
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  }), 5000, 'the server to close a connection that is not TLS');
}

async function subscribed(db, key) {
  const msgs = collector();
  db.messageListener.addListener(msgs.push);
  const values = collector();
  db.subscribe(key, values.push);
  await msgs.waitUntil((items) => items.some((m) => m.type === 'init' && m.key === key), `init of ${key}`);
  return values;
}

test('the test CA is trusted through NODE_EXTRA_CA_CERTS, not by turning checks off', () => {
  assert.equal(process.env.NODE_EXTRA_CA_CERTS, files.ca);
  assert.notEqual(process.env.NODE_TLS_REJECT_UNAUTHORIZED, '0');
});

test('Api.newRoom and getRoom over https answer wss:// and https:// URLs', { timeout: 15000 }, async () => {
  assert.equal(server.base, `https://127.0.0.1:${server.port}`);
  const api = new driftdb.Api(server.base);
  const room = await withTimeout(api.newRoom(), 5000, 'newRoom');
  assert.deepStrictEqual(room, {
    room: room.room,
    socket_url: `wss://127.0.0.1:${server.port}/room/${room.room}/connect`,
    http_url: `https://127.0.0.1:${server.port}/room/${room.room}/send`,
  });
  assert.deepStrictEqual(await withTimeout(api.getRoom(room.room), 5000, 'getRoom'), room);
  // The Host header decides the host part, over TLS as over plain HTTP.
  const viaName = await (await fetch(`https://localhost:${server.port}/room/${room.room}`)).json();
  assert.equal(viaName.socket_url, `wss://localhost:${server.port}/room/${room.room}/connect`);
});

test('DbConnection over wss: JSON and CBOR subscribers, HttpConnection over https', { timeout: 20000 }, async () => {
  const room = await newRoom(server.base);
  const writer = await openDb(room.socket_url, false);
  const jsonDb = await openDb(room.socket_url, false);
  const cborDb = await openDb(room.socket_url, true);
  assert.equal(cborDb.connection.url, `${room.socket_url}?cbor=true`);
  const atJson = await subscribed(jsonDb, 'k');
  const atCbor = await subscribed(cborDb, 'k');

  const pushes = 20;
  for (let n = 1; n <= pushes; n += 1) {
    writer.send({ type: 'push', key: 'k', value: { n }, action: { type: 'append' } });
  }
  // The WebSocket pushes are sequenced before the HTTP one is sent.
  await atJson.waitCount(pushes, 'the WebSocket pushes at the JSON subscriber');
  const http = new driftdb.HttpConnection(room.http_url);
  assert.deepStrictEqual(
    await withTimeout(http.send({ type: 'push', key: 'k', value: 'over https', action: { type: 'append' } }),
      5000, 'HTTP push'),
    { type: 'stream_size', key: 'k', size: pushes + 1 });

  const want = [...Array.from({ length: pushes }, (_, i) => ({ seq: i + 1, value: { n: i + 1 } })),
    { seq: pushes + 1, value: 'over https' }];
  await atJson.waitCount(pushes + 1, 'every push at the JSON subscriber');
  await atCbor.waitCount(pushes + 1, 'every push at the CBOR subscriber');
  assert.deepStrictEqual(atJson.items, want);
  assert.deepStrictEqual(atCbor.items, want);

  // A late subscriber over wss gets the retained stream.
  const late = await openDb(room.socket_url, true);
  const replay = await subscribed(late, 'k');
  await replay.waitCount(pushes + 1, 'the replay');
  assert.deepStrictEqual(replay.items, want);
});

test('plain text and junk on the TLS port are refused; the node goes on serving', { timeout: 15000 }, async () => {
  const plain = await sendAndReadToEnd(server.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(plain, /^HTTP\/1\.1 400 /);
  assert.match(plain, /https:\/\//);
  const junk = await sendAndReadToEnd(server.port, Buffer.from([0, 1, 2, 3, 0xff, 0xfe]));
  assert.equal(junk.startsWith('HTTP/1.1 400 '), true);
  // A client that trusts another authority (here: the server certificate itself, which is
  // no CA): its handshake fails, nothing else does.
  await assert.rejects(withTimeout(new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1', port: server.port, servername: 'localhost', ca: [fs.readFileSync(files.cert)],
    }, resolve);
    socket.once('error', reject);
  }), 5000, 'an untrusting handshake'), /issuer|verify|certificate/i);

  const room = await newRoom(server.base);
  const sock = await RawSocket.open(room.socket_url);
  assert.deepStrictEqual(await sock.drainUntilPong(1), []);
  sock.close();
  // The untrusting client's alert may reach the node after all that.
  let failures = null;
  const deadline = Date.now() + 5000;
  while (failures !== 3 && Date.now() < deadline) {
    failures = (await (await fetch(`${server.base}/stats`)).json()).tls_handshake_failures;
  }
  assert.equal(failures, 3, 'plain text, junk and the untrusting client');
});

test('SIGHUP rereads the certificate: new connections get it, open ones stay', { timeout: 20000 }, async () => {
  assert.equal(serialOf(await presentedCertificate(server.port)), FIRST_SERIAL);
  const room = await newRoom(server.base);
  const before = await openDb(room.socket_url, false);
  const status = collector();
  before.statusListener.addListener(status.push);
  const socketBefore = before.connection;
  const atBefore = await subscribed(before, 'k');
  const rawBefore = await RawSocket.open(`${room.socket_url}?subscribe=all`);
  await rawBefore.drainUntilPong(1);

  issueServerCert(dir, 'driftd-compat-two', SECOND_SERIAL);
  const reloads = (server.srv.stderr().match(/TLS certificate reloaded/g) || []).length;
  server.srv.child.kill('SIGHUP');
  await poll(() => (server.srv.stderr().match(/TLS certificate reloaded/g) || []).length > reloads,
    'the reload to be logged');

  const fresh = await presentedCertificate(server.port);
  assert.equal(serialOf(fresh), SECOND_SERIAL);
  assert.equal(fresh.subject.CN, 'driftd-compat-two');

  // A client on the new certificate pushes; both connections from before receive it.
  const after = await openDb(room.socket_url, true);
  after.send({ type: 'push', key: 'k', value: 'after reload', action: { type: 'append' } });
  await atBefore.waitCount(1, 'the push at the connection from before');
  assert.deepStrictEqual(atBefore.items, [{ seq: 1, value: 'after reload' }]);
  assert.deepStrictEqual(await rawBefore.next('the push'), { type: 'push', key: 'k', value: 'after reload', seq: 1 });
  // The same sockets, never reconnected, still on the old certificate.
  assert.equal(before.connection, socketBefore);
  assert.equal(socketBefore.readyState, WebSocket.OPEN);
  assert.deepStrictEqual(status.items, []);
  assert.equal(serialOf(socketBefore._socket.getPeerCertificate()), FIRST_SERIAL);
  assert.ok(rawBefore.isOpen());
  rawBefore.close();
  assert.equal(server.srv.exited(), null, 'SIGHUP did not end the process');
});
