// Credits & Billing dashboard. No framework: the page fetches the ledger's read models, draws
// them (charts are SVG built here), and listens to the account's event stream to refetch with
// ?min_position= when a new event has been applied.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';
  const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
  const RECENT_KEY = 'creditledger.recent';
  const TOKEN_KEY = 'creditledger.token';

  const state = {
    account: '',
    asOf: '',       // RFC 3339 UTC, or '' for now
    gen: 0,         // bumped when the account or as_of changes; late answers of older ones are dropped
    heard: 0,       // newest position the event stream reported
    rendered: 0,    // position of the read models on screen
    loading: false,
    again: false,
    view: '',       // overview, accounts or account
    stream: null,   // AbortController of the event stream
    last: null,     // last answers, to redraw charts on resize
  };

  // ---------- formatting ----------

  function fmtCredits(v) {
    if (v === null || v === undefined || v === '') return '–';
    let s = String(v);
    const neg = s.startsWith('-');
    if (neg) s = s.slice(1);
    const [i, f] = s.split('.');
    const grouped = i.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return (neg ? '−' : '') + grouped + (f ? '.' + f : '');
  }
  const num = (v) => (v === null || v === undefined ? 0 : Number(v));

  function fmtTime(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`;
  }
  const fmtDate = (iso) => fmtTime(iso).slice(0, 10);

  function featureName(id) {
    const s = String(id).replace(/_/g, ' ');
    return s.charAt(0).toUpperCase() + s.slice(1);
  }
  const modelName = (m) => (m === 'payg' ? 'PAYG' : m === 'credits' ? 'Credits' : String(m));
  const sourceName = (s) => ({ sales: 'Sales', aws_marketplace: 'AWS Marketplace', azure_marketplace: 'Azure Marketplace' }[s] || s);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === 'text') e.textContent = v; else e.setAttribute(k, String(v));
    }
    for (const c of children) if (c) e.append(c);
    return e;
  }
  const titled = (node, text) => { node.append(svg('title', { text })); return node; };

  // ---------- talking to the server ----------

  const token = () => sessionStorage.getItem(TOKEN_KEY) || '';
  function headers(accept) {
    const h = { Accept: accept };
    const t = token();
    if (t) h.Authorization = 'Bearer ' + t;
    return h;
  }

  async function getJSON(path, params) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== '' && v !== null && v !== undefined && v !== 0) url.searchParams.set(k, String(v));
    }
    try {
      const res = await fetch(url, { headers: headers('application/json'), cache: 'no-store' });
      let body = null;
      if ((res.headers.get('Content-Type') || '').includes('application/json')) {
        try { body = await res.json(); } catch (_) { body = null; }
      }
      return { status: res.status, ok: res.ok && body !== null && body.ok !== false, body };
    } catch (err) {
      return { status: 0, ok: false, body: null, error: String(err) };
    }
  }

  const accountPath = (what) => `/v1/accounts/${encodeURIComponent(state.account)}/${what}`;

  async function refresh() {
    if (!state.account) return;
    if (state.loading) { state.again = true; return; }
    state.loading = true;
    try {
      do { state.again = false; await load(); } while (state.again);
    } finally {
      state.loading = false;
    }
  }

  async function load() {
    const gen = state.gen;
    const q = { min_position: state.heard, as_of: state.asOf };
    const [bal, lic, sw, hist, usage, acct, contracts, log] = await Promise.all([
      getJSON(accountPath('balance'), q),
      getJSON(accountPath('licenses'), q),
      getJSON(accountPath('switches'), q),
      getJSON(accountPath('history'), q),
      getJSON(accountPath('usage'), q),
      getJSON(`/v1/accounts/${encodeURIComponent(state.account)}`, q),
      getJSON(accountPath('contracts'), q),
      getJSON(accountPath('log'), q),
    ]);
    if (gen !== state.gen) return; // the account or the moment changed meanwhile
    if (!bal.ok) { showProblem(bal); return; }
    showError('');
    state.last = { bal: bal.body, lic: lic.body, sw: sw.body, hist: hist.body };
    state.rendered = Math.max(state.rendered, num(bal.body.position));
    $('dashboard').hidden = false;
    renderBalance(bal.body);
    if (lic.ok) renderLicenses(lic.body);
    if (sw.ok) renderSwitches(sw.body, hist.ok ? hist.body : null);
    renderHistory(hist.ok ? hist.body : null);
    renderUsage(usage.ok ? usage.body : null);
    renderAccountState(acct.ok ? acct.body : null);
    renderContracts(contracts.ok ? contracts.body : null);
    renderEventLog(log.ok ? log.body : null);
    renderAsOfNote(bal.body);
    document.body.dataset.position = String(state.rendered);
    setStatus(`Account ${state.account} at position ${state.rendered}` +
      (state.asOf ? `, as of ${fmtTime(state.asOf)} UTC` : '') + ` · updated ${new Date().toLocaleTimeString()}`);
  }

  function showProblem(r) {
    const code = r.body && r.body.error ? r.body.error.code : '';
    if (r.status === 404 && code === 'not_found') {
      $('dashboard').hidden = true;
      state.last = null;
      showError('');
      setStatus(state.asOf
        ? `Account ${state.account} had no events at ${fmtTime(state.asOf)} UTC.`
        : `Account ${state.account} has no events yet; this page shows it as soon as it has.`);
      return;
    }
    if (r.status === 401 || r.status === 403) {
      document.querySelector('details.settings').open = true;
      showError(r.status === 401 ? 'The server asks for an API token: enter one under "API token".' : 'This API token may not read the dashboard.');
      return;
    }
    const msg = r.body && r.body.error ? `${r.body.error.code}: ${r.body.error.message}` : (r.error || `HTTP ${r.status}`);
    showError(`Could not load account ${state.account}: ${msg}. Showing the last data loaded.`);
  }

  function setStatus(text) { $('status').textContent = text; }
  function showError(text) { $('error').textContent = text; $('error').hidden = !text; }

  // ---------- live updates: Server-Sent Events over fetch (so a bearer token can be sent) ----------

  function setLive(mode) {
    const text = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', off: 'Not connected' }[mode];
    $('live').textContent = text;
    $('live-dot').className = 'dot ' + mode;
    document.body.dataset.live = mode;
  }

  function disconnect() {
    if (state.stream) state.stream.abort();
    state.stream = null;
    setLive('off');
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
    });
  }

  function connect() {
    disconnect();
    const ctl = new AbortController();
    state.stream = ctl;
    const path = accountPath('events');
    (async () => {
      let delay = 500;
      while (!ctl.signal.aborted) {
        setLive(delay === 500 ? 'connecting' : 'reconnecting');
        try {
          const res = await fetch(path, { headers: headers('text/event-stream'), cache: 'no-store', signal: ctl.signal });
          if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
          setLive('live');
          delay = 500;
          await readEvents(res.body, onStreamEvent);
        } catch (_) {
          if (ctl.signal.aborted) return;
        }
        if (ctl.signal.aborted) return;
        setLive('reconnecting');
        await sleep(delay, ctl.signal);
        delay = Math.min(delay * 2, 10000);
      }
    })();
  }

  async function readEvents(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value.replace(/\r\n?/g, '\n');
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line === '' || line.startsWith(':')) continue;
          const c = line.indexOf(':');
          const field = c < 0 ? line : line.slice(0, c);
          let val = c < 0 ? '' : line.slice(c + 1);
          if (val.startsWith(' ')) val = val.slice(1);
          if (field === 'event') name = val; else if (field === 'data') data.push(val);
        }
        if (data.length) onEvent(name, data.join('\n'));
      }
    }
  }

  function onStreamEvent(name, data) {
    if (name !== 'position') return;
    let msg;
    try { msg = JSON.parse(data); } catch (_) { return; }
    const p = num(msg.position);
    if (p > state.heard) state.heard = p;
    if (p > state.rendered) refresh();
  }

  // ---------- balance ----------

  function renderBalance(b) {
    $('total').textContent = fmtCredits(b.total_credits);
    $('allocated').textContent = fmtCredits(b.allocated_credits);
    $('available').textContent = fmtCredits(b.available_credits);
    $('shortfall').textContent = fmtCredits(b.shortfall);
    $('shortfall-box').classList.toggle('bad', num(b.shortfall) > 0);
    drawAllocations(b);
  }

  function drawAllocations(b) {
    const box = $('alloc-chart');
    const width = Math.max(280, Math.floor(box.clientWidth || 560));
    const total = num(b.total_credits);
    const allocated = num(b.allocated_credits);
    const rows = Object.entries(b.allocations || {}).sort((x, y) => num(y[1]) - num(x[1]) || (x[0] < y[0] ? -1 : 1));
    const scaleMax = Math.max(total, allocated, 1);
    const left = 4, right = 90, barW = width - left - right;
    const x = (v) => left + (barW * v) / scaleMax;
    const rowH = 40;
    const height = 46 + rows.length * rowH + 4;
    const summary = `Pool ${fmtCredits(b.total_credits)} credits, ${fmtCredits(b.allocated_credits)} allocated` +
      rows.map(([f, c]) => `; ${featureName(f)} ${fmtCredits(c)}`).join('');
    const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': 'alloc-caption alloc-desc', class: 'svgchart' });
    root.append(svg('desc', { id: 'alloc-desc', text: summary }));
    // The pool: allocated within it, available, and any shortfall beyond it.
    const inPool = Math.min(allocated, total);
    root.append(svg('text', { x: left, y: 12, class: 'label', text: 'Pool' }));
    root.append(svg('rect', { x: left, y: 18, width: Math.max(0, x(total) - left), height: 18, class: 'bar-pool' }));
    root.append(titled(svg('rect', { x: left, y: 18, width: Math.max(0, x(inPool) - left), height: 18, class: 'bar-allocated' }), `Allocated ${fmtCredits(b.allocated_credits)}`));
    if (allocated > total) {
      root.append(titled(svg('rect', { x: x(total), y: 18, width: x(allocated) - x(total), height: 18, class: 'bar-shortfall' }), `Shortfall ${fmtCredits(b.shortfall)}`));
    }
    root.append(svg('text', { x: width - right + 6, y: 32, class: 'value', text: `${fmtCredits(b.allocated_credits)} / ${fmtCredits(b.total_credits)}` }));
    rows.forEach(([feature, credits], i) => {
      const y = 46 + i * rowH;
      root.append(svg('text', { x: left, y: y + 12, class: 'label', text: featureName(feature) }));
      root.append(svg('rect', { x: left, y: y + 18, width: barW, height: 14, class: 'bar-track' }));
      root.append(titled(svg('rect', { x: left, y: y + 18, width: Math.max(1, x(num(credits)) - left), height: 14, class: 'bar-feature' }),
        `${featureName(feature)}: ${fmtCredits(credits)} credits`));
      root.append(svg('text', { x: width - right + 6, y: y + 30, class: 'value', text: fmtCredits(credits) }));
    });
    if (!rows.length) root.append(svg('text', { x: left, y: 62, class: 'muted', text: 'No credits allocated to any feature.' }));
    box.replaceChildren(root);
  }

  // ---------- licenses ----------

  function renderLicenses(l) {
    const items = l.licenses || [];
    // AWS and Azure increases are their own rows, listed right under the license they extend.
    const children = new Map();
    for (const it of items) {
      if (it.parent_license_id) {
        if (!children.has(it.parent_license_id)) children.set(it.parent_license_id, []);
        children.get(it.parent_license_id).push(it);
      }
    }
    const ordered = [];
    const known = new Set(items.map((it) => it.license_id));
    for (const it of items) {
      if (it.parent_license_id && known.has(it.parent_license_id)) continue;
      ordered.push(it);
      for (const c of children.get(it.license_id) || []) ordered.push(c);
    }
    const rows = ordered.map((it) => {
      const idCell = it.parent_license_id
        ? el('th', { scope: 'row', class: 'item' }, el('span', { 'aria-hidden': 'true', text: '↳ ' }), it.license_id,
          el('span', { class: 'sub', text: ` increase of ${it.parent_license_id}` }))
        : el('th', { scope: 'row', text: it.license_id });
      return el('tr', { 'data-license': it.license_id, class: it.parent_license_id ? 'item-row' : null },
        idCell,
        el('td', { 'data-label': 'Source', text: sourceName(it.source) }),
        el('td', { 'data-label': 'Status' }, el('span', { class: `badge ${it.status}`, text: it.status })),
        el('td', { 'data-label': 'Credits', class: 'num', text: fmtCredits(it.credits) }),
        el('td', { 'data-label': 'Purchased' }, el('time', { datetime: it.purchased_at, text: fmtDate(it.purchased_at) })),
        el('td', { 'data-label': 'Activated' }, it.activated_at ? el('time', { datetime: it.activated_at, text: fmtDate(it.activated_at) }) : '–'),
        el('td', { 'data-label': 'Expires' }, el('time', { datetime: it.expires_at, text: fmtDate(it.expires_at) })),
        el('td', { 'data-label': 'Auto-renew', text: it.auto_renew ? 'Yes' : 'No' }));
    });
    document.querySelector('#licenses-table tbody').replaceChildren(...rows);
    $('licenses-empty').hidden = rows.length > 0;
  }

  // ---------- billing models and their switch history ----------

  function renderSwitches(s, hist) {
    const features = Object.entries(s.features || {}).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const points = hist && hist.points ? hist.points : [];
    const start = points.length ? points[0].at : null;
    const end = points.length ? points[points.length - 1].at : null;
    const items = features.map(([id, f]) => {
      const history = f.history || [];
      const li = el('li', { class: 'feature', 'data-feature': id },
        el('h3', { text: featureName(id) }),
        el('p', { class: 'model' }, 'Billing model: ', el('span', { class: `badge ${f.billing_model}`, text: modelName(f.billing_model) })),
        f.next_switch_allowed_at
          ? el('p', { class: 'next' }, 'Next switch allowed from ',
            el('time', { datetime: f.next_switch_allowed_at, text: fmtTime(f.next_switch_allowed_at) + ' UTC' }))
          : el('p', { class: 'next', text: 'Never switched; it can switch whenever a PAYG contract is active.' }));
      if (history.length) {
        li.append(timeline(f, history, start, end));
        li.append(el('ol', { class: 'switches', 'aria-label': `Switches of ${featureName(id)}` },
          ...history.map((h) => el('li', {}, el('time', { datetime: h.at, text: fmtTime(h.at) }), ` ${modelName(h.from)} → ${modelName(h.to)}`))));
      }
      return li;
    });
    $('features').replaceChildren(...items);
  }

  // timeline draws a feature's billing model over time as coloured segments; the list beside it
  // carries the same facts for screen readers, so the drawing is hidden from them.
  function timeline(f, history, start, end) {
    const width = 320, height = 34;
    const t0 = Math.min(...[start, history[0].at].filter(Boolean).map((t) => Date.parse(t)));
    const ends = [end, history[history.length - 1].at, f.next_switch_allowed_at, state.asOf].filter(Boolean).map((t) => Date.parse(t));
    let t1 = Math.max(...ends);
    if (t1 <= t0) t1 = t0 + 86400000;
    const pad = 6;
    const x = (t) => pad + ((width - 2 * pad) * (t - t0)) / (t1 - t0);
    const root = svg('svg', { width: '100%', height, viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', 'aria-hidden': 'true', class: 'timeline' });
    let from = t0, model = history[0].from;
    for (const h of history) {
      const at = Date.parse(h.at);
      root.append(svg('rect', { x: x(from), y: 8, width: Math.max(0, x(at) - x(from)), height: 12, class: `seg ${model}` }));
      from = at; model = h.to;
    }
    root.append(svg('rect', { x: x(from), y: 8, width: Math.max(0, x(t1) - x(from)), height: 12, class: `seg ${model}` }));
    for (const h of history) root.append(svg('circle', { cx: x(Date.parse(h.at)), cy: 14, r: 4, class: 'switch-dot' }));
    if (f.next_switch_allowed_at) {
      const nx = x(Date.parse(f.next_switch_allowed_at));
      root.append(svg('line', { x1: nx, x2: nx, y1: 2, y2: 26, class: 'next-line' }));
    }
    const wrap = el('div', { class: 'timeline-wrap' });
    wrap.append(root, el('p', { class: 'axis' }, el('span', { text: fmtDate(new Date(t0).toISOString()) }), el('span', { text: fmtDate(new Date(t1).toISOString()) })));
    return wrap;
  }

  // ---------- credits over time ----------

  function renderHistory(h) {
    const box = $('history-chart');
    const points = h && h.points ? h.points : [];
    const body = document.querySelector('#history-table tbody');
    body.replaceChildren(...points.slice().reverse().map((p) => el('tr', { 'data-position': p.position },
      el('td', { text: String(p.position) }),
      el('td', {}, el('time', { datetime: p.at, text: fmtTime(p.at) })),
      el('td', { text: p.type }),
      el('td', { text: p.license_id || (p.feature ? featureName(p.feature) : '') }),
      el('td', { class: 'num', text: fmtCredits(p.total_credits) }),
      el('td', { class: 'num', text: fmtCredits(p.allocated_credits) }))));
    if (!points.length) {
      box.replaceChildren(el('p', { class: 'muted', text: h ? 'No events before this moment.' : 'The history could not be loaded.' }));
      return;
    }
    box.replaceChildren(lineChart(points, h.truncated));
  }

  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function lineChart(points, truncated) {
    const box = $('history-chart');
    const width = Math.max(280, Math.floor(box.clientWidth || 560));
    const height = width < 500 ? 200 : 240;
    const m = { l: 58, r: 12, t: 12, b: 28 };
    const ts = points.map((p) => Date.parse(p.at));
    let t0 = ts[0];
    let t1 = Math.max(ts[ts.length - 1], state.asOf ? Date.parse(state.asOf) : 0);
    if (t1 - t0 < 3600000) { t1 = t0 + 3600000; }
    const span = t1 - t0;
    t1 += span * 0.03;
    const yMax = niceMax(Math.max(...points.map((p) => Math.max(num(p.total_credits), num(p.allocated_credits)))) * 1.05);
    const x = (t) => m.l + ((width - m.l - m.r) * (t - t0)) / (t1 - t0);
    const y = (v) => height - m.b - ((height - m.t - m.b) * v) / yMax;
    const last = points[points.length - 1];
    const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'svgchart',
      'aria-label': `Credits over time from ${fmtTime(points[0].at)} to ${fmtTime(last.at)} UTC: now ${fmtCredits(last.total_credits)} total, ` +
        `${fmtCredits(last.allocated_credits)} allocated. The table below lists every event.` });
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4;
      root.append(svg('line', { x1: m.l, x2: width - m.r, y1: y(v), y2: y(v), class: 'grid' }));
      root.append(svg('text', { x: m.l - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end', text: fmtCredits(String(+v.toFixed(2))) }));
    }
    const nTicks = Math.max(2, Math.floor((width - m.l - m.r) / 110));
    for (let i = 0; i <= nTicks; i++) {
      const t = t0 + ((t1 - t0) * i) / nTicks;
      const d = new Date(t).toISOString();
      const label = span < 2 * 86400000 ? fmtTime(d).slice(5) : fmtDate(d);
      root.append(svg('text', { x: x(t), y: height - 8, class: 'tick', 'text-anchor': i === 0 ? 'start' : i === nTicks ? 'end' : 'middle', text: label }));
    }
    const step = (key) => {
      let d = `M ${x(ts[0])} ${y(num(points[0][key]))}`;
      for (let i = 1; i < points.length; i++) d += ` H ${x(ts[i])} V ${y(num(points[i][key]))}`;
      return d + ` H ${x(t1)}`;
    };
    root.append(svg('path', { d: step('total_credits'), class: 'line total' }));
    root.append(svg('path', { d: step('allocated_credits'), class: 'line allocated' }));
    points.forEach((p, i) => {
      const kind = p.type === 'LicenseExpired' ? 'expired' : p.type === 'LicenseRenewed' ? 'renewed' : '';
      if (!kind) return;
      root.append(titled(svg('circle', { cx: x(ts[i]), cy: y(num(p.total_credits)), r: 5, class: `mark ${kind}` }),
        `${fmtTime(p.at)} UTC: license ${p.license_id} ${kind}; total ${fmtCredits(p.total_credits)}`));
    });
    if (truncated) root.append(svg('text', { x: m.l + 4, y: m.t + 10, class: 'tick', text: 'older events left off' }));
    return root;
  }

  // ---------- optional panels: usage (PAYG) and account state, once the server has them ----------

  function renderUsage(u) {
    const section = $('usage');
    if (!u) { section.hidden = true; return; } // the server has no usage read model, or not as of then
    section.hidden = false;
    const rows = usageRows(u);
    if (!rows.length) {
      $('usage-body').replaceChildren(el('p', { class: 'muted', text: 'No pay-as-you-go usage recorded.' }));
      return;
    }
    const table = el('table', { id: 'usage-table' },
      el('thead', {}, el('tr', {}, ...['Month', 'Feature', 'Quantity', 'Amount', 'Records'].map((h, i) => el('th', { scope: 'col', class: i >= 2 ? 'num' : null, text: h })))),
      el('tbody', {}, ...rows.map((r) => el('tr', { class: r.total ? 'total-row' : null },
        r.total ? el('th', { scope: 'row', text: r.month }) : el('td', { text: r.month }),
        el('td', { text: r.feature }), el('td', { class: 'num', text: r.quantity }),
        el('td', { class: 'num', text: r.amount }), el('td', { class: 'num', text: r.records })))));
    const body = [el('div', { class: 'table-wrap', role: 'region', 'aria-labelledby': 'usage-h', tabindex: '0' }, table)];
    if (u.rounding) body.push(el('p', { class: 'muted small', text: `Amounts: ${u.rounding}.` }));
    $('usage-body').replaceChildren(...body);
  }

  // usageRows reads the usage answer: months (oldest first), each with features -> {unit,
  // quantity, amount, records} and a total; one row per feature and a total row per month.
  function usageRows(u) {
    const out = [];
    const months = Array.isArray(u.months) ? u.months : [];
    for (const mo of months) {
      const cur = mo.currency ? ' ' + mo.currency : '';
      const feats = Object.entries(mo.features || {}).sort((a, b) => (a[0] < b[0] ? -1 : 1));
      for (const [feature, f] of feats) {
        out.push({ month: mo.month || '', feature: featureName(feature), quantity: `${fmtCredits(f.quantity)}${f.unit ? ' ' + f.unit : ''}`,
          amount: fmtCredits(f.amount) + cur, records: String(f.records ?? '–') });
      }
      if (feats.length && mo.total) {
        out.push({ total: true, month: `${mo.month} total`, feature: '', quantity: '', amount: fmtCredits(mo.total.amount) + cur,
          records: String(mo.total.records ?? '–') });
      }
    }
    return out;
  }

  function renderAccountState(a) {
    const section = $('account-state');
    if (!a || a.status === undefined) { section.hidden = true; return; }
    section.hidden = false;
    const sub = a.subscription;
    const pairs = [
      ['Status', a.status],
      ['Billing path', a.billing_path],
      ['Subscription', sub ? `${sub.subscription_id} (${sub.marketplace})` : null],
      ['Grace until', a.grace_until ? fmtTime(a.grace_until) + ' UTC' : null],
      ['Expired at', a.expired_at ? fmtTime(a.expired_at) + ' UTC' : null],
    ].filter(([, v]) => v);
    $('account-state-body').replaceChildren(...pairs.map(([k, v]) => el('div', {}, el('dt', { text: k }),
      el('dd', {}, k === 'Status' ? el('span', { class: `badge ${v}`, text: v }) : v))));
  }

  function renderAsOfNote(bal) {
    const note = $('as-of-note');
    if (!state.asOf) { note.hidden = true; return; }
    let text = state.view === 'account' ? `Showing the account as it was at ${fmtTime(state.asOf)} UTC.`
      : `Showing every account as it was at ${fmtTime(state.asOf)} UTC.`;
    if (bal.as_of === undefined) {
      text += ' This server does not answer as_of for the balance, licenses and billing models yet, so those show the latest state; the credits chart stops at that moment.';
    }
    note.textContent = text;
    note.hidden = false;
  }

  // renderBrokenNote says, under the as_of note, which accounts a fleet as_of answer left out:
  // their stored history breaks before that moment, so the figures cover the others only.
  function renderBrokenNote(answer) {
    const named = answer.broken_accounts || [];
    if (!state.asOf || !answer.broken_count) return;
    const note = $('as-of-note');
    const list = named.map((b) => `${b.account_id} (position ${b.position})`).join(', ') +
      (answer.broken_count > named.length ? ` and ${answer.broken_count - named.length} more` : '');
    note.textContent = `Showing every account as it was at ${fmtTime(state.asOf)} UTC, except ${answer.broken_count} ` +
      `whose stored history breaks: ${list}. The figures cover the other accounts only.`;
    note.hidden = false;
  }

  // ---------- PAYG contracts and the event log with its hash-chain status ----------

  function renderContracts(c) {
    const section = $('contracts');
    if (!c) { section.hidden = true; return; }
    section.hidden = false;
    const list = c.contracts || [];
    if (!list.length) {
      $('contracts-body').replaceChildren(el('p', { class: 'muted', text: 'No pay-as-you-go contract.' }));
      return;
    }
    const blocks = list.map((k) => {
      const rates = Object.entries(k.rates || {}).sort((a, b) => (a[0] < b[0] ? -1 : 1));
      const head = el('p', { class: 'contract', 'data-contract': k.contract_id },
        el('strong', { text: k.contract_id }), ' ', el('span', { class: `badge ${k.status}`, text: k.status }),
        k.in_effect ? el('span', { class: 'badge active', text: 'in effect' }) : null,
        ` · purchased ${fmtDate(k.purchased_at)}`, k.activated_at ? ` · activated ${fmtDate(k.activated_at)}` : '');
      const table = rates.length
        ? el('div', { class: 'table-wrap rates', role: 'region', 'aria-label': `Rates of ${k.contract_id}`, tabindex: '0' },
          el('table', { class: 'rates-table' },
            el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Feature (tier)' }), el('th', { scope: 'col', class: 'num', text: 'Rate per unit' }))),
            el('tbody', {}, ...rates.map(([key, r]) => {
              const [f, tier] = key.split(':');
              return el('tr', {}, el('td', { text: featureName(f) + (tier ? ` (${tier.replace('_', ' ')})` : '') }), el('td', { class: 'num', text: String(r) }));
            }))))
        : el('p', { class: 'muted small', text: 'No contract rates: usage is priced from the rate card.' });
      return el('div', {}, head, table);
    });
    $('contracts-body').replaceChildren(...blocks);
  }

  function renderEventLog(l) {
    const section = $('event-log');
    if (!l) { section.hidden = true; return; }
    section.hidden = false;
    const evs = l.events || [];
    const summary = $('chain-summary');
    summary.className = l.chain_ok ? 'chain-ok' : 'chain-bad';
    summary.textContent = l.chain_ok
      ? `All ${evs.length} events check out: every hash matches its event and links to the one before.`
      : `${l.broken} of ${evs.length} events do not check out: run creditledger audit verify.`;
    document.querySelector('#event-log-table tbody').replaceChildren(...evs.slice().reverse().map((e) => el('tr', { 'data-position': e.position },
      el('td', { text: String(e.position) }), el('td', { text: String(e.version) }),
      el('td', {}, el('time', { datetime: e.occurred_at, text: fmtTime(e.occurred_at) })),
      el('td', { text: e.type }),
      el('td', { class: 'hash', title: e.hash, text: (e.hash || '').slice(0, 12) + '…' }),
      el('td', { class: e.chain === 'ok' ? 'chain-ok' : 'chain-bad', text: e.chain === 'ok' ? '✓ ok' : `✗ ${e.chain}${e.reason ? ': ' + e.reason : ''}` }))));
  }

  // ---------- views: overview and account list (fleet read models) ----------

  function setView(name) {
    state.view = name;
    $('overview').hidden = name !== 'overview';
    $('accounts-view').hidden = name !== 'accounts';
    if (name !== 'account') $('dashboard').hidden = true;
    for (const [id, v] of [['nav-overview', 'overview'], ['nav-accounts', 'accounts']]) {
      if (v === name) $(id).setAttribute('aria-current', 'page'); else $(id).removeAttribute('aria-current');
    }
    document.querySelector('.live').hidden = name !== 'account'; // the live stream follows one account
    document.body.dataset.view = name;
  }

  const accountLink = (id) => el('a', { href: `/?account=${encodeURIComponent(id)}`, text: id });
  const asOfParam = () => (state.asOf ? { as_of: state.asOf } : {});
  const isoSeconds = (d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

  function fleetProblem(r, what) {
    if (r.status === 401 || r.status === 403) { showProblem(r); return; }
    const msg = r.body && r.body.error ? `${r.body.error.code}: ${r.body.error.message}` : (r.error || `HTTP ${r.status}`);
    showError(`Could not load ${what}: ${msg}.`);
  }

  async function loadOverview() {
    setView('overview');
    setStatus('Loading the overview…');
    const now = state.asOf ? new Date(state.asOf) : new Date();
    const month = now.toISOString().slice(0, 7);
    const base = asOfParam();
    const expiringBefore = isoSeconds(new Date(now.getTime() + 30 * 86400000));
    const [tot, short, grace, expiring, charges] = await Promise.all([
      getJSON('/v1/totals', base),
      getJSON('/v1/accounts', { ...base, shortfall: 'true', limit: 20 }),
      getJSON('/v1/accounts', { ...base, status: 'grace', limit: 20 }),
      getJSON('/v1/accounts', { ...base, expiring_before: expiringBefore, limit: 20 }),
      getJSON('/v1/payg/charges', { ...base, month, limit: 1 }),
    ]);
    if (state.view !== 'overview') return;
    if (!tot.ok) { fleetProblem(tot, 'the totals'); return; }
    showError('');
    $('overview').hidden = false;
    const t = tot.body;
    $('fleet-accounts').textContent = fmtCredits(String(t.accounts));
    $('fleet-sold').textContent = fmtCredits(t.credits.sold);
    $('fleet-active').textContent = fmtCredits(t.credits.active);
    $('fleet-allocated').textContent = fmtCredits(t.credits.allocated);
    $('fleet-available').textContent = fmtCredits(t.credits.available);
    const ch = charges.ok ? charges.body.totals || [] : [];
    $('fleet-payg').textContent = ch.length ? ch.map((c) => `${fmtCredits(c.amount)} ${c.currency}`).join(', ') : 'none';
    $('fleet-grace').textContent = `${t.in_grace} in grace`;
    $('fleet-expired').textContent = `${t.expired} expired`;
    $('fleet-shortfall').textContent = `${t.with_shortfall} with a shortfall`;
    const sources = Object.entries(t.by_source || {}).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    document.querySelector('#by-source-table tbody').replaceChildren(...sources.map(([s, v]) => el('tr', {},
      el('th', { scope: 'row', text: sourceName(s) }), el('td', { class: 'num', text: String(v.accounts) }),
      el('td', { class: 'num', text: String(v.licenses) }), el('td', { class: 'num', text: fmtCredits(v.credits_sold) }),
      el('td', { class: 'num', text: fmtCredits(v.credits_active) }))));
    const feats = Object.entries(t.by_feature || {}).filter(([, v]) => num(v.credits_allocated) > 0 || v.accounts_on_payg > 0)
      .sort((a, b) => num(b[1].credits_allocated) - num(a[1].credits_allocated));
    document.querySelector('#by-feature-table tbody').replaceChildren(...feats.map(([f, v]) => el('tr', {},
      el('th', { scope: 'row', text: featureName(f) }), el('td', { class: 'num', text: fmtCredits(v.credits_allocated) }),
      el('td', { class: 'num', text: String(v.accounts_allocating) }), el('td', { class: 'num', text: String(v.accounts_on_payg) }))));
    attention('att-shortfall', short, (a) => `${fmtCredits(a.shortfall)} credits short`, { shortfall: 'true' });
    attention('att-grace', grace, (a) => (a.grace_until ? `until ${fmtTime(a.grace_until)} UTC` : ''), { status: 'grace' });
    attention('att-expiring', expiring, (a) => (a.next_expiry_at ? `expires ${fmtDate(a.next_expiry_at)}` : ''), { expiring_before: expiringBefore });
    document.body.dataset.position = String(t.position);
    setStatus(`All accounts at position ${t.position}` + (state.asOf ? `, as of ${fmtTime(state.asOf)} UTC` : '') +
      ` · updated ${new Date().toLocaleTimeString()}`);
    renderBrokenNote(t);
  }

  // attention lists up to 20 accounts; "More" opens the account list with the same filter and
  // moment, not every account as it is now.
  function attention(id, r, detail, filter) {
    const list = r.ok ? r.body.accounts || [] : [];
    const items = list.map((a) => el('li', { 'data-account': a.account_id }, accountLink(a.account_id), el('span', { class: 'detail', text: detail(a) })));
    if (!items.length) items.push(el('li', { class: 'muted', text: r.ok ? 'None.' : 'Could not be loaded.' }));
    if (r.ok && r.body.next_cursor) {
      const more = new URLSearchParams({ view: 'accounts', ...filter, ...asOfParam() });
      items.push(el('li', {}, el('a', { class: 'more', href: `/?${more}`, text: 'More in the account list' })));
    }
    $(id).replaceChildren(...items);
  }

  // expiringBefore comes from the overview's "More" link (the form has no field for it); the
  // form's own search drops it.
  const listState = { cursor: '', filters: {}, expiringBefore: '' };

  function listFilters() {
    const f = { prefix: $('list-prefix').value.trim(), status: $('list-status').value, billing_path: $('list-path').value,
      source: $('list-source').value, expiring_before: listState.expiringBefore, ...asOfParam() };
    if ($('list-shortfall').checked) f.shortfall = 'true';
    return f;
  }

  async function loadList(more) {
    setView('accounts');
    $('accounts-view').hidden = false;
    if (!more) { listState.filters = listFilters(); listState.cursor = ''; }
    const p = listState.filters.prefix;
    if (p && !ID_RE.test(p)) {
      $('list-prefix').setAttribute('aria-invalid', 'true');
      showError('An account id prefix is 1–64 letters, digits, _ or -.');
      return;
    }
    $('list-prefix').removeAttribute('aria-invalid');
    const r = await getJSON('/v1/accounts', { ...listState.filters, cursor: listState.cursor, limit: 50 });
    if (state.view !== 'accounts') return;
    if (!r.ok) { fleetProblem(r, 'the accounts'); return; }
    showError('');
    const rows = (r.body.accounts || []).map((a) => el('tr', { 'data-account': a.account_id },
      el('th', { scope: 'row', 'data-label': 'Account' }, accountLink(a.account_id)),
      el('td', { 'data-label': 'Status' }, el('span', { class: `badge ${a.status}`, text: a.status })),
      el('td', { 'data-label': 'Billing path', text: a.billing_path }),
      el('td', { 'data-label': 'Sources', text: (a.sources || []).map(sourceName).join(', ') || '–' }),
      el('td', { 'data-label': 'Total', class: 'num', text: fmtCredits(a.total_credits) }),
      el('td', { 'data-label': 'Allocated', class: 'num', text: fmtCredits(a.allocated_credits) }),
      el('td', { 'data-label': 'Available', class: 'num', text: fmtCredits(a.available_credits) }),
      el('td', { 'data-label': 'Shortfall', class: num(a.shortfall) > 0 ? 'num chain-bad' : 'num', text: fmtCredits(a.shortfall) })));
    const body = document.querySelector('#accounts-table tbody');
    if (more) body.append(...rows); else body.replaceChildren(...rows);
    listState.cursor = r.body.next_cursor || '';
    $('list-more').hidden = !listState.cursor;
    $('accounts-empty').hidden = body.children.length > 0;
    document.body.dataset.position = String(r.body.position);
    renderBrokenNote(r.body);
    setStatus(`${body.children.length} account${body.children.length === 1 ? '' : 's'} shown at position ${r.body.position}` +
      (listState.filters.expiring_before ? `, with credits expiring before ${fmtTime(listState.filters.expiring_before)} UTC` : '') +
      (listState.cursor ? '; more below' : ''));
  }

  // ---------- the picker ----------

  function asOfFromInput() {
    const v = $('as-of').value;
    if (!v) return '';
    const withSeconds = v.length === 16 ? v + ':00' : v;
    const d = new Date(withSeconds + 'Z');
    return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace('.000Z', 'Z');
  }

  function rememberAccount(id) {
    let list = [];
    try { list = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]'); } catch (_) { list = []; }
    if (!Array.isArray(list)) list = [];
    list = list.filter((x) => typeof x === 'string' && ID_RE.test(x) && x !== id);
    if (id) list.unshift(id);
    list = list.slice(0, 10);
    try { localStorage.setItem(RECENT_KEY, JSON.stringify(list)); } catch (_) { /* private mode */ }
    $('recent-accounts').replaceChildren(...list.map((x) => el('option', { value: x })));
  }

  function syncURL() {
    const url = new URL(location.href);
    url.search = '';
    if (state.account) url.searchParams.set('account', state.account);
    if (state.asOf) url.searchParams.set('as_of', state.asOf);
    if (!state.account && state.view && state.view !== 'overview') url.searchParams.set('view', state.view);
    history.replaceState(null, '', url);
  }

  function choose(account, asOf) {
    const changed = account !== state.account;
    state.account = account;
    state.asOf = asOf;
    state.gen++;
    state.rendered = 0;
    if (changed) state.heard = 0;
    setView('account');
    syncURL();
    rememberAccount(account);
    setStatus(`Loading account ${account}…`);
    if (changed || !state.stream) connect();
    refresh();
  }

  function submit(ev) {
    if (ev) ev.preventDefault();
    const input = $('account');
    const id = input.value.trim();
    if (!ID_RE.test(id)) {
      input.setAttribute('aria-invalid', 'true');
      showError('An account id is 1–64 letters, digits, _ or -.');
      input.focus();
      return;
    }
    input.removeAttribute('aria-invalid');
    showError('');
    choose(id, asOfFromInput());
  }

  function init() {
    $('picker').addEventListener('submit', submit);
    $('as-of').addEventListener('change', () => { if (state.account) choose(state.account, asOfFromInput()); else reloadView(asOfFromInput()); });
    $('now').addEventListener('click', () => { $('as-of').value = ''; if (state.account) choose(state.account, ''); else reloadView(''); });
    $('list-filter').addEventListener('submit', (ev) => { ev.preventDefault(); listState.expiringBefore = ''; loadList(false); });
    $('list-more').addEventListener('click', () => loadList(true));
    $('token').value = token();
    $('token').addEventListener('change', () => {
      const t = $('token').value.trim();
      if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
      if (state.account) { connect(); refresh(); }
    });
    let frame = 0;
    window.addEventListener('resize', () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        if (!state.last) return;
        drawAllocations(state.last.bal);
        if (state.last.hist && state.last.hist.points) renderHistory(state.last.hist);
      });
    });
    const params = new URLSearchParams(location.search);
    const asOf = params.get('as_of') || '';
    if (asOf && !Number.isNaN(Date.parse(asOf))) $('as-of').value = new Date(asOf).toISOString().slice(0, 19);
    const account = params.get('account') || '';
    rememberAccount(ID_RE.test(account) ? account : '');
    if (ID_RE.test(account)) {
      $('account').value = account;
      choose(account, asOfFromInput());
    } else {
      state.asOf = asOfFromInput();
      if (params.get('view') === 'accounts') {
        $('list-prefix').value = params.get('prefix') || '';
        const status = params.get('status') || '';
        if (['active', 'grace', 'expired'].includes(status)) $('list-status').value = status;
        $('list-shortfall').checked = params.get('shortfall') === 'true';
        const exp = params.get('expiring_before') || '';
        listState.expiringBefore = exp && !Number.isNaN(Date.parse(exp)) ? exp : '';
        loadList(false);
      } else {
        loadOverview();
      }
      $('account').focus();
    }
  }

  // reloadView shows the overview or the account list again at another moment.
  function reloadView(asOf) {
    state.asOf = asOf;
    syncURL();
    renderAsOfNote({ as_of: asOf });
    if (state.view === 'accounts') loadList(false); else loadOverview();
  }

  init();
})();
