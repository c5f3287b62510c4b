'use strict';
// GET /readyz beside /healthz: a cluster node that has nobody to join yet answers 503
// "joining" (while /healthz says it serves); once another member is admitted, 200 "ready".

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('../lib/server');
const { freePort } = require('../lib/cluster');

const READY_WAIT_MS = 10000;

async function readyz(base) {
  const res = await fetch(`${base}/readyz`);
  return { status: res.status, doc: await res.json() };
}

function clusterArgs(name, port, seeds) {
  return ['--node-name', name, '--cluster-port', String(port), '--seeds', seeds,
    '--cluster-name', 'readyz-cluster', '--secret', 'readyz-cluster-secret',
    '--heartbeat-interval', '200ms', '--failure-timeout', '1s',
    '--io-threads', '1', '--actor-threads', '1'];
}

test('a single node is ready as soon as it listens', async () => {
  const srv = await startServer();
  try {
    assert.deepEqual((await readyz(srv.base)).status, 200);
    assert.equal((await readyz(srv.base)).doc.status, 'ready');
  } finally {
    await srv.stop();
  }
});

test('a cluster node is ready once it has joined another member', async () => {
  const pa = await freePort();
  const pb = await freePort();
  const seeds = `127.0.0.1:${pa},127.0.0.1:${pb}`;
  const a = await startServer(clusterArgs('a', pa, seeds));
  let b;
  try {
    const alone = await readyz(a.base);
    assert.equal(alone.status, 503, JSON.stringify(alone.doc));
    assert.deepEqual(alone.doc, { status: 'joining', node: 'a' });
    assert.equal((await fetch(`${a.base}/healthz`)).status, 200, 'it serves meanwhile');

    b = await startServer(clusterArgs('b', pb, seeds));
    const deadline = Date.now() + READY_WAIT_MS;
    let last;
    for (;;) {
      last = await readyz(a.base);
      if (last.status === 200) break;
      assert.ok(Date.now() < deadline, `a never became ready: ${JSON.stringify(last.doc)}\n${a.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(last.doc, { status: 'ready', node: 'a' });
  } finally {
    if (b) await b.stop();
    await a.stop();
  }
});
