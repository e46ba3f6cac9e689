// reachd dashboard: renders the overview and events from the server's
// JSON, keeps them live over server-sent events, and shows the server's
// SVG charts with range buttons and drag-to-zoom. No library, no build.
'use strict';

const S = {
  range: '3h', from: null, to: null, ov: null, events: [],
  token: sessionStorage.getItem('reachd-token') || '',
};
const RANGES = { '1h': 36e5, '3h': 3 * 36e5, '12h': 12 * 36e5, '1d': 864e5, '2d': 2 * 864e5, '7d': 7 * 864e5, '30d': 30 * 864e5 };
const LOSS = [['0', '#1a9e00'], ['≤1 %', '#00a0e0'], ['≤5 %', '#0059ff'], ['≤10 %', '#5e00ff'], ['≤25 %', '#9b00d6'], ['≤50 %', '#dd00aa'], ['all but one', '#ff3300'], ['all', '#b00000']];
const M_LEFT = 56, M_RIGHT = 12; // chart margins, as svg.go draws them

// el builds an element; strings become text nodes (never HTML).
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function fmtTime(s) {
  if (!s) return '–';
  const d = new Date(s);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
function ago(s) {
  if (!s) return '';
  const sec = Math.max(0, Math.round((Date.now() - new Date(s).getTime()) / 1000));
  if (sec < 60) return sec + ' s ago';
  if (sec < 3600) return Math.floor(sec / 60) + ' min ago';
  if (sec < 86400) return Math.floor(sec / 3600) + ' h ' + Math.floor(sec % 3600 / 60) + ' min ago';
  return Math.floor(sec / 86400) + ' d ago';
}
function badge(kind, text) { return el('span', { class: 'badge ' + kind + '-' + text }, text); }
function num(v, unit, digits) { return v === null || v === undefined ? '–' : v.toFixed(digits) + ' ' + unit; }

async function action(url, body, question) {
  if (!window.confirm(question)) return;
  if (!S.token) {
    const t = window.prompt('API token (kept for this tab only)');
    if (!t) return;
    S.token = t.trim();
    sessionStorage.setItem('reachd-token', S.token);
  }
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + S.token }, body: JSON.stringify(body) });
  const j = await r.json().catch(() => ({}));
  if (r.status === 401) { S.token = ''; sessionStorage.removeItem('reachd-token'); }
  if (!r.ok) window.alert('Refused: ' + (j.error || r.status));
}

function pathActions(s, p) {
  const mk = (status, label) => el('button', {
    type: 'button', class: status === 'down' ? 'danger' : '',
    onclick: () => action('api/actions/override', { service: s.name, path: p.name, status }, `Force ${s.name}/${p.name} ${status}?`),
  }, label);
  const drain = s.selection === 'ecmp' ? el('button', {
    type: 'button',
    onclick: () => action('api/actions/drain', { service: s.name, path: p.name, status: p.drained ? 'undrain' : 'drain' },
      p.drained ? `Undrain ${s.name}/${p.name} (new connections may use it again)?` : `Drain ${s.name}/${p.name} (no new connections; existing ones stay)?`),
  }, p.drained ? 'Undrain' : 'Drain') : null;
  return el('td', {}, mk('down', 'Force down'), ' ', mk('up', 'Force up'), ' ', p.override !== 'auto' ? mk('auto', 'Auto') : null, ' ', drain);
}

