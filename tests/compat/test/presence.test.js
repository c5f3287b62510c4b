'use strict';
// PresenceListener: relayed presence between a JSON and a CBOR client.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useServer } = require('../lib/server');
const {
  driftdb, collector, openDb, closeDb, closeAllDbs, newRoom, withTimeout,
} = require('../lib/client');

const server = useServer();
server.onCleanup(closeAllDbs);

const deepEq = (a, b) => {
  try { assert.deepStrictEqual(a, b); return true; } catch { return false; }
};

// The presence map as the app sees it, without the lastSeen timestamps.
const view = (presence) => presence && Object.fromEntries(Object.entries(presence).map(([id, p]) => [id, p.value]));

test('PresenceListener: two clients see each other and updates', { timeout: 20000 }, async () => {
  const room = await newRoom(server.base);
  const dbA = await openDb(room.socket_url, false);
  const dbB = await openDb(room.socket_url, true);
  const seenA = collector();
  const seenB = collector();
  const aliceState = { name: 'alice', cursor: [10, 20], typing: false };
  const bobState = { name: 'bøb', cursor: [-1.5, 3e10], typing: true };
  const opts = { minPresenceInterval: 20, maxPresenceInterval: 250 };
  const alice = new driftdb.PresenceListener({
    ...opts, db: dbA, clientId: 'client-alice', initialState: aliceState, callback: seenA.push,
  });
  const bob = new driftdb.PresenceListener({
    ...opts, db: dbB, clientId: 'client-bob', initialState: bobState, callback: seenB.push,
  });
  alice.subscribe();
  bob.subscribe();
  try {
    await seenA.waitUntil((s) => deepEq(view(s[s.length - 1]), { 'client-bob': bobState }), 'alice to see bob');
    await seenB.waitUntil((s) => deepEq(view(s[s.length - 1]), { 'client-alice': aliceState }), 'bob to see alice');
    const entry = seenA.last()['client-bob'];
    assert.deepStrictEqual(Object.keys(entry).sort(), ['lastSeen', 'value']);
    assert.equal(typeof entry.lastSeen, 'number');
    // Nobody sees itself.
    assert.ok(seenA.items.every((p) => !('client-alice' in p)));
    assert.ok(seenB.items.every((p) => !('client-bob' in p)));

    const moved = { name: 'alice', cursor: [11, 21], typing: true, note: 'ünïcødé' };
    alice.updateState(moved);
    await seenB.waitUntil((s) => deepEq(view(s[s.length - 1]), { 'client-alice': moved }), 'bob to see alice move');

    // Presence is relayed, never retained.
    const http = new driftdb.HttpConnection(room.http_url);
    assert.deepStrictEqual(await withTimeout(http.send({ type: 'get', key: '__presence' }), 5000, 'get'),
      { type: 'init', key: '__presence', data: [] });
  } finally {
    alice.destroy();
    bob.destroy();
    closeDb(dbA);
    closeDb(dbB);
  }
});
