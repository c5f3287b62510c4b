'use strict';
// The driftd admin page. Everything it shows comes from this node: the cluster table from
// GET /admin/api/cluster (the node gathers the other members' figures), a room from
// GET /admin/api/room/{id}, its new messages from the room's debug feed
// (/room/{id}/connect?debug=true), and pushes go to POST /room/{id}/send.
//
// The token comes from the fragment (#token=...) or the form, and travels only as
// `Authorization: Bearer TOKEN`; it is kept for this tab (sessionStorage) and taken out of
// the address bar. Values in rooms are client data: they are only ever set as text.

(() => {
  const REFRESH_MS = 1000;
  const LIVE_LIMIT = 200;
  const FEED_RETRY_MS = 2000;
  const TOKEN_KEY = 'driftd-admin-token';

  const $ = (id) => document.getElementById(id);
  // Paths relative to the node's root, wherever the page is mounted ("/admin" -> "/").
  const root = location.pathname.replace(/admin$/, '');

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    room: '',
    timer: null,
    samples: new Map(), // member -> { t, pushes, deliveries }
    socket: null,
    feedRetry: null,
    known: new Map(), // key -> { seq, size } of what the page shows
    refreshRoom: null,
  };

  class AuthError extends Error {}

  // -- small helpers --------------------------------------------------------------------

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (name === 'text') node.textContent = value;
      else if (name === 'className') node.className = value;
      else if (name.startsWith('data-')) node.setAttribute(name, value);
      else node[name] = value;
    }
    for (const child of children) node.append(child);
    return node;
  }

  function fmtBytes(n) {
    if (n == null) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  }

  function fmtDuration(seconds) {
    if (seconds == null) return '—';
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d > 0) return `${d}d ${h}h`;
    if (h > 0) return `${h}h ${m}m`;
    if (m > 0) return `${m}m ${s % 60}s`;
    return `${s}s`;
  }

  function fmtRate(r) {
    return r == null ? '—' : r.toFixed(r < 10 ? 1 : 0);
  }

  function showValue(v) {
    return JSON.stringify(v);
  }

  function setStatus(text, kind) {
    const s = $('status');
    s.textContent = text;
    s.dataset.state = kind;
  }

  async function api(path) {
    const res = await fetch(root + path, {
      headers: { Authorization: `Bearer ${state.token}` },
      cache: 'no-store',
    });
    if (res.status === 401) throw new AuthError('the admin token is missing or wrong');
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error || `answered ${res.status}`);
    return body;
  }

  // -- the fragment: #token=...&room=... -------------------------------------------------

  function readFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    const token = params.get('token');
    if (token) {
      state.token = token;
      sessionStorage.setItem(TOKEN_KEY, token);
    }
    return params.get('room') || '';
  }

  function writeFragment() {
    const params = new URLSearchParams();
    if (state.room) params.set('room', state.room);
    const hash = params.toString();
    history.replaceState(null, '', hash ? `#${hash}` : location.pathname + location.search);
  }

  // -- signing in --------------------------------------------------------------------------

  function signedOut(message) {
    clearTimeout(state.timer);
    closeFeed();
    $('content').hidden = true;
    $('members').tBodies[0].replaceChildren();
    $('auth').hidden = false;
    $('auth-error').textContent = message || '';
    setStatus('signed out', 'error');
  }

  function signedIn() {
    $('auth').hidden = true;
    $('content').hidden = false;
  }

  // -- the cluster -------------------------------------------------------------------------

  function rates(name, figures, now) {
    const last = state.samples.get(name);
    state.samples.set(name, { t: now, pushes: figures.pushes, deliveries: figures.deliveries });
    if (!last || now <= last.t || figures.pushes < last.pushes) return [null, null];
    const dt = (now - last.t) / 1000;
    return [(figures.pushes - last.pushes) / dt, (figures.deliveries - last.deliveries) / dt];
  }

  function renderMembers(doc) {
    const now = performance.now();
    $('node-name').textContent = `node ${doc.node}`;
    const rows = doc.members.map((m) => {
      const f = m.figures;
      const [pushRate, deliveryRate] = f ? rates(m.name, f, now) : [null, null];
      const conns = f ? f.connections.json + f.connections.cbor : null;
      const row = el('tr', { 'data-member': m.name },
        el('td', {}, el('span', { text: m.name }), m.self ? el('span', { className: 'muted', text: ' (this node)' }) : ''),
        el('td', {}, el('span', { className: 'state', 'data-state': m.state, text: m.state })),
        el('td', { className: 'mono', text: m.http || '' }),
        el('td', { className: 'num connections', text: conns == null ? '—' : `${conns}`,
          title: f ? `json ${f.connections.json}, cbor ${f.connections.cbor}` : (m.error || '') }),
        el('td', { className: 'num rooms', text: f ? `${f.rooms}` : '—' }),
        el('td', { className: 'num pushes', text: fmtRate(pushRate), title: f ? `${f.pushes} in all` : '' }),
        el('td', { className: 'num deliveries', text: fmtRate(deliveryRate), title: f ? `${f.deliveries} in all` : '' }),
        el('td', { className: 'num memory', text: f ? fmtBytes(f.memory_bytes) : '—' }),
        el('td', { className: 'num uptime', text: f ? fmtDuration(f.uptime_seconds) : (m.error || '—') }));
      return row;
    });
    $('members').tBodies[0].replaceChildren(...rows);
  }

  async function refreshCluster() {
    clearTimeout(state.timer);
    try {
      const doc = await api('admin/api/cluster');
      signedIn();
      renderMembers(doc);
      $('cluster-error').textContent = '';
      setStatus('live', 'live');
    } catch (err) {
      if (err instanceof AuthError) return signedOut(err.message);
      $('cluster-error').textContent = `cluster view: ${err.message}`;
      setStatus('no answer', 'error');
    }
    state.timer = setTimeout(refreshCluster, REFRESH_MS);
  }

  // -- a room -------------------------------------------------------------------------------

  function entriesList(entries) {
    return el('ul', { className: 'entries' }, ...entries.map((e) =>
      el('li', { className: 'value', 'data-seq': `${e.seq}` },
        el('span', { className: 'seq', text: `#${e.seq}` }), showValue(e.value))));
  }

  function keyRow(k) {
    return el('tr', { 'data-key': k.key },
      el('td', { className: 'mono', text: k.key }),
      el('td', { className: 'num size', text: `${k.size}` }),
      el('td', { className: 'num bytes', text: k.bytes == null ? '—' : fmtBytes(k.bytes) }),
      el('td', {}, entriesList(k.latest)));
  }

  function renderRoom(doc) {
    $('room').hidden = false;
    $('room-id').textContent = doc.room;
    $('room-owner').textContent = doc.owner_http ? `${doc.owner} (${doc.owner_http})` : doc.owner;
    $('room-seq').textContent = `${doc.seq}`;
    $('room-connections').textContent = `${doc.connections}`;
    $('room-bytes').textContent = `${fmtBytes(doc.bytes)} in ${doc.keys_total} key(s)`;
    $('keys').tBodies[0].replaceChildren(...doc.keys.map(keyRow));
    $('keys-note').textContent = doc.keys.length < doc.keys_total
      ? `showing the first ${doc.keys.length} of ${doc.keys_total} keys` : '';
    for (const k of doc.keys) {
      const newest = k.latest.length ? k.latest[k.latest.length - 1].seq : 0;
      const known = state.known.get(k.key);
      if (!known || newest >= known.seq) state.known.set(k.key, { seq: newest, size: k.size });
    }
  }

  async function loadRoom() {
    const room = state.room;
    try {
      const doc = await api(`admin/api/room/${encodeURIComponent(room)}`);
      if (room !== state.room) return false;
      $('room-error').textContent = '';
      renderRoom(doc);
      return true;
    } catch (err) {
      if (err instanceof AuthError) { signedOut(err.message); return false; }
      $('room-error').textContent = `room ${room}: ${err.message}`;
      $('room').hidden = true;
      return false;
    }
  }

  // A new message changed the room: read it again soon (its sizes, seq, connections), once
  // for a burst.
  function roomChanged() {
    if (state.refreshRoom) return;
    state.refreshRoom = setTimeout(() => { state.refreshRoom = null; loadRoom(); }, 250);
  }

  function logLive(kind, key, text, seq) {
    const item = el('li', { 'data-kind': kind, 'data-key': key },
      el('span', { className: 'kind', text: kind }),
      el('span', { className: 'mono', text: key }), ' ',
      seq != null ? el('span', { className: 'seq', text: `#${seq}` }) : '',
      el('span', { className: 'value', text }));
    const list = $('live');
    list.prepend(item);
    while (list.children.length > LIVE_LIMIT) list.lastElementChild.remove();
  }

  function onFeedMessage(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    if (msg.type === 'init') {
      // A key's stream changed (or, at connect, is shown whole): what is newer than what the
      // page showed is new.
      const known = state.known.get(msg.key) || { seq: 0, size: 0 };
      const fresh = msg.data.filter((e) => e.seq > known.seq);
      for (const e of fresh) logLive('push', msg.key, showValue(e.value), e.seq);
      // Nothing newer but fewer entries: the stream was compacted.
      if (!fresh.length && msg.data.length !== known.size) {
        logLive('compact', msg.key, `${msg.data.length} entries kept`);
      }
      const newest = msg.data.length ? msg.data[msg.data.length - 1].seq : 0;
      state.known.set(msg.key, { seq: Math.max(known.seq, newest), size: msg.data.length });
      const row = $('keys').querySelector(`tr[data-key="${CSS.escape(msg.key)}"]`);
      const updated = keyRow({ key: msg.key, size: msg.data.length, bytes: null, latest: msg.data.slice(-20) });
      if (row) row.replaceWith(updated);
      else $('keys').tBodies[0].append(updated);
      roomChanged();
    } else if (msg.type === 'push') {
      logLive('relay', msg.key, showValue(msg.value), msg.seq);
      roomChanged();
    } else if (msg.type === 'error') {
      logLive('error', '', msg.message);
    }
  }

  function closeFeed() {
    clearTimeout(state.feedRetry);
    if (state.socket) {
      state.socket.onclose = null;
      state.socket.close();
      state.socket = null;
    }
    $('feed-state').textContent = 'closed';
  }

  function openFeed(room) {
    closeFeed();
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${scheme}//${location.host}${root}room/${encodeURIComponent(room)}/connect?debug=true`;
    const socket = new WebSocket(url);
    state.socket = socket;
    $('feed-state').textContent = 'connecting';
    socket.onopen = () => { $('feed-state').textContent = 'open'; };
    socket.onmessage = (ev) => { if (typeof ev.data === 'string') onFeedMessage(ev.data); };
    socket.onerror = () => { $('feed-state').textContent = 'failed'; };
    socket.onclose = () => {
      if (state.socket !== socket) return;
      state.socket = null;
      $('feed-state').textContent = 'closed; reconnecting';
      state.feedRetry = setTimeout(() => { if (state.room === room) openFeed(room); }, FEED_RETRY_MS);
    };
  }

  async function openRoom(room) {
    closeFeed();
    state.room = room;
    state.known = new Map();
    $('live').replaceChildren();
    $('room-input').value = room;
    writeFragment();
    if (!room) { $('room').hidden = true; return; }
    // The feed opens once the page shows the room, so that what it brings is newer.
    if (await loadRoom()) openFeed(room);
  }

  // -- sending a push -----------------------------------------------------------------------

  async function sendPush(ev) {
    ev.preventDefault();
    const out = $('push-result');
    let value;
    try {
      value = JSON.parse($('push-value').value);
    } catch (err) {
      out.textContent = `the value is not JSON: ${err.message}`;
      return;
    }
    const action = { type: $('push-action').value };
    if (action.type === 'compact') action.seq = Number($('push-seq').value);
    const msg = { type: 'push', key: $('push-key').value, value, action };
    try {
      const res = await fetch(`${root}room/${encodeURIComponent(state.room)}/send`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(msg),
      });
      const text = await res.text();
      out.textContent = res.ok ? `sent; answer: ${text}` : `refused (${res.status}): ${text}`;
    } catch (err) {
      out.textContent = `not sent: ${err.message}`;
    }
  }

  // -- wiring ---------------------------------------------------------------------------------

  function start() {
    const room = readFragment();
    writeFragment();
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      state.token = $('token-input').value.trim();
      sessionStorage.setItem(TOKEN_KEY, state.token);
      $('token-input').value = '';
      refreshCluster().then(() => { if (state.room && !$('content').hidden) openRoom(state.room); });
    });
    $('room-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      openRoom($('room-input').value.trim());
    });
    $('push-form').addEventListener('submit', sendPush);
    $('push-action').addEventListener('change', () => {
      $('push-seq-label').hidden = $('push-action').value !== 'compact';
    });
    window.addEventListener('hashchange', () => {
      const next = readFragment();
      writeFragment();
      if (next && next !== state.room) openRoom(next);
      else if (state.token) refreshCluster();
    });
    if (!state.token) {
      state.room = room;
      writeFragment();
      return signedOut('');
    }
    refreshCluster().then(() => { if (room && !$('content').hidden) openRoom(room); });
  }

  start();
})();
