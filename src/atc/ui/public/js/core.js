// Shared helpers for every page: DOM building, the API client (cookie auth, CSRF header,
// 401 → login), the user's roles, time formatting, polling. No framework: each page is a
// function that builds its DOM and returns {el, refresh, destroy, keys}.
'use strict';

const CI = (window.CI = { pages: {} });

// h('div', {class: 'x', onclick: fn, dataset: {k: v}}, child, 'text', [more]) builds an
// element; strings become text nodes, so nothing a user or a log wrote is parsed as HTML.
CI.h = function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  CI.setAttrs(el, attrs);
  CI.append(el, children);
  return el;
};

CI.svg = function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  CI.setAttrs(el, attrs);
  CI.append(el, children);
  return el;
};

CI.setAttrs = function (el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
};

CI.append = function (el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
};

CI.clear = function (el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
};

CI.meta = (name) => {
  const m = document.querySelector(`meta[name="${name}"]`);
  return m ? m.content : '';
};

// ---- API ---------------------------------------------------------------------------

// The login redirect puts the CSRF token in the URL once; keep it for every tab.
(function rememberCsrf() {
  const fromPage = CI.meta('csrf-token');
  if (fromPage) {
    localStorage.setItem('csrf_token', fromPage);
    const url = new URL(location.href);
    url.searchParams.delete('csrf_token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  }
})();

class ApiError extends Error {
  constructor(status, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
  }
}
CI.ApiError = ApiError;

CI.loginUrl = () =>
  '/sky/login?redirect_uri=' + encodeURIComponent(location.pathname + location.search + location.hash);

// Reads send the cookie; writes add the CSRF header. A 401 on anything but the "who am I"
// probe means the session ended: the whole page goes to the login form and comes back.
CI.request = async function (method, path, body, opts = {}) {
  const headers = {};
  if (method !== 'GET') {
    const csrf = localStorage.getItem('csrf_token');
    if (csrf) headers['X-Csrf-Token'] = csrf;
  }
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  } catch (e) {
    CI.turbulence(true);
    throw new ApiError(0, 'network error');
  }
  CI.turbulence(false);
  if (resp.status === 401 && !opts.allow401) {
    location.assign(CI.loginUrl());
    throw new ApiError(401);
  }
  if (!resp.ok) {
    let text = '';
    try {
      text = await resp.text();
    } catch (_) {}
    throw new ApiError(resp.status, text.trim() || `HTTP ${resp.status}`);
  }
  const type = resp.headers.get('content-type') || '';
  if (opts.response) return resp;
  return type.includes('json') ? resp.json() : resp.text();
};
CI.get = (path, opts) => CI.request('GET', path, undefined, opts);
CI.put = (path, body) => CI.request('PUT', path, body);
CI.post = (path, body) => CI.request('POST', path, body);

// GET returning the parsed `Link` header too (pagination, atc-api.md §1.4).
CI.getPage = async function (path) {
  const resp = await CI.request('GET', path, undefined, { response: true });
  const links = {};
  for (const part of (resp.headers.get('link') || '').split(',')) {
    const m = part.match(/<([^>]+)>;\s*rel="([^"]+)"/);
    if (m) links[m[2]] = new URL(m[1], location.origin);
  }
  return { items: await resp.json(), links };
};

CI.turbulence = function (on) {
  const el = document.getElementById('turbulence');
  if (el) el.hidden = !on;
};

// ---- user and roles ------------------------------------------------------------------

CI.user = null;
CI.info = {};
CI.loadUser = async function () {
  try {
    CI.user = await CI.get('/api/v1/user', { allow401: true });
  } catch (e) {
    CI.user = null;
  }
  return CI.user;
};

const ROLE_RANK = { viewer: 1, 'pipeline-operator': 2, member: 3, owner: 4 };
CI.roleAtLeast = function (team, role) {
  if (!CI.user) return false;
  if (CI.user.is_admin) return true;
  const roles = (CI.user.teams || {})[team] || [];
  return roles.some((r) => (ROLE_RANK[r] || 0) >= ROLE_RANK[role]);
};
// Operations (pause, trigger, abort, pin, check): pipeline-operator and above.
CI.canOperate = (team) => CI.roleAtLeast(team, 'pipeline-operator');
// Exposing, hiding, ordering pipelines: member and above.
CI.canManage = (team) => CI.roleAtLeast(team, 'member');

// ---- URLs ------------------------------------------------------------------------------

