// The asset usage explorer's page. Plain JavaScript, no library and no
// build step: it reads its state from the URL, asks this server's /api/
// for figures, and draws tables, an SVG chart and an SVG map. Every text
// comes from messages.json; the DOM is built with textContent only.
'use strict';

(() => {
  const API_PARAMS = ['period', 'month', 'from', 'to', 'compare', 'tenant', 'type', 'source', 'bots', 'asset', 'metric'];
  const METRICS = ['views', 'downloads', 'viewers', 'bytes', 'sites'];
  const LANGS = ['en', 'de'];
  let catalog = {};
  let M = {};
  let lang = 'en';
  let me = null;
  let world = null;
  let generation = 0; // bumps on every state change; stale answers are dropped

  // ---------- small helpers ----------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const k of kids.flat()) {
      if (k === null || k === undefined || k === false) continue;
      el.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }
  const SVG = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) el.setAttribute(k, v);
    }
    for (const k of kids.flat()) if (k) el.append(k);
    return el;
  }

  function t(key, params) {
    let msg = M[key];
    if (msg === undefined) msg = catalog.en[key];
    if (msg === undefined) return key;
    return msg.replace(/\{(\w+)\}/g, (_, k) => (params && params[k] !== undefined ? params[k] : ''));
  }
  function tp(key, n, params) {
    const form = new Intl.PluralRules(lang).select(n);
    const k = M[key + '_' + form] !== undefined ? key + '_' + form : key + '_other';
    return t(k, Object.assign({ n: fmtInt(n) }, params));
  }
  const fmtInt = (n) => new Intl.NumberFormat(lang).format(Math.round(n));
  const fmtCompact = (n) => new Intl.NumberFormat(lang, { notation: 'compact', maximumFractionDigits: 1 }).format(n);
  function fmtBytes(b) {
    const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
    let i = 0;
    while (b >= 1000 && i < units.length - 1) { b /= 1000; i++; }
    return new Intl.NumberFormat(lang, { maximumFractionDigits: b < 10 && i > 0 ? 1 : 0 }).format(b) + ' ' + units[i];
  }
  const fmtMetric = (m, v) => (m === 'bytes' ? fmtBytes(v) : fmtInt(v));
  const fmtPct = (p) => new Intl.NumberFormat(lang, { maximumFractionDigits: Math.abs(p) < 10 ? 1 : 0 }).format(Math.abs(p)) + '%';
  const day = (iso) => new Date(iso.length === 10 ? iso + 'T00:00:00Z' : iso);
  const fmtDate = (iso, opts) => new Intl.DateTimeFormat(lang, Object.assign({ day: 'numeric', month: 'short', timeZone: 'UTC' }, opts)).format(day(iso));
  const fmtDateTime = (iso) => new Intl.DateTimeFormat(lang, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZone: 'UTC' }).format(new Date(iso)) + ' UTC';
  let regionNames = null;
  function countryName(code, fallback) {
    try {
      regionNames = regionNames || new Intl.DisplayNames([lang], { type: 'region' });
      return regionNames.of(code) || fallback || code;
    } catch (e) { return fallback || code; }
  }
  function typeName(type) { return type ? t('type.' + type) : t('type.unknown'); }

  // ---------- state in the URL ----------
  function state() { return new URLSearchParams(location.search); }
  function setState(changes, replace) {
    const p = state();
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === '' || v === undefined) p.delete(k); else p.set(k, v);
    }
    if (p.get('period') !== 'month') p.delete('month');
    if (p.get('period') !== 'custom') { p.delete('from'); p.delete('to'); }
    const url = location.pathname + (p.toString() ? '?' + p.toString() : '');
    if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
    render();
  }
  function apiQuery(extra) {
    const p = state();
    const q = new URLSearchParams();
    for (const k of API_PARAMS) if (p.get(k)) q.set(k, p.get(k));
    for (const [k, v] of Object.entries(extra || {})) if (v !== null && v !== undefined) q.set(k, v);
    return q.toString();
  }

  // ---------- API ----------
  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }
  async function api(path, extra, bare) {
    let resp;
    try {
      resp = await fetch('/api/' + path + (bare ? '' : '?' + apiQuery(extra)), { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    } catch (e) {
      throw new ApiError(0, 'offline', t('state.offline'));
    }
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      if (resp.status === 401) { showLogin(); }
      const code = body.error || 'internal';
      throw new ApiError(resp.status, code, M['err.' + code] ? t('err.' + code) : body.message || resp.statusText);
    }
    return body;
  }
  async function post(path, body) {
    return fetch('/api/' + path, { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body || {}) });
  }

  // ---------- panels: loading, empty, error ----------
  function panel(id, title, exports) {
    const body = h('div', { class: 'panel-body', 'aria-busy': 'true' }, h('p', { class: 'state loading', text: t('state.loading') }));
    const tools = h('div', { class: 'panel-tools' });
    for (const [table, label] of exports || []) {
      tools.append(h('a', { class: 'csv', href: '#', 'data-csv': id + ':' + table, 'aria-label': t('csv.label', { what: label }), text: t('csv') + (exports.length > 1 ? ' · ' + label : '') }));
    }
    const el = h('section', { class: 'panel', id: 'panel-' + id, 'aria-labelledby': 'h-' + id },
      h('div', { class: 'panel-head' }, h('h2', { id: 'h-' + id, text: title }), tools), body);
    return { el, body };
  }
  function csvLinks(el, endpoint) {
    for (const a of el.querySelectorAll('a[data-csv]')) {
      const table = a.getAttribute('data-csv').split(':')[1];
      a.href = '/api/' + endpoint + '?' + apiQuery({ format: 'csv', table, limit: 100 });
      a.setAttribute('download', '');
    }
  }
  async function fill(p, endpoint, extra, draw) {
    const gen = generation;
    csvLinks(p.el, endpoint);
    try {
      const data = await api(endpoint, extra);
      if (gen !== generation) return;
      p.body.replaceChildren();
      p.body.removeAttribute('aria-busy');
      draw(data, p.body);
    } catch (e) {
      if (gen !== generation) return;
      p.body.removeAttribute('aria-busy');
      p.body.replaceChildren(h('div', { class: 'state error', role: 'alert' },
        h('p', { text: t('state.error', { message: e.message }) }),
        h('button', { type: 'button', onclick: () => { p.body.replaceChildren(h('p', { class: 'state loading', text: t('state.loading') })); fill(p, endpoint, extra, draw); }, text: t('state.retry') })));
    }
  }
  const empty = () => h('p', { class: 'state empty', text: t('state.empty') });

  function changeBadge(cur, prev) {
    if (prev === undefined || prev === null) return null;
    if (prev === 0) return cur > 0 ? h('span', { class: 'chg new', text: t('change.new') }) : null;
    const p = (cur / prev - 1) * 100;
    if (Math.abs(p) < 0.5) return h('span', { class: 'chg same', text: t('change.same') });
    const up = p > 0;
    return h('span', { class: 'chg ' + (up ? 'up' : 'down') }, h('span', { 'aria-hidden': 'true', text: up ? '▲ ' : '▼ ' }), t(up ? 'change.up' : 'change.down', { pct: fmtPct(p) }));
  }

  // table of Count rows: key, uses, before, change, with a share bar
  function countTable(rows, keyHead, label, opts) {
    if (!rows.length) return empty();
    const total = rows.reduce((a, r) => a + r.cur, 0) || 1;
    const cmp = rows.some((r) => r.prev !== undefined);
    const limit = (opts && opts.limit) || 10;
    const tbody = h('tbody');
    rows.forEach((r, i) => {
      const tr = h('tr', { class: i >= limit ? 'extra' : null },
        h('th', { scope: 'row' }, h('span', { class: 'bar', style: null, 'data-w': (r.cur / total) * 100 }), h('span', { class: 'bar-label' }, label(r))),
        h('td', { class: 'num', text: fmtInt(r.cur) }),
        cmp ? h('td', { class: 'num muted', text: fmtInt(r.prev || 0) }) : null,
        cmp ? h('td', { class: 'num' }, changeBadge(r.cur, r.prev)) : null);
      tbody.append(tr);
    });
    const table = h('table', { class: 'counts' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: keyHead }), h('th', { scope: 'col', class: 'num', text: t('col.count') }),
        cmp ? h('th', { scope: 'col', class: 'num', text: t('col.before') }) : null, cmp ? h('th', { scope: 'col', class: 'num', text: t('top.change') }) : null)),
      tbody);
    for (const b of table.querySelectorAll('.bar')) b.style.width = b.getAttribute('data-w') + '%';
    const wrap = h('div', { class: 'scroll' }, table);
    if (rows.length > limit) {
      const more = h('button', { type: 'button', class: 'more', 'aria-expanded': 'false', text: t('more'), onclick: () => { table.classList.add('all'); more.remove(); } });
      return h('div', {}, wrap, more);
    }
    return wrap;
  }

  function tabs(items) {
    // items: [{id, label, content}] with keyboard support (arrows)
    const list = h('div', { class: 'tabs', role: 'tablist' });
    const panes = h('div', {});
    const btns = items.map((it, i) => {
      const b = h('button', { type: 'button', role: 'tab', id: 'tab-' + it.id, 'aria-controls': 'pane-' + it.id, 'aria-selected': i === 0 ? 'true' : 'false', tabindex: i === 0 ? '0' : '-1', text: it.label });
      const pane = h('div', { role: 'tabpanel', id: 'pane-' + it.id, 'aria-labelledby': 'tab-' + it.id, hidden: i !== 0 }, it.content);
      panes.append(pane);
      return b;
    });
    const select = (i) => {
      btns.forEach((b, j) => { b.setAttribute('aria-selected', i === j ? 'true' : 'false'); b.tabIndex = i === j ? 0 : -1; });
      [...panes.children].forEach((p, j) => { p.hidden = i !== j; });
      btns[i].focus();
    };
    btns.forEach((b, i) => {
      b.addEventListener('click', () => select(i));
      b.addEventListener('keydown', (e) => {
        if (e.key === 'ArrowRight') select((i + 1) % btns.length);
        if (e.key === 'ArrowLeft') select((i + btns.length - 1) % btns.length);
      });
      list.append(b);
    });
    return h('div', {}, list, panes);
  }

  // ---------- header and controls ----------
  function header(fresh) {
    const user = h('div', { class: 'user' });
    if (me.admin) {
      const sel = h('select', { id: 'ctl-tenant', 'aria-label': t('user.customer'), onchange: (e) => setState({ tenant: e.target.value, asset: null }) },
        h('option', { value: '', text: t('user.all') }));
      api('tenants', null, true).then((list) => {
        for (const x of list) sel.append(h('option', { value: x.id, text: x.id, selected: state().get('tenant') === x.id }));
      }).catch(() => {});
      user.append(h('label', { for: 'ctl-tenant', class: 'lbl', text: t('user.customer') }), sel);
    } else {
      user.append(h('span', { class: 'tenant', text: me.tenant }));
    }
    const langSel = h('select', { id: 'ctl-lang', 'aria-label': t('language'), onchange: (e) => { setState({ lang: e.target.value === 'en' ? null : e.target.value }, true); } },
      LANGS.map((l) => h('option', { value: l, selected: l === lang, text: catalog[l]['lang.name'] })));
    user.append(h('span', { class: 'muted', text: t('user.signedin', { name: me.name }) }), langSel,
      h('button', { type: 'button', class: 'link', onclick: async () => { await post('logout'); showLogin(); }, text: t('logout') }));
    return h('header', { class: 'top' },
      h('div', { class: 'brand' }, h('h1', { text: t('app.title') }), h('p', { class: 'muted', text: t('app.subtitle') })),
      h('p', { class: 'fresh', id: 'fresh', 'aria-live': 'polite' }, fresh || ''),
      user);
  }

  function freshLine(f) {
    if (!f || !f.newest) return t('fresh.label') + ': ' + t('fresh.none');
    const mins = Math.max(0, Math.round((new Date(f.now) - new Date(f.newest)) / 60000));
    let ago;
    if (mins < 1) ago = t('ago.now');
    else if (mins < 90) ago = tp('ago.min', mins);
    else if (mins < 48 * 60) ago = tp('ago.hour', Math.round(mins / 60));
    else ago = tp('ago.day', Math.round(mins / 1440));
    let line = t('fresh.label') + ': ' + t('fresh.upto', { ago }) + ' (' + fmtDateTime(f.newest) + ')';
    if (f.lag_ms !== undefined && f.lag_ms !== null) line += ' · ' + t('fresh.lag', { lag: fmtLag(f.lag_ms) });
    return line;
  }
  function fmtLag(ms) {
    if (ms < 60000) return new Intl.NumberFormat(lang, { style: 'unit', unit: 'second', unitDisplay: 'short', maximumFractionDigits: 0 }).format(ms / 1000);
    return new Intl.NumberFormat(lang, { style: 'unit', unit: 'minute', unitDisplay: 'short', maximumFractionDigits: 0 }).format(ms / 60000);
  }

  function controls() {
    const p = state();
    const period = p.get('period') || '7d';
    const field = (id, label, control, help) => h('div', { class: 'field' }, h('label', { for: id, text: label }), control, help ? h('span', { class: 'help', id: id + '-help', text: help }) : null);
    const select = (id, key, values, cur, onchange) => h('select', { id, onchange }, values.map((v) => h('option', { value: v, selected: v === cur, text: t(key + '.' + (v || 'all')) })));
    const box = h('form', { class: 'controls', 'aria-label': t('ctl.period'), onsubmit: (e) => e.preventDefault() });
    box.append(field('ctl-period', t('ctl.period'), select('ctl-period', 'ctl.period', ['7d', '30d', '90d', 'month', 'custom'], period, (e) => {
      const v = e.target.value;
      if (v === 'month') setState({ period: v, month: new Date(Date.parse(me.today) - 86400000).toISOString().slice(0, 7) });
      else if (v === 'custom') setState({ period: v, from: isoDaysAgo(14), to: isoDaysAgo(1) });
      else setState({ period: v });
    })));
    if (period === 'month') {
      box.append(field('ctl-month', t('ctl.month'), h('input', { id: 'ctl-month', type: 'month', value: p.get('month') || '', max: me.today.slice(0, 7), onchange: (e) => setState({ month: e.target.value }) })));
    }
    if (period === 'custom') {
      const from = h('input', { id: 'ctl-from', type: 'date', value: p.get('from') || '', max: me.today });
      const to = h('input', { id: 'ctl-to', type: 'date', value: p.get('to') || '', max: me.today });
      box.append(field('ctl-from', t('ctl.from'), from), field('ctl-to', t('ctl.to'), to),
        h('button', { type: 'submit', class: 'apply', onclick: () => setState({ from: from.value, to: to.value }), text: t('ctl.apply') }));
    }
    box.append(field('ctl-compare', t('ctl.compare'), select('ctl-compare', 'ctl.compare', ['previous', 'year', 'none'], p.get('compare') || 'previous', (e) => setState({ compare: e.target.value === 'previous' ? null : e.target.value }))));
    box.append(field('ctl-type', t('ctl.type'), select('ctl-type', 'ctl.type', ['', 'video', 'image', 'audio', 'document'], p.get('type') || '', (e) => setState({ type: e.target.value }))));
    box.append(field('ctl-source', t('ctl.source'), select('ctl-source', 'ctl.source', ['', 'cloudfront', 'app'], p.get('source') || '', (e) => setState({ source: e.target.value }))));
    const bots = h('input', { id: 'ctl-bots', type: 'checkbox', checked: p.get('bots') === '1', 'aria-describedby': 'ctl-bots-help', onchange: (e) => setState({ bots: e.target.checked ? '1' : null }) });
    box.append(h('div', { class: 'field check' }, bots, h('label', { for: 'ctl-bots', text: t('ctl.bots') }), h('span', { class: 'help', id: 'ctl-bots-help', text: t('ctl.bots.help') })));
    return box;
  }
  function isoDaysAgo(n) { return new Date(Date.parse(me.today) - n * 86400000).toISOString().slice(0, 10); }

  function vsPhrase(period) {
    if (period.compare === 'year') return t('vs.year');
    return period.days === 7 ? t('vs.previous.7') : t('vs.previous.other', { n: period.days });
  }

  // ---------- views ----------
  function assetLink(id, title) {
    const p = state();
    p.set('asset', id);
    const a = h('a', { href: '?' + p.toString(), text: title || t('top.unknown', { id }) });
    a.addEventListener('click', (e) => { if (e.metaKey || e.ctrlKey || e.shiftKey) return; e.preventDefault(); setState({ asset: id }); window.scrollTo(0, 0); });
    return a;
  }

  function drawHighlights(d, body) {
    const list = h('ul', { class: 'highlights' });
    const vs = vsPhrase(d.period);
    for (const x of d.highlights) {
      let text;
      const link = x.asset_id ? assetLink(x.asset_id, x.title) : null;
      const titlePh = '\u0000';
      switch (x.kind) {
        case 'asset_up':
          text = x.change === undefined ? t('hl.asset_up.new', { title: titlePh, n: fmtInt(x.cur), vs })
            : t(x.site ? 'hl.asset_up.site' : 'hl.asset_up', { title: titlePh, pct: fmtPct(x.change), vs, site: x.site });
          break;
        case 'asset_down': text = t('hl.asset_down', { title: titlePh, pct: fmtPct(x.change), vs }); break;
        case 'new_sites': text = tp('hl.new_sites', x.count, { sites: x.sites.slice(0, 5).join(', ') + (x.sites.length > 5 ? ', …' : '') }); break;
        case 'new_embeds': text = tp('hl.new_embeds', x.count); break;
        case 'country_change': {
          const r = x.cur / x.prev;
          const change = r >= 3 ? t('hl.tripled') : r >= 2 ? t('hl.doubled') : r <= 0.5 && r > 0.4 ? t('hl.halved') : t(r > 1 ? 'change.up' : 'change.down', { pct: fmtPct(x.change) });
          text = t(x.metric === 'downloads' ? 'hl.country.downloads' : 'hl.country.uses', { country: countryName(x.country), change, vs });
          break;
        }
        default: continue;
      }
      const li = h('li', { class: 'hl ' + x.kind });
      const parts = text.split(titlePh);
      li.append(parts[0]);
      if (parts.length > 1) li.append(link, parts[1]);
      list.append(li);
    }
    if (!d.highlights.length) {
      const cmp = d.period.compare !== 'none';
      body.append(h('p', { class: 'state quiet', text: cmp ? t('hl.none', { pct: fmtPct(d.min_change), n: fmtInt(d.min_count) }) : t('hl.none.nocompare') }));
      return;
    }
    body.append(list);
  }

  function drawSummary(d, body, cardsEl, fresh) {
    fresh.textContent = freshLine(d.freshness);
    const p = state();
    const metric = METRICS.includes(p.get('metric')) ? p.get('metric') : 'views';
    cardsEl.replaceChildren();
    const range = t('period.range', { from: fmtDate(d.period.from), to: fmtDate(d.period.to, { year: 'numeric' }) });
    const vs = d.period.prev_from ? t('period.vs', { from: fmtDate(d.period.prev_from), to: fmtDate(d.period.prev_to, { year: 'numeric' }) }) : '';
    document.getElementById('period-line').textContent = range + (vs ? ' · ' + vs : '');
    for (const m of METRICS) {
      const c = d.cards[m];
      const prevText = c.prev !== undefined ? t('card.prev', { value: fmtMetric(m, c.prev) }) : '';
      const card = h('button', { type: 'button', class: 'card' + (m === metric ? ' on' : ''), 'aria-pressed': m === metric ? 'true' : 'false', title: prevText || null,
        'aria-label': t('card.' + m) + ': ' + fmtMetric(m, c.cur) + (prevText ? '. ' + prevText : '') + '. ' + t('card.select', { metric: t('card.' + m) }),
        onclick: () => setState({ metric: m === 'views' ? null : m }, true) },
      h('span', { class: 'card-label', text: t('card.' + m) + (m === 'viewers' ? ' ≈' : '') }),
      h('span', { class: 'card-value', text: m === 'bytes' ? fmtBytes(c.cur) : fmtCompact(c.cur) }),
      h('span', { class: 'card-change' }, changeBadge(c.cur, c.prev)),
      prevText ? h('span', { class: 'card-prev muted', text: prevText }) : null);
      if (m === 'viewers') card.append(h('span', { class: 'card-note muted', text: t('card.viewers.help') }));
      cardsEl.append(card);
    }
    body.replaceChildren(chart(d, metric));
  }

  function chart(d, metric) {
    const W = 800, H = 260, L = 56, R = 28, T = 16, B = 30;
    const cur = d.series || [], prev = d.prev || [];
    const val = (p) => (p ? p[metric] : 0);
    const maxV = Math.max(1, ...cur.map(val), ...prev.map(val));
    const nice = niceMax(maxV);
    const n = Math.max(cur.length, 1);
    const x = (i) => L + (n === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
    const y = (v) => T + (H - T - B) * (1 - v / nice);
    const title = t('chart.title', { metric: t('card.' + metric) });
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title });
    for (let i = 0; i <= 4; i++) {
      const v = (nice * i) / 4;
      svg.append(s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
      const lbl = s('text', { x: L - 8, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' });
      lbl.textContent = metric === 'bytes' ? fmtBytes(v) : fmtCompact(v);
      svg.append(lbl);
    }
    const step = Math.ceil(n / 8);
    cur.forEach((p, i) => {
      if (i % step) return;
      const lbl = s('text', { x: x(i), y: H - 8, class: 'axis', 'text-anchor': 'middle' });
      lbl.textContent = d.interval === 'hour' ? new Intl.DateTimeFormat(lang, { hour: '2-digit', timeZone: 'UTC' }).format(new Date(p.t)) : fmtDate(p.t);
      svg.append(lbl);
    });
    const line = (pts, cls) => s('path', { class: cls, d: pts.map((p, i) => (i ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(val(p)).toFixed(1)).join('') });
    if (prev.length) svg.append(line(prev, 'line prev'));
    svg.append(s('path', { class: 'area', d: cur.map((p, i) => (i ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(val(p)).toFixed(1)).join('') + `L${x(cur.length - 1)} ${y(0)}L${x(0)} ${y(0)}Z` }));
    svg.append(line(cur, 'line cur'));
    const cursor = s('line', { class: 'cursor', y1: T, y2: H - B, x1: -10, x2: -10 });
    const dot = s('circle', { class: 'dot', r: 4, cx: -10, cy: -10 });
    svg.append(cursor, dot);
    const readout = h('p', { class: 'readout', 'aria-live': 'polite' }, '\u00a0');
    let at = -1;
    const show = (i) => {
      if (!cur.length) return;
      at = Math.max(0, Math.min(cur.length - 1, i));
      cursor.setAttribute('x1', x(at)); cursor.setAttribute('x2', x(at));
      dot.setAttribute('cx', x(at)); dot.setAttribute('cy', y(val(cur[at])));
      const dateOf = (p) => (d.interval === 'hour' ? fmtDateTime(p.t) : fmtDate(p.t, { weekday: 'short' }));
      const pp = prev[at];
      readout.textContent = pp ? t('chart.readout.prev', { date: dateOf(cur[at]), value: fmtMetric(metric, val(cur[at])), pdate: dateOf(pp), pvalue: fmtMetric(metric, val(pp)) })
        : t('chart.readout', { date: dateOf(cur[at]), value: fmtMetric(metric, val(cur[at])) });
    };
    svg.addEventListener('mousemove', (e) => {
      const r = svg.getBoundingClientRect();
      const px = ((e.clientX - r.left) / r.width) * W;
      show(Math.round(((px - L) / (W - L - R)) * (n - 1)));
    });
    const wrap = h('div', { class: 'chart-wrap', tabindex: '0', role: 'group', 'aria-label': title + '. ' + t('chart.help') }, svg);
    wrap.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowRight') { show(at + 1); e.preventDefault(); }
      if (e.key === 'ArrowLeft') { show(at < 0 ? cur.length - 1 : at - 1); e.preventDefault(); }
    });
    wrap.addEventListener('focus', () => { if (at < 0) show(cur.length - 1); });
    const legend = h('p', { class: 'legend' }, h('span', { class: 'key cur' }), t('chart.current'), prev.length ? h('span', { class: 'key prev' }) : null, prev.length ? t('chart.previous') : null);
    return h('div', {}, h('h2', { class: 'chart-title', text: title }), wrap, legend, readout);
  }
  function niceMax(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function drawAssets(d, body) {
    if (!d.assets.length) { body.append(empty()); return; }
    const cmp = d.period.compare !== 'none';
    const tbody = h('tbody');
    for (const a of d.assets) {
      let move = null;
      if (cmp) {
        if (a.new) move = h('span', { class: 'badge new', text: t('top.new') });
        else if (a.prev_rank > a.rank) move = h('span', { class: 'move up', title: t('top.up', { n: a.prev_rank - a.rank }) }, h('span', { 'aria-hidden': 'true', text: '▲' }), h('span', { class: 'sr', text: t('top.up', { n: a.prev_rank - a.rank }) }), ' ' + (a.prev_rank - a.rank));
        else if (a.prev_rank < a.rank) move = h('span', { class: 'move down', title: t('top.down', { n: a.rank - a.prev_rank }) }, h('span', { 'aria-hidden': 'true', text: '▼' }), h('span', { class: 'sr', text: t('top.down', { n: a.rank - a.prev_rank }) }), ' ' + (a.rank - a.prev_rank));
        else move = h('span', { class: 'move same', title: t('top.same') }, h('span', { 'aria-hidden': 'true', text: '=' }), h('span', { class: 'sr', text: t('top.same') }));
      }
      tbody.append(h('tr', {},
        h('td', { class: 'num rank', text: String(a.rank) }),
        cmp ? h('td', { class: 'movement' }, move) : null,
        h('th', { scope: 'row', class: 'title' }, assetLink(a.asset_id, a.title), a.collection ? h('span', { class: 'sub muted', text: a.collection }) : null),
        h('td', { text: typeName(a.type) }),
        h('td', { class: 'num', text: fmtInt(a.views) }),
        h('td', { class: 'num', text: fmtInt(a.downloads) }),
        cmp ? h('td', { class: 'num' }, changeBadge(a.total, a.prev_total)) : null));
    }
    body.append(h('div', { class: 'scroll' }, h('table', { class: 'assets' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'num', text: t('top.rank') }), cmp ? h('th', { scope: 'col', text: t('top.movement') }) : null,
        h('th', { scope: 'col', text: t('top.asset') }), h('th', { scope: 'col', text: t('top.type') }), h('th', { scope: 'col', class: 'num', text: t('top.views') }),
        h('th', { scope: 'col', class: 'num', text: t('top.downloads') }), cmp ? h('th', { scope: 'col', class: 'num', text: t('top.change') }) : null)),
      tbody)));
    if (d.dropped.length) {
      body.append(h('h3', { class: 'dropped-title' }, h('span', { class: 'badge dropped', text: t('top.dropped') })),
        h('ul', { class: 'dropped' }, d.dropped.map((a) => {
          const li = h('li', {});
          const parts = t('top.dropped.row', { title: '\u0000', rank: a.prev_rank, n: fmtInt(a.total) }).split('\u0000');
          li.append(parts[0], assetLink(a.asset_id, a.title), parts[1] || '');
          return li;
        })));
    }
  }

  function drawSources(d, body) {
    if (!d.channels.length) { body.append(empty()); return; }
    body.append(tabs([
      { id: 'channels', label: t('src.channels'), content: countTable(d.channels, t('src.channel'), (r) => t('ch.' + r.key)) },
      { id: 'sites', label: t('src.sites'), content: countTable(d.sites, t('src.site'), (r) => h('span', {}, r.key, ' ', h('span', { class: 'muted small', text: t('ch.' + r.channel) }))) },
      { id: 'pages', label: t('src.pages'), content: countTable(d.pages, t('src.page'), (r) => h('span', { class: 'url', text: r.key })) },
    ]));
  }

  async function loadWorld() {
    if (!world) world = await fetch('/world.json').then((r) => r.json());
    return world;
  }
  function drawPlaces(d, body) {
    if (!d.countries.length && !d.unknown.cur) { body.append(empty()); return; }
    const mapBox = h('div', { class: 'map', role: 'img', 'aria-label': t('geo.map') });
    loadWorld().then((w) => {
      const max = Math.max(1, ...d.countries.map((c) => c.cur));
      const by = Object.fromEntries(d.countries.map((c) => [c.key, c]));
      const svg = s('svg', { viewBox: `0 0 ${w.width} ${w.height}`, class: 'world' });
      for (const [code, path] of Object.entries(w.countries)) {
        const c = by[code];
        const level = c ? Math.min(5, 1 + Math.floor((Math.sqrt(c.cur / max)) * 5)) : 0;
        const p = s('path', { d: path, class: 'c l' + level });
        const title = s('title');
        title.textContent = countryName(code) + (c ? ': ' + fmtInt(c.cur) : '');
        p.append(title);
        svg.append(p);
      }
      mapBox.append(svg, h('p', { class: 'map-legend muted' }, h('span', { class: 'scale', 'aria-hidden': 'true' }, [1, 2, 3, 4, 5].map((l) => h('span', { class: 'l' + l }))), t('geo.legend')));
    }).catch(() => {});
    body.append(mapBox, tabs([
      { id: 'countries', label: t('geo.countries'), content: countTable(d.countries, t('geo.country'), (r) => countryName(r.key, r.label)) },
      { id: 'cities', label: t('geo.cities'), content: countTable(d.cities, t('geo.city'), (r) => r.key + (r.label ? ', ' + countryName(r.label) : '')) },
    ]));
    if (d.unknown.cur) body.append(h('p', { class: 'muted small', text: t('geo.unknown', { n: fmtInt(d.unknown.cur) }) }));
  }

  function drawTech(d, body) {
    if (!d.devices.length && !d.delivery.some((x) => x.cur)) { body.append(empty()); return; }
    body.append(tabs([
      { id: 'devices', label: t('tech.devices'), content: countTable(d.devices, t('tech.devices'), (r) => t('dev.' + r.key)) },
      { id: 'browsers', label: t('tech.browsers'), content: countTable(d.browsers, t('tech.browsers'), (r) => r.key) },
      { id: 'systems', label: t('tech.systems'), content: countTable(d.systems, t('tech.systems'), (r) => r.key) },
      { id: 'delivery', label: t('tech.delivery'), content: countTable(d.delivery, t('tech.delivery'), (r) => t('del.' + r.key)) },
      { id: 'audience', label: t('tech.audience'), content: countTable(d.audience, t('tech.audience'), (r) => t('aud.' + r.key)) },
    ]));
  }

  function drawAssetHead(d, el) {
    el.replaceChildren(
      h('a', { href: '?' + (() => { const p = state(); p.delete('asset'); return p.toString(); })(), class: 'back', onclick: (e) => { e.preventDefault(); setState({ asset: null }); }, text: '← ' + t('asset.back') }),
      h('h2', { class: 'asset-title', text: d.title || t('top.unknown', { id: d.asset_id }) }),
      h('p', { class: 'muted', text: t('asset.meta', { type: typeName(d.type), collection: d.collection || '—', first: fmtDate(d.first_seen, { year: 'numeric' }) }) + (me.admin ? ' · ' + t('asset.owner', { tenant: d.tenant }) : '') }));
  }
  function drawEmbeds(d, body) {
    if (!d.embeds.length) { body.append(empty()); return; }
    const table = h('table', { class: 'embeds counts' },
      h('thead', {}, h('tr', {}, [t('asset.page'), t('src.channel'), t('asset.first'), t('asset.last'), t('asset.uses')].map((x, i) => h('th', { scope: 'col', class: i === 4 ? 'num' : null, text: x })))),
      h('tbody', {}, d.embeds.map((e, i) => h('tr', { class: i >= 15 ? 'extra' : null }, h('th', { scope: 'row', class: 'url', text: e.page }), h('td', { text: t('ch.' + e.channel) }),
        h('td', { text: fmtDate(e.first_seen, { year: 'numeric' }) }), h('td', { text: fmtDate(e.last_seen, { year: 'numeric' }) }), h('td', { class: 'num', text: fmtInt(e.uses) })))));
    body.append(h('div', { class: 'scroll' }, table));
    if (d.embeds.length > 15) {
      const more = h('button', { type: 'button', class: 'more', text: t('more'), onclick: () => { table.classList.add('all'); more.remove(); } });
      body.append(more);
    }
  }
  function drawTimeline(d, body) {
    if (!d.timeline.length) { body.append(h('p', { class: 'state empty', text: t('asset.timeline.none') })); return; }
    body.append(h('ol', { class: 'timeline' }, d.timeline.map((e) => h('li', { class: 'ev ' + e.type },
      h('time', { datetime: e.time, text: fmtDateTime(e.time) }), ' ', h('strong', { text: t('app.' + e.type) }), e.user ? ' ' + t('app.by', { user: e.user }) : ''))));
  }

  // ---------- page ----------
  async function render() {
    generation++;
    const p = state();
    lang = LANGS.includes(p.get('lang')) ? p.get('lang') : 'en';
    M = catalog[lang];
    regionNames = null;
    document.documentElement.lang = lang;
    document.title = t('app.title');
    const asset = p.get('asset');
    const root = document.getElementById('app');
    const fresh = h('span', {});
    const cards = h('div', { class: 'cards', id: 'cards' }, METRICS.map((m) => h('div', { class: 'card skeleton' }, h('span', { class: 'card-label', text: t('card.' + m) }), h('span', { class: 'card-value', text: '…' }))));
    const hl = panel('highlights', t('hl.title'), [['highlights', t('hl.title')]]);
    hl.el.setAttribute('aria-live', 'polite');
    const activity = panel('activity', '', [['series', t('chart.current')]]);
    activity.el.querySelector('h2').remove();
    const top = panel('assets', t('top.title'), [['assets', t('top.title')]]);
    const src = panel('sources', t('src.title'), [['channels', t('src.channels')], ['sites', t('src.sites')], ['pages', t('src.pages')]]);
    const geo = panel('places', t('geo.title'), [['countries', t('geo.countries')], ['cities', t('geo.cities')]]);
    const tech = panel('tech', t('tech.title'), [['devices', t('tech.devices')], ['browsers', t('tech.browsers')], ['systems', t('tech.systems')], ['delivery', t('tech.delivery')], ['audience', t('tech.audience')]]);
    const head = h('div', { class: 'asset-head' });
    const embeds = panel('embeds', t('asset.embeds'), [['embeds', t('asset.embeds')]]);
    const timeline = panel('timeline', t('asset.timeline'), [['timeline', t('asset.timeline')]]);
    root.replaceChildren(...[
      h('a', { href: '#figures', class: 'skip', text: t('skip') }),
      header(fresh),
      controls(),
      h('p', { class: 'period-line muted', id: 'period-line' }, '\u00a0'),
      asset ? head : null,
      asset ? null : hl.el,
      h('div', { id: 'figures', tabindex: '-1' }, cards),
      activity.el,
      h('div', { class: 'grid' }, asset ? null : top.el, asset ? embeds.el : null, asset ? timeline.el : null, src.el, geo.el, tech.el)].filter(Boolean));
    fill(activity, 'summary', null, (d, body) => drawSummary(d, body, cards, fresh));
    if (asset) {
      fill({ el: h('div'), body: head }, 'asset', null, (d) => drawAssetHead(d, head));
      fill(embeds, 'asset', null, drawEmbeds);
      fill(timeline, 'asset', null, drawTimeline);
    } else {
      fill(hl, 'highlights', null, drawHighlights);
      fill(top, 'assets', { limit: 10 }, drawAssets);
    }
    fill(src, 'sources', { limit: 25 }, drawSources);
    fill(geo, 'places', { limit: 25 }, drawPlaces);
    fill(tech, 'tech', null, drawTech);
    document.body.setAttribute('data-ready-gen', '');
    waitReady(generation);
  }

  // data-ready on <body> tells tests and benchmarks that every panel has
  // finished (drawn, empty or failed).
  function waitReady(gen) {
    const check = () => {
      if (gen !== generation) return;
      if (document.querySelector('[aria-busy="true"]')) { setTimeout(check, 20); return; }
      document.body.setAttribute('data-ready', String(gen));
    };
    document.body.removeAttribute('data-ready');
    setTimeout(check, 0);
  }

  function showLogin(message) {
    generation++;
    const root = document.getElementById('app');
    const input = h('input', { id: 'token', type: 'password', autocomplete: 'current-password', required: true, 'aria-describedby': 'token-help' });
    const err = h('p', { class: 'state error', role: 'alert', id: 'login-error' }, message || '');
    const form = h('form', { class: 'login', onsubmit: async (e) => {
      e.preventDefault();
      const ok = await signIn(input.value);
      if (ok) start(); else err.textContent = t('login.bad');
    } },
    h('h1', { text: t('login.title') }),
    h('label', { for: 'token', text: t('login.token') }), input,
    h('p', { class: 'help', id: 'token-help', text: t('login.help') }),
    h('button', { type: 'submit', text: t('login.submit') }), err);
    root.replaceChildren(form);
    document.body.setAttribute('data-ready', 'login');
    input.focus();
  }
  async function signIn(token) {
    const resp = await post('login', { token: token.trim() });
    return resp.ok;
  }

  async function start() {
    // A link with #token=... signs in once and forgets the token: the
    // fragment never reaches a server log, and it is removed at once.
    const m = /^#token=([\w-]+)$/.exec(location.hash);
    if (m) {
      history.replaceState(null, '', location.pathname + location.search);
      await signIn(m[1]);
    }
    try {
      me = await api('me', null, true);
    } catch (e) {
      if (e.status !== 401) {
        document.getElementById('app').replaceChildren(h('div', { class: 'state error', role: 'alert' }, h('p', { text: t('state.error', { message: e.message }) }),
          h('button', { type: 'button', onclick: start, text: t('state.retry') })));
        document.body.setAttribute('data-ready', 'error');
      }
      return;
    }
    render();
  }

  window.addEventListener('popstate', () => { if (me) render(); });
  fetch('/messages.json').then((r) => r.json()).then((c) => {
    catalog = c;
    const p = new URLSearchParams(location.search);
    lang = LANGS.includes(p.get('lang')) ? p.get('lang') : 'en';
    M = catalog[lang];
    start();
  });
})();
