'use strict';
// --log-format json: every line the node writes is one JSON object with time, level,
// logger, message and node; lines about a room carry its id as `room`.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('../lib/server');

test('--log-format json writes one object per line', async () => {
  const srv = await startServer(['--log-format', 'json', '--node-name', 'json-node', '--log-level', 'debug']);
  const room = (await (await fetch(`${srv.base}/new`, { method: 'POST' })).json()).room;
  const res = await fetch(`${srv.base}/room/${room}/send`, {
    method: 'POST',
    body: JSON.stringify({ type: 'push', key: 'k', value: 1, action: { type: 'append' } }),
  });
  assert.equal(res.status, 200);
  const stopped = await srv.stop();
  assert.deepEqual({ code: stopped.code, signal: stopped.signal }, { code: 0, signal: null });

  const lines = srv.stderr().split('\n').filter((l) => l !== '');
  assert.ok(lines.length > 2, srv.stderr());
  const docs = lines.map((l) => {
    try { return JSON.parse(l); } catch { assert.fail(`not JSON: ${l}`); }
    return null;
  });
  for (const d of docs) {
    assert.match(d.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(['trace', 'debug', 'info', 'warning', 'error', 'critical'].includes(d.level), d.level);
    assert.equal(typeof d.logger, 'string');
    assert.equal(typeof d.message, 'string');
    assert.equal(d.node, 'json-node');
  }
  assert.ok(docs.some((d) => d.message.includes('listening on http://127.0.0.1:')));
  assert.ok(docs.some((d) => d.room === room), `no line names room ${room}:\n${srv.stderr()}`);
});
