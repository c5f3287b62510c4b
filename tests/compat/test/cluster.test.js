'use strict';
// The published client against different nodes of one three-node cluster:
// one room, clients on every node, one total order; HTTP through any node;
// a StateListener shared across nodes.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useCluster } = require('../lib/cluster');
const {
  driftdb, collector, openDb, closeDb, closeAllDbs, withTimeout, DEFAULT_WAIT_MS,
} = require('../lib/client');

const cluster = useCluster(['a', 'b', 'c']);
cluster.onCleanup(closeAllDbs);

const KEY = 'log';
const PER_WRITER = 150;

// The room as each node describes it (URLs of that node).
async function roomOnEveryNode(roomId) {
  return Promise.all(cluster.nodes.map((n) => withTimeout(
    new driftdb.Api(n.base).getRoom(roomId), DEFAULT_WAIT_MS, `GET /room on ${n.name}`,
  )));
}

async function subscribe(db) {
  const msgs = collector();
  db.messageListener.addListener(msgs.push);
  const values = collector();
  db.subscribe(KEY, values.push);
  await msgs.waitUntil((items) => items.some((m) => m.type === 'init' && m.key === KEY), 'init');
  return { msgs, values };
}

test('every node describes a room with its own URLs; ids this cluster did not issue are 404 everywhere', { timeout: 20000 }, async () => {
  const first = cluster.nodes[0];
  const room = await new driftdb.Api(first.base).newRoom();
  const rooms = await roomOnEveryNode(room.room);
  rooms.forEach((r, i) => {
    const host = `127.0.0.1:${cluster.nodes[i].port}`;
    assert.equal(r.room, room.room);
    assert.equal(r.socket_url, `ws://${host}/room/${room.room}/connect`);
    assert.equal(r.http_url, `http://${host}/room/${room.room}/send`);
  });
  const tampered = room.room.slice(0, 5) + (room.room[5] === 'a' ? 'b' : 'a') + room.room.slice(6);
  for (const n of cluster.nodes) {
    const res = await fetch(`${n.base}/room/${tampered}`);
    assert.equal(res.status, 404, `tampered id on ${n.name}`);
  }
  // Every node names the same owner.
  const owners = await Promise.all(cluster.nodes.map(async (n) => (await (await fetch(`${n.base}/cluster/room/${room.room}`)).json()).owner));
  assert.equal(new Set(owners).size, 1, `owners: ${owners}`);
});

test(`clients on three nodes, ${PER_WRITER} appends each: one gap-free order everywhere`, { timeout: 60000 }, async () => {
  const room = await new driftdb.Api(cluster.nodes[1].base).newRoom();
  const rooms = await roomOnEveryNode(room.room);
  // A JSON client on a, CBOR on b, JSON on c; each writes and listens.
  const clients = await Promise.all(rooms.map(async (r, i) => {
    const db = await openDb(r.socket_url, i === 1);
    const sub = await subscribe(db);
    return { name: cluster.nodes[i].name, db, ...sub };
  }));
  for (let n = 0; n < PER_WRITER; n++) {
    for (const c of clients) {
      c.db.send({ type: 'push', key: KEY, value: { w: c.name, n }, action: { type: 'append' } });
    }
  }
  const total = PER_WRITER * clients.length;
  for (const c of clients) await c.values.waitCount(total, `${total} values on ${c.name}`, 30000);

  const reference = clients[0].values.items;
  for (const c of clients) {
    const items = c.values.items;
    assert.equal(items.length, total, `${c.name} got ${items.length}`);
    items.forEach((item, i) => {
      if (item.seq !== i + 1) assert.fail(`${c.name}: item ${i} has seq ${item.seq}, want ${i + 1}`);
    });
    for (const w of clients) {
      const mine = items.filter((item) => item.value.w === w.name).map((item) => item.value.n);
      assert.deepStrictEqual(mine, Array.from({ length: PER_WRITER }, (_, i) => i), `${c.name}: order of ${w.name}'s values`);
    }
    assert.deepStrictEqual(items, reference, `${c.name} saw the same order as ${clients[0].name}`);
  }

  // A late subscriber on each node replays everything.
  for (const r of rooms) {
    const late = await openDb(r.socket_url, true);
    const sub = await subscribe(late);
    const init = sub.msgs.items.find((m) => m.type === 'init');
    assert.deepStrictEqual(init.data, reference, `late subscriber via ${r.socket_url}`);
    closeDb(late);
  }
  for (const c of clients) closeDb(c.db);
});

test('HttpConnection through every node; a StateListener shared across nodes', { timeout: 20000 }, async () => {
  const room = await new driftdb.Api(cluster.nodes[2].base).newRoom();
  const rooms = await roomOnEveryNode(room.room);
  for (const [i, r] of rooms.entries()) {
    const http = new driftdb.HttpConnection(r.http_url);
    const reply = await http.send({ type: 'push', key: 'h', value: { via: cluster.nodes[i].name }, action: { type: 'append' } });
    assert.deepStrictEqual(reply, i === 0 ? null : { type: 'stream_size', key: 'h', size: i + 1 });
  }
  const expected = rooms.map((_, i) => ({ seq: i + 1, value: { via: cluster.nodes[i].name } }));
  for (const r of rooms) {
    const init = await new driftdb.HttpConnection(r.http_url).send({ type: 'get', key: 'h', seq: 0 });
    assert.deepStrictEqual(init, { type: 'init', key: 'h', data: expected }, `get via ${r.http_url}`);
  }

  const listeners = await Promise.all([rooms[0], rooms[2]].map(async (r, i) => {
    const db = await openDb(r.socket_url, i === 1);
    const msgs = collector();
    db.messageListener.addListener(msgs.push);
    const seen = collector();
    const state = new driftdb.StateListener({ db, key: 'state', callback: seen.push });
    state.subscribe();
    await msgs.waitUntil((items) => items.some((m) => m.type === 'init' && m.key === 'state'), 'init of state');
    return { db, state, seen };
  }));
  const [onA, onC] = listeners;
  onA.state.setStateOptimistic({ color: 'red' });
  await onC.seen.waitCount(1, 'state set on a, seen on c');
  assert.deepStrictEqual(onC.seen.items, [{ color: 'red' }]);
  onC.state.setStateOptimistic({ color: 'blue' });
  await onA.seen.waitCount(2, 'state set on c, seen on a');
  assert.deepStrictEqual(onA.seen.items, [{ color: 'red' }, { color: 'blue' }]);
  for (const l of listeners) closeDb(l.db);
});