const enc = encodeURIComponent;
CI.enc = enc;
// Instance vars travel as `vars=<json>` in both page and API URLs.
CI.varsQuery = (vars) => (vars && Object.keys(vars).length ? 'vars=' + enc(JSON.stringify(vars)) : '');
CI.withQuery = (path, ...parts) => {
  const q = parts.filter(Boolean).join('&');
  return q ? path + (path.includes('?') ? '&' : '?') + q : path;
};
CI.pipelinePath = (team, pipeline) => `/teams/${enc(team)}/pipelines/${enc(pipeline)}`;
CI.pipelineUrl = (team, pipeline, vars) => CI.withQuery(CI.pipelinePath(team, pipeline), CI.varsQuery(vars));
CI.jobUrl = (team, pipeline, job, vars) =>
  CI.withQuery(`${CI.pipelinePath(team, pipeline)}/jobs/${enc(job)}`, CI.varsQuery(vars));
CI.buildUrl = function (b) {
  if (b.job_name && b.pipeline_name) {
    return CI.withQuery(
      `${CI.pipelinePath(b.team_name, b.pipeline_name)}/jobs/${enc(b.job_name)}/builds/${enc(b.name)}`,
      CI.varsQuery(b.pipeline_instance_vars)
    );
  }
  return `/builds/${b.id}`;
};
CI.resourceUrl = (team, pipeline, resource, vars) =>
  CI.withQuery(`${CI.pipelinePath(team, pipeline)}/resources/${enc(resource)}`, CI.varsQuery(vars));
CI.apiPipeline = (team, pipeline) => `/api/v1/teams/${enc(team)}/pipelines/${enc(pipeline)}`;

// ---- time ------------------------------------------------------------------------------

CI.now = () => Math.floor(Date.now() / 1000);
CI.duration = function (secs) {
  secs = Math.max(0, Math.floor(secs));
  const d = Math.floor(secs / 86400),
    h = Math.floor((secs % 86400) / 3600),
    m = Math.floor((secs % 3600) / 60),
    s = secs % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
};
CI.ago = (t) => {
  const secs = Math.max(0, CI.now() - t);
  if (secs < 60) return `${secs}s`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m`;
  if (secs < 86400) return `${Math.floor(secs / 3600)}h`;
  return `${Math.floor(secs / 86400)}d`;
};
CI.fmtTime = (t) =>
  new Date(t * 1000).toLocaleString(undefined, {
    month: 'short', day: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
CI.clock = (t) => new Date(t * 1000).toLocaleTimeString(undefined, { hour12: false });

// Elements showing a live duration: `data-since` (seconds ago) or `data-from`/`data-to`.
CI.tickTimes = function (root) {
  for (const el of (root || document).querySelectorAll('[data-since]')) {
    el.textContent = CI.ago(Number(el.dataset.since)) + (el.dataset.suffix || '');
  }
  for (const el of (root || document).querySelectorAll('[data-from]')) {
    const to = Number(el.dataset.to) || CI.now();
    el.textContent = CI.duration(to - Number(el.dataset.from));
  }
};

// ---- status ------------------------------------------------------------------------------

// Status is never shown by colour alone (colour-blind users, spec §12): every badge has a
// glyph too.
CI.STATUS_ICON = {
  succeeded: '✓', failed: '✗', errored: '!', aborted: '■', paused: '❚❚', pending: '○',
  started: '●', running: '●', archived: '▣', 'no-builds': '○', interrupted: '■',
};
CI.statusBadge = (status, text) =>
  CI.h('span', { class: `status-badge status-${status}`, title: status }, CI.STATUS_ICON[status] || '○', text ? ' ' + text : '');

CI.setFavicon = function (status) {
  const link = document.getElementById('favicon');
  if (!link) return;
  const colours = { succeeded: '#1cbd63', failed: '#db5442', errored: '#de951d', aborted: '#6e4500', started: '#fad43b', pending: '#a4a4a4' };
  const fill = colours[status] || '#3d3c3c';
  const svgText = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="${fill}"/><circle cx="16" cy="16" r="9" fill="none" stroke="#fff" stroke-width="3"/></svg>`;
  link.href = 'data:image/svg+xml,' + enc(svgText);
};

// ---- small widgets -------------------------------------------------------------------------

CI.button = (label, attrs) => CI.h('button', Object.assign({ type: 'button' }, attrs), label);

// A control the user's role does not allow: visible, disabled, saying why.
CI.guard = function (el, allowed, why) {
  if (!allowed) {
    el.disabled = true;
    el.title = why || 'your role on this team does not allow this';
    el.classList.add('disabled');
  }
  return el;
};