function renderServices(ov) {
  const box = document.getElementById('services');
  const out = [];
  if (!ov.services.length) out.push(el('p', { class: 'note' }, 'No services are configured.'));
  for (const s of ov.services) {
    const current = s.selection === 'ecmp' && s.mode === 'path' ? (s.usable || []).join(', ')
      : s.mode === 'path' || s.mode === 'best-effort' ? s.current : s.mode;
    const head = el('p', { class: 'summary' },
      'Current path: ', el('span', { class: 'current', 'data-service': s.name }, current || '–'), ' ',
      badge('mode', s.mode), ' ',
      s.since ? el('span', { title: fmtTime(s.since) }, 'since ' + fmtTime(s.since) + ' (' + ago(s.since) + ')') : null,
      s.reason ? el('span', { class: 'reason' }, ' — ' + s.reason) : null,
      s['shared-fate'] ? el('strong', {}, ' ' + s['shared-fate']) : null);
    const rows = s.paths.map(p => el('tr', { 'data-path': p.name },
      el('th', { scope: 'row' }, p.name, p.current ? ' (in use)' : ''),
      el('td', {}, badge('state', p.state)),
      el('td', { class: 'hide-narrow' }, p.probed),
      el('td', { class: 'num' }, String(p['vector-priority'])),
      el('td', {}, (p.override === 'auto' ? 'auto' : 'forced ' + p.override) + (p.drained ? ', drained' : '')),
      el('td', { class: 'num' }, num(p['last-rtt-ms'], 'ms', 2)),
      el('td', { class: 'num' }, num(p['loss-pct'], '%', 1)),
      el('td', { class: 'hide-narrow' }, p.reason || ''),
      ov.actions ? pathActions(s, p) : null));
    const table = el('div', { class: 'scroll' }, el('table', {},
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Path'), el('th', { scope: 'col' }, 'State'),
        el('th', { scope: 'col', class: 'hide-narrow' }, 'Probed'), el('th', { scope: 'col', class: 'num' }, 'Priority'),
        el('th', { scope: 'col' }, 'Override / drain'), el('th', { scope: 'col', class: 'num' }, 'Last RTT'),
        el('th', { scope: 'col', class: 'num' }, 'Loss (1 min)'), el('th', { scope: 'col', class: 'hide-narrow' }, 'Reason'),
        ov.actions ? el('th', { scope: 'col' }, 'Actions') : null)),
      el('tbody', {}, rows)));
    out.push(el('article', { class: 'service', id: 'svc-' + s.name }, el('h3', {}, s.name), head, table));
  }
  box.replaceChildren(...out);
  document.getElementById('mode-note').textContent = ov.actions
    ? 'Actions are enabled (API token configured); each asks for confirmation and the token.'
    : 'Read-only: configure api.token-file to enable override and force buttons.';
}

function renderHeartbeats(ov) {
  const hb = ov.heartbeats;
  const box = document.getElementById('hb');
  if (!hb.listeners.length && !hb.groups.length) {
    box.replaceChildren(el('p', { class: 'note' }, 'No heartbeat listeners are configured.'));
    return;
  }
  const lrows = hb.listeners.map(l => el('tr', {}, el('th', { scope: 'row' }, l.name), el('td', {}, l.listen),
    el('td', {}, badge('hb', l.state)), el('td', { class: 'num' }, String(l.count)),
    el('td', {}, l['last-heartbeat'] ? ago(l['last-heartbeat']) : 'never'), el('td', { class: 'hide-narrow' }, l.reason)));
  const grows = hb.groups.map(g => el('tr', {}, el('th', { scope: 'row' }, g.name),
    el('td', {}, badge('hb', g.effective)), el('td', {}, g.force), el('td', { class: 'num' }, String(g['failed-threshold'])),
    el('td', { class: 'hide-narrow' }, g.reason),
    ov.actions ? el('td', {}, ['force-on', 'force-off', 'auto'].map(m => el('button', {
      type: 'button', onclick: () => action('api/actions/bypass', { group: g.name, status: m }, `Set bypass group ${g.name} to ${m}?`),
    }, m))) : null));
  const held = [...(hb['held-addresses'] || []).map(a => 'address ' + a + ' removed'), ...(hb['held-interfaces'] || []).map(i => 'interface ' + i + ' down')];
  box.replaceChildren(
    el('h3', {}, 'Listeners'),
    el('div', { class: 'scroll' }, el('table', {}, el('thead', {}, el('tr', {}, ['Listener', 'Address', 'State', 'Heartbeats', 'Last', 'Reason'].map((h, i) => el('th', { scope: 'col', class: i === 5 ? 'hide-narrow' : null }, h)))), el('tbody', {}, lrows))),
    el('h3', {}, 'Groups'),
    el('div', { class: 'scroll' }, el('table', {}, el('thead', {}, el('tr', {}, ['Group', 'State', 'Force', 'Threshold', 'Reason'].map((h, i) => el('th', { scope: 'col', class: i === 4 ? 'hide-narrow' : null }, h)), ov.actions ? el('th', { scope: 'col' }, 'Actions') : null)), el('tbody', {}, grows))),
    el('h3', {}, 'What bypass holds'),
    held.length ? el('ul', {}, held.map(h => el('li', {}, h))) : el('p', { class: 'note' }, 'Nothing: every address and interface is as it was.'));
}

