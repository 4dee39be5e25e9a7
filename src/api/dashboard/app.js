// browserd dashboard (docs/dashboard.md). Plain JavaScript, no libraries, no build step.
// Rules kept here:
//  - The API key lives in sessionStorage and goes out only as "Authorization: Bearer"; it is
//    never put in a URL.
//  - Every value from the API reaches the DOM through textContent or an attribute set by
//    setAttribute/dataset (never innerHTML), so a URL like <img onerror=...> is text.
//  - The table's query is the page's URL query (bookmarkable); the API validates it, and its
//    400 details are shown as they are.
//  - While the page is visible the list is polled with the current query every 2 s (the
//    charts every 10 s): simple, and a running session appears, updates and ends on its own.
'use strict';

(function () {
  const KEY_STORAGE = 'browserd.apiKey';
  const POLL_MS = 2000;
  const STATS_EVERY = 5; // polls
  const FILTERS = ['status', 'api_name', 'target_url', 'end_url', 'start_date', 'end_date'];
  const DEFAULTS = { status: 'all', sort: 'timestamp', order: 'desc', limit: '50', offset: '0', chart: '24h' };
  const LIST_PARAMS = [...FILTERS, 'sort', 'order', 'limit', 'offset'];
  const STATUSES = ['finished', 'failed', 'running'];
  const HOUR = 3600e3;
  const DAY = 24 * HOUR;

  const $ = (id) => document.getElementById(id);
  let apiKey = sessionStorage.getItem(KEY_STORAGE) || '';
  let state = {};
  let lastListText = '';
  let lastStatsText = '';
  let generation = 0; // bumps on every change of query: older answers are dropped
  let inFlight = false;
  let ticks = 0;
  let timer = null;
  let detailId = null;
  let detailReturnFocus = null;

  // ------------------------------------------------------------------ formatting ----

  const nf = new Intl.NumberFormat('en-US');
  function fmtTime(iso) {
    return iso ? iso.replace('T', ' ').replace('Z', '') : '';
  }
  function fmtDuration(sec) {
    if (sec === null || sec === undefined) return null;
    if (sec < 60) return `${sec.toFixed(sec < 10 ? 3 : 1)} s`;
    const s = Math.floor(sec);
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }
  function fmtBytes(n) {
    if (n < 1000) return `${n} B`;
    const units = ['kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
    let v = n;
    let i = -1;
    while (v >= 1000 && i < units.length - 1) {
      v /= 1000;
      i++;
    }
    return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
  }
  function isoSeconds(ms) {
    return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c); // strings become text nodes
    return e;
  }
  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ------------------------------------------------------------------ API ----

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.details || body.error)) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  async function api(method, path, key = apiKey) {
    let res;
    try {
      res = await fetch(path, { method, headers: { Authorization: `Bearer ${key}` }, cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, { error: 'browserd cannot be reached' });
    }
    const text = res.status === 204 ? '' : await res.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!res.ok) throw new ApiError(res.status, body);
    return { body, text };
  }

  function queryString(names, extra = {}) {
    const p = new URLSearchParams();
    for (const n of names) if (state[n] !== undefined && state[n] !== '' && state[n] !== DEFAULTS[n]) p.set(n, state[n]);
    for (const [k, v] of Object.entries(extra)) p.set(k, v);
    const s = p.toString();
    return s ? `?${s}` : '';
  }

  // ------------------------------------------------------------------ state <-> URL ----

  function readUrl() {
    const p = new URLSearchParams(location.search);
    state = {};
    for (const n of [...LIST_PARAMS, 'chart']) state[n] = p.get(n) ?? DEFAULTS[n] ?? '';
  }
  function writeUrl(push) {
    const qs = queryString([...LIST_PARAMS, 'chart']);
    const url = location.pathname + qs;
    if (url !== location.pathname + location.search) history[push ? 'pushState' : 'replaceState'](null, '', url);
  }
  function stateToForm() {
    const f = $('filters');
    for (const n of [...FILTERS, 'sort', 'order', 'limit']) {
      const input = f.elements[n];
      if (input.tagName === 'SELECT' && ![...input.options].some((o) => o.value === state[n])) {
        input.append(el('option', { value: state[n], text: state[n] })); // the API will judge it
      }
      input.value = state[n];
    }
    $('chart-range').value = ['24h', '7d', '30d', 'filter'].includes(state.chart) ? state.chart : '24h';
  }
  function formToState() {
    const f = $('filters');
    for (const n of [...FILTERS, 'sort', 'order', 'limit']) state[n] = f.elements[n].value.trim();
    state.offset = '0';
  }

  // ------------------------------------------------------------------ sign in ----

  function showSignIn(message) {
    stopPolling();
    $('app').hidden = true;
    $('sign-out').hidden = true;
    $('signin').hidden = false;
    $('signin-message').textContent = message || '';
    $('api-key').value = '';
    $('api-key').focus();
  }

  function explainAuth(e) {
    if (e.status === 401) {
      return e.body && e.body.error === 'Invalid credentials'
        ? 'This API key was not accepted (Invalid credentials): check it, or ask for a new one.'
        : 'An API key is needed.';
    }
    if (e.status === 0) return 'browserd cannot be reached: is it running?';
    return `browserd answered ${e.status}: ${e.message}`;
  }

  async function signIn(key) {
    $('signin-message').textContent = 'Checking the key…';
    $('signin-message').classList.add('ok');
    try {
      await api('GET', '/browser_sessions?limit=1', key);
    } catch (e) {
      $('signin-message').classList.remove('ok');
      $('signin-message').textContent = explainAuth(e);
      $('api-key').select();
      return;
    }
    $('signin-message').classList.remove('ok');
    apiKey = key;
    sessionStorage.setItem(KEY_STORAGE, key);
    showApp(true);
  }

  function signOut(message) {
    apiKey = '';
    sessionStorage.removeItem(KEY_STORAGE);
    if ($('detail').open) $('detail').close();
    showSignIn(message);
  }

  function showApp(focus) {
    $('signin').hidden = true;
    $('app').hidden = false;
    $('sign-out').hidden = false;
    readUrl();
    stateToForm();
    reload();
    startPolling();
    if (focus) $('f-status').focus();
  }

  // Any request answered 401 after sign-in: the key was revoked meanwhile.
  function handleError(e, where) {
    if (e.status === 401) {
      signOut('The API key is no longer accepted (it may have been revoked): sign in again.');
      return true;
    }
    where.textContent = e.status === 400 ? `The query is not valid: ${e.message}` : explainAuth(e);
    return false;
  }

  // ------------------------------------------------------------------ the table ----

  function cell(label, content, cls) {
    const td = el('td', cls ? { class: cls } : {});
    td.dataset.label = label;
    if (content === null || content === undefined) td.append(el('span', { class: 'null', text: '—' }));
    else td.append(content);
    return td;
  }

  // One line on a desktop (the whole URL in its tooltip and in the session's details).
  function urlCell(label, url) {
    const td = cell(label, url, 'url');
    if (url) td.title = url;
    return td;
  }

  function sessionRow(s) {
    const tr = el('tr');
    tr.dataset.id = s.session_id;
    tr.dataset.status = s.status;
    const open = el('button', { type: 'button', class: 'open', text: s.session_id.slice(0, 8) + '…' });
    open.setAttribute('aria-label', `Details of session ${s.session_id}`);
    open.title = s.session_id;
    open.dataset.id = s.session_id;
    open.addEventListener('click', () => openDetail(s.session_id, open));
    const bw = el('span', { text: fmtBytes(s.bandwidth) });
    bw.title = `${nf.format(s.bandwidth)} bytes`;
    let err = null;
    if (s.error) {
      err = el('span', { text: s.error.code });
      err.title = s.error.message;
    }
    tr.append(
      cell('Started', fmtTime(s.timestamp), 'time'),
      cell('Session', open),
      cell('Status', el('span', { class: `status ${s.status}`, text: s.status })),
      cell('API name', s.api_name),
      urlCell('Target URL', s.target_url),
      urlCell('End URL', s.end_url),
      cell('Navigations', String(s.navigations), 'num'),
      cell('Duration', fmtDuration(s.duration), 'num'),
      cell('Bandwidth', bw, 'num'),
      cell('Captcha', s.captcha),
      cell('Error', err, 'error'),
    );
    return tr;
  }

  function renderList(body) {
    const tbody = $('sessions').tBodies[0];
    // keep the keyboard where it was across a live refresh
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.id : null;
    tbody.replaceChildren(...body.sessions.map(sessionRow));
    if (!body.sessions.length) {
      const td = el('td', { colspan: '11', text: body.total ? 'No sessions on this page.' : 'No sessions match the filters.' });
      tbody.append(el('tr', { class: 'empty' }, td));
    }
    if (focused) {
      const again = tbody.querySelector(`button.open[data-id="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
    const off = body.pagination.offset;
    const lim = body.pagination.limit;
    const first = body.count ? off + 1 : 0;
    const text = body.total
      ? `${nf.format(first)}–${nf.format(off + body.count)} of ${nf.format(body.total)} sessions`
      : 'No sessions';
    if ($('summary').textContent !== text) $('summary').textContent = text;
    const page = Math.floor(off / lim) + 1;
    const pages = Math.max(1, Math.ceil(body.total / lim));
    $('page-info').textContent = `Page ${nf.format(page)} of ${nf.format(pages)}`;
    $('page-first').disabled = off === 0;
    $('page-prev').disabled = off === 0;
    $('page-next').disabled = !body.pagination.has_more;
    $('page-last').disabled = !body.pagination.has_more;
    $('page-last').dataset.offset = String(Math.max(0, (pages - 1) * lim));
    for (const th of $('sessions').tHead.querySelectorAll('th')) {
      if (!th.dataset.sort) continue;
      if (th.dataset.sort === state.sort) th.setAttribute('aria-sort', state.order === 'asc' ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
  }

  async function loadList() {
    const gen = generation;
    try {
      const { body, text } = await api('GET', `/browser_sessions${queryString(LIST_PARAMS)}`);
      if (gen !== generation) return;
      $('query-message').textContent = '';
      if (text !== lastListText) {
        lastListText = text;
        renderList(body);
        // what bench/dashboard_bench.js measures: navigation start to the first rows shown
        if (!performance.getEntriesByName('browserd:first-rows').length) performance.mark('browserd:first-rows');
      }
    } catch (e) {
      if (gen !== generation) return;
      if (handleError(e, $('query-message'))) return;
      lastListText = '';
      $('sessions').tBodies[0].replaceChildren();
      $('summary').textContent = '';
    }
  }

  // ------------------------------------------------------------------ the charts ----

  // The charts take the table's filters but their own range: the last 24 hours or 7 days in
  // hours, the last 30 days in days, or the filter's dates (hours up to 7 days, else days).
  function chartQuery() {
    const now = Date.now();
    const extra = {};
    let names = FILTERS.filter((n) => n !== 'start_date' && n !== 'end_date');
    let caption;
    if (state.chart === 'filter') {
      names = FILTERS;
      const from = Date.parse(state.start_date);
      const to = Date.parse(state.end_date);
      const span = !isNaN(from) && !isNaN(to) ? to - from : Infinity;
      extra.bucket = span <= 7 * DAY ? 'hour' : 'day';
      caption = state.start_date || state.end_date
        ? `From ${state.start_date || 'the first session'} to ${state.end_date || 'the last'}`
        : 'Every session that matches the filters';
    } else {
      const span = state.chart === '7d' ? 7 * DAY : state.chart === '30d' ? 30 * DAY : DAY;
      extra.bucket = state.chart === '30d' ? 'day' : 'hour';
      const width = extra.bucket === 'day' ? DAY : HOUR;
      extra.start_date = isoSeconds(Math.floor((now - span) / width + 1) * width);
      extra.end_date = isoSeconds(now);
      caption = `From ${fmtTime(extra.start_date)} to ${fmtTime(extra.end_date)} UTC`;
    }
    return { path: `/browser_sessions/stats${queryString(names, extra)}`, caption };
  }

  function noData(plot, text) {
    plot.replaceChildren(el('p', { class: 'none', text }));
  }

  function dataTable(headers, rows) {
    const t = el('table');
    t.append(el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { scope: 'col', text: h })))));
    t.append(el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((v, i) => el(i ? 'td' : 'th', i ? { class: 'num' } : { scope: 'row' }, String(v)))))));
    return t;
  }

  const W = 420;
  const H = 200;
  const PAD = { l: 62, r: 6, t: 8, b: 30 };

  // Bars over the buckets, stacked by the given series. yFmt labels the axis.
  function barChart(buckets, series, yFmt, label) {
    const n = buckets.length;
    const totals = buckets.map((b) => series.reduce((a, s) => a + s.value(b), 0));
    const max = Math.max(1, ...totals);
    const iw = W - PAD.l - PAD.r;
    const ih = H - PAD.t - PAD.b;
    const step = iw / n;
    const bar = Math.max(1, step * 0.8);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
    root.append(svg('line', { class: 'axis', x1: PAD.l, y1: PAD.t + ih, x2: W - PAD.r, y2: PAD.t + ih }));
    root.append(svg('line', { class: 'axis', x1: PAD.l, y1: PAD.t, x2: PAD.l, y2: PAD.t + ih }));
    root.append(svg('text', { x: PAD.l - 4, y: PAD.t + 10, 'text-anchor': 'end' }, yFmt(max)));
    root.append(svg('text', { x: PAD.l - 4, y: PAD.t + ih, 'text-anchor': 'end' }, '0'));
    buckets.forEach((b, i) => {
      let y = PAD.t + ih;
      const g = svg('g');
      g.append(svg('title', {}, `${fmtTime(b.start)}: ${series.map((s) => `${s.name} ${s.fmt(s.value(b))}`).join(', ')}`));
      for (const s of series) {
        const h = (s.value(b) / max) * ih;
        if (h <= 0) continue;
        y -= h;
        g.append(svg('rect', { class: s.cls, x: (PAD.l + i * step + (step - bar) / 2).toFixed(2), y: y.toFixed(2), width: bar.toFixed(2), height: h.toFixed(2) }));
      }
      root.append(g);
    });
    const ticksAt = n <= 1 ? [0] : [0, Math.floor((n - 1) / 2), n - 1];
    for (const i of [...new Set(ticksAt)]) {
      const x = PAD.l + i * step + step / 2;
      const anchor = i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle';
      root.append(svg('text', { x: i === 0 ? PAD.l : i === n - 1 ? W - PAD.r : x, y: H - 18, 'text-anchor': anchor }, fmtTime(buckets[i].start).slice(0, 16)));
    }
    return root;
  }

  function renderStats(st) {
    const unit = st.bucket;
    for (const u of document.querySelectorAll('.charts .unit')) u.textContent = unit;
    const buckets = st.buckets;
    const sPlot = $('chart-sessions').querySelector('.plot');
    const bPlot = $('chart-bandwidth').querySelector('.plot');
    const ePlot = $('chart-errors').querySelector('.plot');
    const legend = $('chart-sessions').querySelector('.legend');
    legend.replaceChildren(...STATUSES.map((s) => el('span', { class: `key ${s}`, text: `${s} ${nf.format(st.sessions[s])}` })));
    if (!buckets.length || !st.total) {
      noData(sPlot, 'No sessions in this range.');
      noData(bPlot, 'No sessions in this range.');
    } else {
      const count = (n) => nf.format(n);
      sPlot.replaceChildren(barChart(buckets, STATUSES.map((s) => ({ name: s, cls: s, value: (b) => b[s], fmt: count })), count,
        `Sessions per ${unit} by status: ${nf.format(st.total)} in all`));
      bPlot.replaceChildren(barChart(buckets, [{ name: 'bandwidth', cls: 'bw', value: (b) => b.bandwidth, fmt: fmtBytes }], fmtBytes,
        `Bandwidth per ${unit}: ${fmtBytes(st.bandwidth)} in all`));
    }
    $('chart-sessions').querySelector('.data').replaceChildren(dataTable(['Start (UTC)', ...STATUSES],
      buckets.map((b) => [fmtTime(b.start), ...STATUSES.map((s) => b[s])])));
    $('chart-bandwidth').querySelector('.data').replaceChildren(dataTable(['Start (UTC)', 'Bytes'],
      buckets.map((b) => [fmtTime(b.start), b.bandwidth])));
    // error reasons: one bar per code, its share of all errors
    const errors = st.other_errors ? [...st.errors, { code: 'other codes', count: st.other_errors }] : st.errors;
    const errTotal = errors.reduce((a, e) => a + e.count, 0);
    if (!errTotal) {
      noData(ePlot, 'No errors in this range.');
    } else {
      const rowH = 22;
      const h = errors.length * rowH + 4;
      const root = svg('svg', { viewBox: `0 0 ${W} ${h}`, role: 'img', 'aria-label': `Error reasons of ${nf.format(errTotal)} failed sessions` });
      errors.forEach((e, i) => {
        const share = e.count / errTotal;
        const y = i * rowH + 2;
        const g = svg('g');
        g.append(svg('title', {}, `${e.code}: ${nf.format(e.count)} (${(share * 100).toFixed(1)} %)`));
        g.append(svg('text', { x: 0, y: y + 15 }, e.code.length > 24 ? `${e.code.slice(0, 23)}…` : e.code));
        g.append(svg('rect', { class: 'err', x: 150, y: y + 3, width: Math.max(1, share * 170).toFixed(2), height: rowH - 8 }));
        g.append(svg('text', { x: 150 + share * 170 + 6, y: y + 15 }, `${nf.format(e.count)} (${(share * 100).toFixed(1)} %)`));
        root.append(g);
      });
      ePlot.replaceChildren(root);
    }
    $('chart-errors').querySelector('.data').replaceChildren(dataTable(['Code', 'Sessions', 'Share'],
      errors.map((e) => [e.code, e.count, `${((e.count / errTotal) * 100).toFixed(1)} %`])));
  }

  async function loadStats() {
    const gen = generation;
    const { path, caption } = chartQuery();
    try {
      const { body, text } = await api('GET', path);
      if (gen !== generation) return;
      $('chart-message').textContent = '';
      $('chart-caption').textContent = caption;
      if (text !== lastStatsText) {
        lastStatsText = text;
        renderStats(body);
      }
    } catch (e) {
      if (gen !== generation) return;
      lastStatsText = '';
      if (handleError(e, $('chart-message'))) return;
      for (const id of ['chart-sessions', 'chart-bandwidth', 'chart-errors']) noData($(id).querySelector('.plot'), 'No chart.');
    }
  }

  // ------------------------------------------------------------------ detail ----

  function field(dl, name, value) {
    dl.append(el('dt', { text: name }));
    const dd = el('dd');
    if (value === null || value === undefined) dd.append(el('span', { class: 'null', text: '—' }));
    else dd.append(value);
    dl.append(dd);
  }

  function renderDetail(s) {
    const dl = $('detail-fields');
    dl.replaceChildren();
    field(dl, 'Session', s.session_id);
    field(dl, 'Status', el('span', { class: `status ${s.status}`, text: s.status }));
    field(dl, 'API name', s.api_name);
    field(dl, 'Started (UTC)', fmtTime(s.timestamp));
    field(dl, 'Duration', s.duration === null ? 'running' : `${fmtDuration(s.duration)} (${s.duration} s)`);
    field(dl, 'Navigations', String(s.navigations));
    field(dl, 'First URL', s.target_url);
    field(dl, 'End URL', s.end_url);
    field(dl, 'Bandwidth', `${fmtBytes(s.bandwidth)} (${nf.format(s.bandwidth)} bytes)`);
    field(dl, 'Captcha', s.captcha);
    field(dl, 'Error', s.error ? s.error.code : null);
    field(dl, 'Error reason', s.error ? s.error.message || '(no message)' : null);
    $('detail').dataset.status = s.status;
    const running = s.status === 'running';
    $('end-box').hidden = !running;
    $('live-box').hidden = !running;
    if (!running) $('end-confirm').hidden = true;
  }

  // A live view of the running session (docs/liveview.md): a token made on demand, opened in a
  // new tab; 409 when it is off or the session runs on another node.
  async function openLive(input) {
    const id = detailId;
    try {
      const { body } = await api('POST', `/browser_sessions/${encodeURIComponent(id)}/live${input ? '?input=true' : ''}`);
      $('live-box').dataset.url = body.url;
      window.open(body.url, '_blank', 'noopener');
    } catch (e) {
      if (e.status === 409) $('detail-message').textContent = (e.body && e.body.error) || 'No live view of this session.';
      else handleError(e, $('detail-message'));
    }
  }

  async function loadDetail() {
    if (!detailId) return;
    const id = detailId;
    try {
      const { body } = await api('GET', `/browser_sessions/${encodeURIComponent(id)}`);
      if (id === detailId) renderDetail(body.session);
    } catch (e) {
      if (id === detailId) handleError(e, $('detail-message'));
    }
  }

  function openDetail(id, from) {
    detailId = id;
    detailReturnFocus = from;
    $('detail-fields').replaceChildren();
    $('detail-message').textContent = '';
    $('end-confirm').hidden = true;
    $('end-box').hidden = true;
    $('live-box').hidden = true;
    $('detail').showModal();
    loadDetail();
  }

  async function endSession() {
    const id = detailId;
    $('end-yes').disabled = true;
    try {
      await api('DELETE', `/browser_sessions/${encodeURIComponent(id)}`);
      $('detail-message').textContent = 'The session was ended.';
    } catch (e) {
      if (e.status === 409) $('detail-message').textContent = 'The session is not running any more.';
      else if (e.status === 404) $('detail-message').textContent = 'There is no such session.';
      else handleError(e, $('detail-message'));
    } finally {
      $('end-yes').disabled = false;
      $('end-confirm').hidden = true;
    }
    await loadDetail();
    await loadList();
    $('detail-close').focus();
  }

  // ------------------------------------------------------------------ refresh ----

  async function reload() {
    generation++;
    lastListText = '';
    lastStatsText = '';
    inFlight = true;
    try {
      await Promise.all([loadList(), loadStats()]);
    } finally {
      inFlight = false;
    }
  }

  async function tick() {
    if (!apiKey || inFlight || document.visibilityState !== 'visible') return;
    inFlight = true;
    ticks++;
    try {
      const work = [loadList()];
      if (ticks % STATS_EVERY === 0) work.push(loadStats());
      if ($('detail').open && $('detail').dataset.status === 'running') work.push(loadDetail());
      await Promise.all(work);
    } finally {
      inFlight = false;
    }
  }

  function startPolling() {
    stopPolling();
    timer = setInterval(tick, POLL_MS);
  }
  function stopPolling() {
    if (timer) clearInterval(timer);
    timer = null;
  }

  function go(push = true) {
    writeUrl(push);
    reload();
  }

  // ------------------------------------------------------------------ wiring ----

  function wire() {
    $('signin-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const key = $('api-key').value.trim();
      if (!key) {
        $('signin-message').textContent = 'Enter an API key.';
        return;
      }
      signIn(key);
    });
    $('sign-out').addEventListener('click', () => signOut(''));
    $('filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      formToState();
      go();
    });
    // the choices apply at once; the text fields with Enter or Apply
    for (const n of ['status', 'sort', 'order', 'limit']) {
      $(`f-${n}`).addEventListener('change', () => {
        formToState();
        go();
      });
    }
    $('reset').addEventListener('click', () => {
      const chart = state.chart;
      state = { ...DEFAULTS, chart };
      for (const n of FILTERS) if (state[n] === undefined) state[n] = '';
      stateToForm();
      go();
    });
    $('chart-range').addEventListener('change', () => {
      state.chart = $('chart-range').value;
      writeUrl(true);
      generation++;
      lastStatsText = '';
      loadStats();
    });
    for (const b of document.querySelectorAll('button.sort')) {
      b.addEventListener('click', () => {
        const key = b.dataset.sort;
        state.order = state.sort === key && state.order === 'desc' ? 'asc' : 'desc';
        state.sort = key;
        state.offset = '0';
        stateToForm();
        go();
      });
    }
    const page = (offset) => {
      state.offset = String(Math.max(0, offset));
      go();
    };
    const lim = () => Number(state.limit) || 50;
    $('page-first').addEventListener('click', () => page(0));
    $('page-prev').addEventListener('click', () => page(Number(state.offset) - lim()));
    $('page-next').addEventListener('click', () => page(Number(state.offset) + lim()));
    $('page-last').addEventListener('click', () => page(Number($('page-last').dataset.offset || 0)));
    window.addEventListener('popstate', () => {
      readUrl();
      stateToForm();
      reload();
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && apiKey) tick();
    });
    $('detail-close').addEventListener('click', () => $('detail').close());
    $('detail').addEventListener('close', () => {
      detailId = null;
      if (detailReturnFocus && detailReturnFocus.isConnected) detailReturnFocus.focus();
      else {
        const again = detailReturnFocus && document.querySelector(`button.open[data-id="${CSS.escape(detailReturnFocus.dataset.id)}"]`);
        if (again) again.focus();
      }
    });
    $('end-session').addEventListener('click', () => {
      $('end-confirm').hidden = false;
      $('end-no').focus();
    });
    $('end-no').addEventListener('click', () => {
      $('end-confirm').hidden = true;
      $('end-session').focus();
    });
    $('end-yes').addEventListener('click', endSession);
    $('live-view').addEventListener('click', () => openLive(false));
    $('live-input').addEventListener('click', () => openLive(true));
  }

  wire();
  if (apiKey) showApp(false);
  else showSignIn('');
})();
