'use strict';
// Client-side helpers: the driftdb client with the globals it expects from a
// browser, a raw WebSocket wrapper for hand-written messages, and waiting
// primitives that fail with a timeout instead of sleeping.

const WebSocket = require('ws');

// The published client uses the browser's WebSocket and window.setTimeout.
globalThis.WebSocket = WebSocket;
globalThis.window = globalThis;

const driftdb = require('driftdb');
const CBOR = require('cbor-web');

const DEFAULT_WAIT_MS = 5000;

// Rejects with a descriptive error if `promise` does not settle within `ms`.
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Waits until `pred()` holds, checking every few milliseconds; for state that
// lives inside client objects and changes without a callback of its own.
async function poll(pred, what, ms = DEFAULT_WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (pred()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// A list that fills from callbacks, with waits on its contents.
//   const c = collector(); db.subscribe('k', c.push);
//   await c.waitCount(3, 'three values');
class Collector {
  constructor() {
    this.items = [];
    this.waiters = [];
    this.push = this.push.bind(this);
  }

  push(item) {
    this.items.push(item);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(this.items)) return true;
      clearTimeout(w.timer);
      w.resolve(this.items);
      return false;
    });
  }

  waitUntil(pred, what, ms = DEFAULT_WAIT_MS) {
    if (pred(this.items)) return Promise.resolve(this.items);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; have ${this.items.length}: `
          + `${preview(this.items)}`));
      }, ms);
      this.waiters.push(w);
    });
  }

  waitCount(n, what = `${n} items`, ms = DEFAULT_WAIT_MS) {
    return this.waitUntil((items) => items.length >= n, what, ms);
  }

  last() { return this.items[this.items.length - 1]; }
}

const collector = () => new Collector();

function preview(items) {
  const s = JSON.stringify(items.slice(-5), (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
  return s && s.length > 600 ? `${s.slice(0, 600)}…` : s;
}

// Every client opened through `openDb` is remembered so that a file's `after`
// hook can close them before the server goes away (the client reconnects on
// its own otherwise, and a failed reconnect rejects a promise nobody holds).
const openClients = new Set();

function trackDb(db) {
  openClients.add(db);
  return db;
}

async function openDb(socketUrl, cbor = false) {
  const db = trackDb(new driftdb.DbConnection());
  await withTimeout(db.connect(socketUrl, cbor), DEFAULT_WAIT_MS, `connect ${socketUrl} cbor=${cbor}`);
  return db;
}

function closeDb(db) {
  if (db.reconnectLoopHandle) {
    clearTimeout(db.reconnectLoopHandle);
    db.reconnectLoopHandle = null;
  }
  db.disconnect();
  openClients.delete(db);
}

function closeAllDbs() {
  for (const db of [...openClients]) closeDb(db);
}

// A WebSocket driven by hand. Messages are decoded (text as JSON, binary as
// CBOR) into a queue; `next()` takes the next one in arrival order.
class RawSocket {
  constructor(ws) {
    this.ws = ws;
    this.queue = []; // { msg, binary }
    this.waiter = null;
    this.closeInfo = null;
    this.closeWaiters = [];
    ws.on('message', (data, isBinary) => {
      let msg;
      try {
        msg = isBinary ? CBOR.decode(data) : JSON.parse(data.toString('utf8'));
      } catch (err) {
        msg = { undecodable: String(err), raw: data.toString(isBinary ? 'hex' : 'utf8') };
      }
      this.queue.push({ msg, binary: isBinary });
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w();
      }
    });
    ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString('utf8') };
      for (const w of this.closeWaiters.splice(0)) w(this.closeInfo);
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w();
      }
    });
    ws.on('error', () => { /* reported through close */ });
  }

  static open(url, what = url) {
    const ws = new WebSocket(url);
    const raw = new RawSocket(ws);
    return withTimeout(new Promise((resolve, reject) => {
      ws.once('open', () => resolve(raw));
      ws.once('unexpected-response', (_req, res) => {
        reject(new Error(`upgrade refused for ${url}: HTTP ${res.statusCode}`));
      });
      ws.once('error', reject);
    }), DEFAULT_WAIT_MS, `raw socket ${what} to open`);
  }

  sendJson(obj) { this.ws.send(JSON.stringify(obj)); }
  sendText(text) { this.ws.send(text, { binary: false }); }
  sendCbor(obj) { this.ws.send(CBOR.encode(obj), { binary: true }); }
  sendBinary(bytes) { this.ws.send(bytes, { binary: true }); }

  // The next message as { msg, binary }.
  async nextFrame(what = 'a message', ms = DEFAULT_WAIT_MS) {
    const deadline = Date.now() + ms;
    while (this.queue.length === 0) {
      if (this.closeInfo) {
        throw new Error(`socket closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting for ${what}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise((resolve) => {
        const timer = setTimeout(() => { this.waiter = null; resolve(); }, left);
        this.waiter = () => { clearTimeout(timer); resolve(); };
      });
    }
    return this.queue.shift();
  }

  async next(what, ms) {
    return (await this.nextFrame(what, ms)).msg;
  }

  // Sends a ping with a fresh nonce and returns every message that arrived
  // before its pong. The server answers a connection's messages in order, so
  // this proves that nothing else is pending.
  async drainUntilPong(nonce, ms = DEFAULT_WAIT_MS, cbor = false) {
    const ping = { type: 'ping', nonce };
    if (cbor) this.sendCbor(ping); else this.sendJson(ping);
    const before = [];
    for (;;) {
      const msg = await this.next(`pong ${nonce}`, ms);
      if (msg && msg.type === 'pong' && msg.nonce === nonce) return before;
      before.push(msg);
    }
  }

  waitClose(ms = DEFAULT_WAIT_MS) {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return withTimeout(new Promise((resolve) => this.closeWaiters.push(resolve)), ms, 'socket close');
  }

  isOpen() { return this.ws.readyState === WebSocket.OPEN; }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
    }
  }
}

async function newRoom(base) {
  const api = new driftdb.Api(base);
  return withTimeout(api.newRoom(), DEFAULT_WAIT_MS, 'POST /new');
}

// Bytes of a Uint8Array-like value as a plain array, for comparisons.
const bytesOf = (v) => Array.from(v);

module.exports = {
  driftdb,
  CBOR,
  WebSocket,
  withTimeout,
  poll,
  collector,
  openDb,
  trackDb,
  closeDb,
  closeAllDbs,
  RawSocket,
  newRoom,
  bytesOf,
  DEFAULT_WAIT_MS,
};
