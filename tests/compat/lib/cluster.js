'use strict';
// Starts a local driftd cluster (three nodes by default) for a test file.
//
//   const cluster = useCluster();          // before/after hooks
//   cluster.nodes[i].base, .port, .name    // once `before` ran
//
// Every node gets a cluster port picked up front (the seeds must name them),
// the same secret and cluster name, and short heartbeats. `before` waits until
// every node lists every node `up` in GET /cluster; `after` runs the cleanups
// (close clients first), then stops the nodes one by one with SIGTERM, each of
// which must hand its rooms over and exit 0.

const net = require('node:net');
const assert = require('node:assert/strict');
const { before, after } = require('node:test');
const { startServer, STOP_TIMEOUT_MS } = require('./server');

const FORM_TIMEOUT_MS = 10000;
const given = new Set();

// A loopback port nobody listens on (bound to 0 and closed), never the same twice.
async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address();
        srv.close(() => resolve(p));
      });
    });
    if (!given.has(port)) {
      given.add(port);
      return port;
    }
  }
}

async function clusterView(base) {
  try {
    const res = await fetch(`${base}/cluster`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return null;
    return await res.json();
  } catch {
    return null;
  }
}

// Waits until every node lists exactly the given names, all `up`.
async function waitFormed(nodes, ms = FORM_TIMEOUT_MS) {
  const want = nodes.map((n) => n.name).sort();
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    const views = await Promise.all(nodes.map((n) => clusterView(n.base)));
    const ok = views.every((v) => v && JSON.stringify(
      v.members.filter((m) => m.state === 'up').map((m) => m.name).sort(),
    ) === JSON.stringify(want) && v.members.length === want.length);
    if (ok) return;
    last = JSON.stringify(views);
    if (Date.now() >= deadline) throw new Error(`cluster did not form within ${ms} ms; views: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function startCluster(names = ['a', 'b', 'c'], extraArgs = []) {
  const clusterPorts = [];
  for (let i = 0; i < names.length; i++) clusterPorts.push(await freePort());
  const seeds = clusterPorts.map((p) => `127.0.0.1:${p}`).join(',');
  const nodes = [];
  try {
    for (let i = 0; i < names.length; i++) {
      const srv = await startServer([
        '--node-name', names[i],
        '--cluster-port', String(clusterPorts[i]),
        '--seeds', seeds,
        '--cluster-name', 'compat-cluster',
        '--secret', 'compat-cluster-secret',
        '--heartbeat-interval', '200ms',
        '--failure-timeout', '1s',
        '--io-threads', '1',
        '--actor-threads', '1',
        ...extraArgs,
      ]);
      nodes.push({ name: names[i], srv, port: srv.port, base: srv.base, clusterPort: clusterPorts[i] });
    }
    await waitFormed(nodes);
  } catch (err) {
    for (const n of nodes) n.srv.child.kill('SIGKILL');
    throw err;
  }
  return { nodes, seeds };
}

function useCluster(names, extraArgs) {
  const handle = { nodes: [], cleanups: [] };
  handle.onCleanup = (fn) => handle.cleanups.push(fn);
  handle.logs = () => handle.nodes.map((n) => `---- ${n.name}\n${n.srv.stderr()}`).join('\n');
  before(async () => {
    const started = await startCluster(names, extraArgs);
    handle.nodes = started.nodes;
  });
  after(async () => {
    for (const fn of handle.cleanups.splice(0).reverse()) {
      try { await fn(); } catch { /* best effort */ }
    }
    const problems = [];
    for (const n of handle.nodes) {
      if (n.srv.exited()) continue;
      const res = await n.srv.stop();
      if (res.hung) problems.push(`${n.name} did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`);
      else if (res.code !== 0 || res.signal !== null) {
        problems.push(`${n.name} exited with code ${res.code}, signal ${res.signal}`);
      }
    }
    assert.deepEqual(problems, [], `stopping the cluster\n${handle.logs()}`);
  });
  return handle;
}

module.exports = { startCluster, useCluster, freePort, waitFormed };