function renderEvents() {
  const kind = document.getElementById('ev-kind').value;
  const q = document.getElementById('ev-q').value.toLowerCase();
  const rows = S.events.filter(e => (!kind || e.kind === kind) &&
    (!q || [e.service, e.subject, e.reason, e.from, e.to].join(' ').toLowerCase().includes(q)))
    .slice(0, 200).map(e => el('tr', { 'data-kind': e.kind },
      el('td', { class: 'num' }, fmtTime(e.time)), el('td', {}, e.kind),
      el('td', {}, [e.service, e.subject].filter(Boolean).join(' / ')),
      el('td', {}, e.from || e.to ? (e.from || '') + ' → ' + (e.to || '') : ''),
      el('td', {}, e.reason || '')));
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '5', class: 'note' }, 'No events.')));
  document.getElementById('event-rows').replaceChildren(...rows);
}

// Charts: one per path, flow direction and link test.
function seriesList(ov) {
  const out = [];
  for (const s of ov.services) for (const p of s.paths) out.push([p.series, 'Path ' + s.name + ' / ' + p.name]);
  for (const f of ov.flows) { out.push([f['forward-series'], 'Flow ' + f.id + ' forward']); out.push([f['reverse-series'], 'Flow ' + f.id + ' reverse']); }
  for (const l of ov.linktests) out.push([l.series, 'Link test ' + l.name + ' (' + l.interface + '), loss and looped RTT per run']);
  return out;
}

function window_() {
  if (S.from !== null) return { from: S.from, to: S.to };
  const to = Date.now();
  return { from: to - RANGES[S.range], to };
}

function chartSrc(key, img) {
  const w = Math.max(280, Math.round(img.parentElement.clientWidth || 800));
  const h = w < 500 ? 180 : 220;
  const q = S.from !== null ? `from=${Math.round(S.from)}&to=${Math.round(S.to)}` : `range=${S.range}`;
  return `api/chart.svg?series=${encodeURIComponent(key)}&${q}&w=${w}&h=${h}&_=${Date.now()}`;
}

function renderCharts() {
  if (!S.ov) return;
  const box = document.getElementById('charts');
  const want = seriesList(S.ov);
  const have = new Map([...box.children].map(c => [c.dataset.series, c]));
  const kids = want.map(([key, title]) => {
    let c = have.get(key);
    if (!c) {
      const img = el('img', { alt: 'Latency and loss chart of ' + title, width: '800', height: '220', draggable: 'false', loading: 'lazy' });
      const plot = el('div', { class: 'plot' }, img);
      c = el('div', { class: 'chart', 'data-series': key }, el('h3', {}, title), plot);
      zoomable(plot);
    }
    return c;
  });
  box.replaceChildren(...kids);
  for (const c of kids) {
    const img = c.querySelector('img');
    img.src = chartSrc(c.dataset.series, img);
  }
  const w = window_();
  document.getElementById('range-text').textContent = fmtTime(new Date(w.from).toISOString()) + ' – ' + fmtTime(new Date(w.to).toISOString());
  document.getElementById('unzoom').hidden = S.from === null;
  for (const b of document.querySelectorAll('[data-range]')) b.setAttribute('aria-pressed', String(S.from === null && b.dataset.range === S.range));
}

