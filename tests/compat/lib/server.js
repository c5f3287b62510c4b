'use strict';
// Starts one driftd process for a test file and stops it again.
//
//   const srv = await startServer(['--max-frame-bytes', '64k']);
//   srv.port, srv.base ('http://127.0.0.1:PORT', https with --tls-cert), srv.stderr()
//   const { code, signal } = await srv.stop();   // SIGTERM, waits for the exit
//
// `useServer()` wires that into node:test `before`/`after` hooks and checks
// that the process exits with code 0 after SIGTERM.

const { spawn } = require('node:child_process');
const assert = require('node:assert/strict');
const { before, after } = require('node:test');

const LISTEN_RE = /listening on (https?):\/\/127\.0\.0\.1:(\d+)/;
const START_TIMEOUT_MS = 10000;
const STOP_TIMEOUT_MS = 5000;

function serverBinary() {
  const bin = process.env.DRIFTD_BIN;
  if (!bin) throw new Error('DRIFTD_BIN is not set (path of the built driftd)');
  return bin;
}

// If this test process ends without the after hook (uncaught error,
// process.exit), take the servers it started along.
const liveChildren = new Set();
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

function startServer(extraArgs = []) {
  const args = ['--port', '0', '--log-level', 'info', '--storage', 'memory', ...extraArgs];
  const child = spawn(serverBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  liveChildren.add(child);
  let log = '';
  let exited = null; // { code, signal } once the process is gone
  const exitWaiters = [];
  child.on('exit', (code, signal) => {
    liveChildren.delete(child);
    exited = { code, signal };
    for (const w of exitWaiters.splice(0)) w(exited);
  });
  const waitExit = () => new Promise((resolve) => {
    if (exited) resolve(exited);
    else exitWaiters.push(resolve);
  });

  const srv = {
    child,
    args,
    port: 0,
    base: '',
    stderr: () => log,
    exited: () => exited,
    waitExit,
    // SIGTERM, then wait at most STOP_TIMEOUT_MS; SIGKILL if it hangs (and report it).
    async stop() {
      if (exited) return exited;
      child.kill('SIGTERM');
      let timer;
      const res = await Promise.race([
        waitExit(),
        new Promise((resolve) => { timer = setTimeout(() => resolve(null), STOP_TIMEOUT_MS); }),
      ]);
      clearTimeout(timer);
      if (res) return res;
      child.kill('SIGKILL');
      const killed = await waitExit();
      return { ...killed, hung: true };
    },
  };

  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!exited) child.kill('SIGKILL');
      reject(new Error(`driftd did not start (${why}); args: ${args.join(' ')}\nstderr:\n${log}`));
    };
    const timer = setTimeout(() => fail(`no "listening on" line within ${START_TIMEOUT_MS} ms`),
      START_TIMEOUT_MS);
    child.on('error', (err) => fail(err.message));
    child.on('exit', (code, signal) => fail(`exited early with code ${code}, signal ${signal}`));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log += chunk;
      if (settled) return;
      const m = LISTEN_RE.exec(log);
      if (m) {
        settled = true;
        clearTimeout(timer);
        srv.port = Number(m[2]);
        srv.base = `${m[1]}://127.0.0.1:${srv.port}`;
        resolve(srv);
      }
    });
  });
}

// Registers before/after hooks for the calling test file. Returns a handle
// whose fields are filled in once `before` ran. `cleanup` callbacks run before
// the server is stopped (close clients first so none tries to reconnect).
function useServer(extraArgs = []) {
  const handle = { srv: null, port: 0, base: '', cleanups: [] };
  handle.onCleanup = (fn) => handle.cleanups.push(fn);
  before(async () => {
    const srv = await startServer(extraArgs);
    handle.srv = srv;
    handle.port = srv.port;
    handle.base = srv.base;
  });
  after(async () => {
    for (const fn of handle.cleanups.splice(0).reverse()) {
      try { await fn(); } catch { /* best effort */ }
    }
    if (!handle.srv) return;
    if (handle.srv.exited()) {
      // A test may already have stopped it (shutdown test); that test checks the code.
      return;
    }
    const res = await handle.srv.stop();
    assert.ok(!res.hung, `driftd did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM\n${handle.srv.stderr()}`);
    assert.deepEqual({ code: res.code, signal: res.signal }, { code: 0, signal: null },
      `driftd exit after SIGTERM\nstderr:\n${handle.srv.stderr()}`);
  });
  return handle;
}

module.exports = { startServer, useServer, STOP_TIMEOUT_MS };