CI.flash = function (message, kind) {
  const box = document.getElementById('flash');
  if (!box) return;
  const item = CI.h('div', { class: `flash ${kind || 'error'}`, role: 'alert' }, message);
  box.append(item);
  setTimeout(() => item.remove(), 6000);
};

// Runs an action, reporting failure instead of swallowing it (the server is the authority).
CI.act = async function (fn, then) {
  try {
    const r = await fn();
    if (then) await then(r);
    return r;
  } catch (e) {
    if (e.status !== 401) CI.flash(e.status === 403 ? 'forbidden: your role does not allow this' : e.message);
    return undefined;
  }
};

CI.versionText = (v) =>
  Object.entries(v || {})
    .map(([k, val]) => `${k}: ${val}`)
    .join(', ');

CI.kvTable = function (obj, cls) {
  const rows = Array.isArray(obj) ? obj.map((m) => [m.name, m.value]) : Object.entries(obj || {});
  return CI.h(
    'table',
    { class: cls || 'kv' },
    rows.map(([k, v]) => CI.h('tr', {}, CI.h('td', { class: 'k' }, k), CI.h('td', { class: 'v' }, String(v))))
  );
};

// Small 24x24 SVG icons for controls whose glyphs common fonts lack.
const ICONS = {
  eye: 'M12 4.5C7 4.5 2.7 7.6 1 12c1.7 4.4 6 7.5 11 7.5s9.3-3.1 11-7.5c-1.7-4.4-6-7.5-11-7.5zM12 17a5 5 0 110-10 5 5 0 010 10zm0-8a3 3 0 100 6 3 3 0 000-6z',
  'eye-off': 'M2 5.3L3.3 4 20 20.7 18.7 22l-3.1-3.1c-1.1.4-2.3.6-3.6.6-5 0-9.3-3.1-11-7.5.8-2 2.1-3.7 3.8-5L2 5.3zM12 7a5 5 0 014.7 6.7l-6.4-6.4C10.8 7.1 11.4 7 12 7zm0-2.5c5 0 9.3 3.1 11 7.5-.7 1.8-1.8 3.4-3.3 4.6l-1.4-1.4c1.1-.9 2-2 2.5-3.2C19.3 8.6 15.9 6.5 12 6.5c-1 0-2 .1-2.9.4L7.5 5.3C8.9 4.8 10.4 4.5 12 4.5zM6.3 8.1C5.1 9.1 4.1 10.4 3.5 12c1.5 3.4 4.9 5.5 8.5 5.5.8 0 1.6-.1 2.3-.3l-1.4-1.4a5 5 0 01-5.2-5.2L6.3 8.1z',
};
CI.icon = (name) =>
  CI.svg('svg', { class: 'icon', viewBox: '0 0 24 24', width: 16, height: 16, 'aria-hidden': 'true' },
    CI.svg('path', { d: ICONS[name], fill: 'currentColor' }));

// ---- paging (job builds, resource versions) ---------------------------------------------

// Instance vars from a page's `vars=` JSON; null when absent or not an object.
CI.parseVars = function (json) {
  try {
    const v = JSON.parse(json);
    return v && typeof v === 'object' ? v : null;
  } catch (_) {
    return null;
  }
};

// Previous (newer) / next (older) chevrons: the API's Link URLs become page URLs with the
// same from/to/limit, so a page of history has a permalink.
CI.pagerLinks = function (links, pageUrl, prefix, noun) {
  const one = (rel, glyph, label) => {
    const u = links[rel];
    const attrs = { class: `${prefix}-chevron`, title: label, 'aria-label': label, 'data-testid': `pager-${rel}` };
    if (!u) return CI.h('span', Object.assign(attrs, { class: attrs.class + ' disabled', 'aria-disabled': 'true' }), glyph);
    const q = ['from', 'to', 'limit'].filter((k) => u.searchParams.has(k)).map((k) => `${k}=${CI.enc(u.searchParams.get(k))}`);
    return CI.h('a', Object.assign(attrs, { href: CI.withQuery(pageUrl, ...q) }), glyph);
  };
  return [one('previous', '‹', `newer ${noun}`), one('next', '›', `older ${noun}`)];
};

// `h` / `l` on a paged list: follow its chevron.
CI.pagerKey = (pager, rel) => () => {
  const a = pager.querySelector(`a[data-testid="pager-${rel}"]`);
  if (a) CI.navigate(a.getAttribute('href'));
};

// `pipeline/k:v,k2:v2` for an instanced pipeline's breadcrumb.
CI.pipelineLabel = (pipeline, vars) =>
  vars ? `${pipeline}/${CI.versionText(vars).replace(/: /g, ':').replace(/, /g, ',')}` : pipeline;