// zoomable lets a drag across a chart select the time range of every chart.
function zoomable(plot) {
  let x0 = null, sel = null;
  const frac = x => {
    const r = plot.getBoundingClientRect();
    const scale = r.width / Number(plot.querySelector('img').naturalWidth || r.width);
    const left = M_LEFT * scale, right = r.width - M_RIGHT * scale;
    return Math.min(1, Math.max(0, (x - r.left - left) / (right - left)));
  };
  plot.addEventListener('pointerdown', e => {
    if (e.button !== 0) return;
    e.preventDefault(); // no native drag of the image
    x0 = e.clientX;
    sel = el('div', { class: 'sel' });
    plot.append(sel);
    try { plot.setPointerCapture(e.pointerId); } catch (err) { /* the pointer is gone */ }
  });
  plot.addEventListener('pointercancel', () => { if (sel) sel.remove(); x0 = null; });
  plot.addEventListener('pointermove', e => {
    if (x0 === null) return;
    const r = plot.getBoundingClientRect();
    sel.style.left = (Math.min(x0, e.clientX) - r.left) + 'px';
    sel.style.width = Math.abs(e.clientX - x0) + 'px';
  });
  plot.addEventListener('pointerup', e => {
    if (x0 === null) return;
    const a = frac(Math.min(x0, e.clientX)), b = frac(Math.max(x0, e.clientX));
    sel.remove(); x0 = null;
    if (b - a < 0.01) return;
    const w = window_();
    const span = w.to - w.from;
    const from = w.from + a * span, to = w.from + b * span;
    if (to - from < 60e3) return;
    S.from = from; S.to = to;
    renderCharts();
  });
}

function setLive(cls, text) {
  const l = document.getElementById('live');
  l.className = 'live ' + cls;
  l.textContent = text;
}

function connect() {
  const es = new EventSource('api/stream');
  es.addEventListener('open', () => setLive('live-ok', 'live'));
  es.addEventListener('error', () => setLive('live-down', 'reconnecting…'));
  es.addEventListener('overview', m => {
    const first = S.ov === null;
    S.ov = JSON.parse(m.data);
    renderServices(S.ov);
    renderHeartbeats(S.ov);
    if (first || seriesList(S.ov).length !== document.getElementById('charts').children.length) renderCharts();
    document.getElementById('footer').textContent = 'Updated ' + fmtTime(S.ov.generated) + ' · ' + S.ov.recorder.series + ' series kept' +
      (S.ov.recorder.dropped ? ' · ' + S.ov.recorder.dropped + ' observations dropped (the dashboard fell behind)' : '');
  });
  es.addEventListener('event', m => {
    const e = JSON.parse(m.data);
    if (S.events.length && S.events[0].seq >= e.seq) return;
    S.events.unshift(e);
    S.events.length = Math.min(S.events.length, 1000);
    renderEvents();
    if (e.kind === 'path-state' && S.from === null) setTimeout(renderCharts, 500);
  });
}

async function init() {
  document.getElementById('legend').replaceChildren(...LOSS.map(([label, color]) =>
    el('li', {}, el('span', { class: 'swatch', style: null, 'data-color': color }), 'loss ' + label)));
  for (const s of document.querySelectorAll('.swatch')) s.style.background = s.dataset.color;
  for (const b of document.querySelectorAll('[data-range]')) b.addEventListener('click', () => { S.range = b.dataset.range; S.from = S.to = null; renderCharts(); });
  document.getElementById('unzoom').addEventListener('click', () => { S.from = S.to = null; renderCharts(); });
  document.getElementById('ev-kind').addEventListener('change', renderEvents);
  document.getElementById('ev-q').addEventListener('input', renderEvents);
  try {
    const r = await fetch('api/events?n=500');
    if (r.ok) S.events = await r.json();
  } catch (e) { /* the stream will bring new ones */ }
  renderEvents();
  connect();
  // Relative ranges move with time; a zoomed range stays put.
  setInterval(() => { if (S.from === null) renderCharts(); }, 30000);
  let resize = null;
  window.addEventListener('resize', () => { clearTimeout(resize); resize = setTimeout(renderCharts, 300); });
}

init();
