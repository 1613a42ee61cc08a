// The pipeline page (web-ui.md §5): groups bar, search, pin menu, and the job/resource graph.
// The server lays the graph out (GET …/graph); this file only draws it, zooms/pans it, and
// highlights/filters nodes. Names are user data: everything is built with CI.h / CI.svg.
'use strict';

(function () {
  const { h, svg } = CI;
  const STATUSES = ['succeeded', 'failed', 'errored', 'aborted', 'paused', 'no-builds'];
  const STATUS_ALIAS = { running: 'started', 'no-build': 'no-builds' };
  const CHAR = 7.3; // the server's width per character of the 12 px node font
  const MIN_FIT = 0.85; // never shrink below this on load: tiny text is a known complaint (§12)
  const FAV_KEY = 'favorited_pipelines';

  const favourites = () => {
    try {
      return JSON.parse(localStorage.getItem(FAV_KEY) || '[]');
    } catch (_) {
      return [];
    }
  };

  // Map-pin shape in a 14×14 box at (x, y); used in resource nodes and the pin menu button.
  const pinGlyph = (x, y) =>
    svg('g', { class: 'pl-pin-glyph', transform: `translate(${x} ${y})` },
      svg('circle', { cx: 7, cy: 5, r: 4 }),
      svg('path', { d: 'M 7 9 L 7 14', 'stroke-width': 2 }));

  // Fuzzy match: the term's characters appear in the name in order.
  function fuzzy(name, term) {
    let i = 0;
    for (const c of name) if (c === term[i]) i++;
    return i === term.length;
  }

  // One search term against a job node: `status:failed`, `-term` negates, else fuzzy name.
  function termMatches(node, term) {
    const neg = term.length > 1 && term[0] === '-';
    if (neg) term = term.slice(1);
    const m = term.match(/^status:(.+)$/);
    const ok = m ? node.classes.includes(STATUS_ALIAS[m[1]] || m[1]) : fuzzy(node.name.toLowerCase(), term);
    return neg ? !ok : ok;
  }

  function legend() {
    const box = (cls, label, glyph) =>
      h('span', { class: 'pl-legend-item' }, h('span', { class: `pl-swatch ${cls}`, 'aria-hidden': 'true' }, glyph || ''), label);
    const line = (dashed, label) =>
      h('span', { class: 'pl-legend-item' },
        svg('svg', { width: 24, height: 8, 'aria-hidden': 'true' },
          svg('path', { d: 'M 0 4 L 24 4', class: `pl-legend-line${dashed ? ' pl-dashed' : ''}` })), label);
    return h('div', { class: 'pl-legend', 'data-testid': 'legend', 'aria-label': 'legend' },
      ['succeeded', 'errored', 'aborted', 'paused'].map((s) => box(`bg-${s}`, s, CI.STATUS_ICON[s])),
      box('pl-sw-pinned', 'pinned', '⚲'), box('bg-failed', 'failed', CI.STATUS_ICON.failed),
      box('pl-sw-pending', 'pending', CI.STATUS_ICON.pending), box('pl-sw-started', 'started', CI.STATUS_ICON.started),
      line(true, 'dependency'), line(false, 'dependency (trigger)'));
  }

  CI.pages.pipeline = function (params, query) {
    const { team, pipeline } = params;
    const varsJson = query.get('vars');
    let vars = null;
    try {
      vars = varsJson ? JSON.parse(varsJson) : null;
    } catch (_) {}
    const varsQ = varsJson ? 'vars=' + CI.enc(varsJson) : '';
    const api = CI.apiPipeline(team, pipeline);
    const apiGet = (path, ...q) => CI.get(CI.withQuery(api + path, ...q, varsQ));
    const pageUrl = CI.pipelineUrl(team, pipeline, vars);
    const askedGroups = query.getAll('group');

    // ---- static structure; refresh() fills it -------------------------------------------
    const groupsBar = h('nav', { class: 'pl-groups', 'data-testid': 'groups', 'aria-label': 'groups', hidden: true });
    const search = h('input', {
      type: 'search', class: 'pl-search', 'data-search': true, 'data-testid': 'search',
      placeholder: 'filter jobs: name, status:failed, -term', 'aria-label': 'filter jobs',
      oninput: () => applySearch(),
    });
    const pinList = h('ul', { class: 'pl-pin-list', 'data-testid': 'pin-list' });
    const pinCount = h('span', { class: 'pl-pin-count' });
    const pinMenu = h('details', { class: 'pl-pins', 'data-testid': 'pin-menu', hidden: true },
      h('summary', { title: 'pinned resources', 'aria-label': 'pinned resources' },
        svg('svg', { width: 14, height: 14, 'aria-hidden': 'true' }, pinGlyph(0, 0)), pinCount),
      pinList);
    const banner = h('div', { class: 'pl-banner pl-paused-banner', 'data-testid': 'paused-banner', hidden: true });
    const archivedNote = h('div', { class: 'pl-banner pl-archived', 'data-testid': 'archived-banner', hidden: true },
      '▣ archived: this pipeline no longer runs; set it again with fly set-pipeline to restore it');
    const message = h('div', { class: 'pl-empty', 'data-testid': 'pipeline-empty', hidden: true });
    const edgeLayer = svg('g', { class: 'pl-edges' });
    const nodeLayer = svg('g', { class: 'pl-nodes' });
    const warnLayer = svg('g', { class: 'pl-warnings' });
    const graphEl = svg('svg', {
      class: 'pl-graph', 'data-testid': 'pipeline-graph', 'aria-label': 'pipeline graph',
      viewBox: '0 0 0 0',
    }, edgeLayer, nodeLayer, warnLayer);
    const resetBtn = CI.button('reset view', { class: 'pl-reset', 'data-testid': 'reset-zoom', title: 'fit the graph (r)', onclick: () => fit() });
    const legendEl = legend();
    const viewport = h('div', { class: 'pl-viewport' }, graphEl, message, h('div', { class: 'pl-view-tools' }, resetBtn), legendEl);
    const el = h('div', { class: 'pl-page' + (query.get('hide_ui') === 'true' ? ' pl-noui' : ''), 'data-testid': 'pipeline-page' },
      h('div', { class: 'pl-bar' }, groupsBar, h('div', { class: 'pl-tools' }, pinMenu, search)),
      banner, archivedNote, viewport);

    // Top-bar controls live across refreshes; refresh() updates their state.
    const pauseBtn = CI.button('', {
      class: 'pl-pause', 'data-testid': 'pause-pipeline', hidden: true,
      onclick: () => {
        if (!info) return;
        pauseBtn.disabled = true;
        CI.act(() => CI.put(CI.withQuery(api + (info.paused ? '/unpause' : '/pause'), varsQ)), refresh)
          .finally(() => (pauseBtn.disabled = !CI.canOperate(team)));
      },
    });
    CI.guard(pauseBtn, CI.canOperate(team));
    const favBtn = CI.button('☆', {
      class: 'pl-fav', 'data-testid': 'favorite', 'aria-pressed': 'false', title: 'favorite', disabled: true,
      onclick: () => {
        if (!info) return;
        const ids = favourites().filter((id) => id !== info.id);
        if (!isFav()) ids.push(info.id);
        localStorage.setItem(FAV_KEY, JSON.stringify(ids));
        renderControls();
      },
    });

    let info = null; // Pipeline
    let graph = null;
    let jobs = [];
    let dead = false;
    let hover = null; // {key, id}
    const view = { s: 1, x: 0, y: 0, fitted: false }; // scale and graph point at the top-left
    const isFav = () => !!info && favourites().includes(info.id);

    // ---- groups ------------------------------------------------------------------------
    function selectedGroups() {
      const groups = (info && info.groups) || [];
      if (askedGroups.length) return askedGroups;
      return groups.length ? [groups[0].name] : [];
    }
    const groupUrl = (names) => CI.withQuery(pageUrl, names.map((n) => 'group=' + CI.enc(n)).join('&'));

    function renderGroups() {
      const groups = info.groups || [];
      groupsBar.hidden = !groups.length;
      const sel = selectedGroups();
      const status = new Map(jobs.map((j) => [j.name, j.finished_build && j.finished_build.status]));
      CI.clear(groupsBar);
      for (const g of groups) {
        const st = (g.jobs || []).map((n) => status.get(n));
        const tint = st.includes('failed') ? 'failed' : st.includes('errored') ? 'errored' : '';
        const on = sel.includes(g.name);
        groupsBar.append(h('a', {
          class: `pl-tab${on ? ' pl-selected' : ''}${tint ? ' pl-tab-' + tint : ''}`,
          href: groupUrl([g.name]), 'data-testid': 'group-tab', 'data-name': g.name,
          'aria-current': on ? 'true' : null, title: 'shift-click to add or remove from the selection',
          onclick: (e) => {
            if (e.ctrlKey || e.metaKey || e.altKey || e.button !== 0) return;
            e.preventDefault();
            const next = !e.shiftKey ? [g.name] : on ? sel.filter((n) => n !== g.name) : sel.concat(g.name);
            CI.navigate(groupUrl(next));
          },
        }, tint ? CI.STATUS_ICON[tint] + ' ' : '', g.name));
      }
    }

    // ---- top bar, banners, pin menu ------------------------------------------------------
    function renderControls() {
      const canOp = CI.canOperate(team);
      pauseBtn.hidden = !!info.archived;
      pauseBtn.textContent = info.paused ? '▶' : '❚❚';
      pauseBtn.setAttribute('aria-label', info.paused ? 'unpause pipeline' : 'pause pipeline');
      pauseBtn.setAttribute('aria-pressed', String(!!info.paused));
      if (canOp) pauseBtn.title = info.paused ? 'unpause pipeline' : 'pause pipeline';
      const fav = isFav();
      favBtn.disabled = false;
      favBtn.textContent = fav ? '★' : '☆';
      favBtn.setAttribute('aria-pressed', String(fav));
      favBtn.title = fav ? 'unfavorite' : 'favorite';
      favBtn.classList.toggle('pl-on', fav);

      const topbar = document.querySelector('.topbar');
      if (topbar) topbar.classList.toggle('paused', !!info.paused);
      banner.hidden = !info.paused;
      CI.clear(banner).append('❚❚ paused',
        info.paused_by ? ` by ${info.paused_by}` : '', info.paused_at ? ` on ${CI.fmtTime(info.paused_at)}` : '');
      archivedNote.hidden = !info.archived;
    }

    function renderPins(resources) {
      if (!resources) return;
      const pinned = resources.filter((r) => r.pinned_version);
      pinMenu.hidden = !pinned.length;
      pinCount.textContent = pinned.length ? String(pinned.length) : '';
      CI.clear(pinList).append(...pinned.map((r) => h('li', {},
        h('a', { href: CI.resourceUrl(team, pipeline, r.name, vars), 'data-name': r.name },
          h('span', { class: 'pl-pin-name' }, r.name), h('span', { class: 'pl-pin-version' }, CI.versionText(r.pinned_version))))));
    }

    // ---- the graph ---------------------------------------------------------------------
    function nodeHref(n) {
      if (n.kind !== 'job') return CI.resourceUrl(team, pipeline, n.name, vars);
      const j = jobs.find((x) => x.name === n.name);
      const b = j && (j.next_build || j.finished_build);
      if (!b) return CI.jobUrl(team, pipeline, n.name, vars);
      return CI.buildUrl(Object.assign({ team_name: team, pipeline_name: pipeline, job_name: n.name }, b, { pipeline_instance_vars: vars }));
    }

    // Name text, squeezed to the server's width if the local monospace font is wider.
    const label = (text, x, n, anchor) =>
      svg('text', {
        x, y: n.y + n.height / 2 + 4, 'text-anchor': anchor,
        textLength: text.length * CHAR, lengthAdjust: 'spacingAndGlyphs',
      }, text);

    function jobNode(n) {
      const status = STATUSES.find((s) => n.classes.includes(s)) || 'no-builds';
      const running = n.classes.find((c) => c === 'started' || c === 'pending');
      const glyph = CI.STATUS_ICON[status];
      // Jobs with several edge slots are tall enough for the status glyph inside the box;
      // otherwise it lives in the tooltip (the box is exactly as wide as the name).
      const roomy = n.height >= 40;
      return svg('g', { class: `pl-node pl-job ${n.classes.join(' ')}`, 'data-testid': 'job-node', 'data-name': n.name, 'data-key': n.key, 'data-id': n.id, 'data-status': status },
        svg('title', {}, `${n.name}: ${glyph} ${status}${running ? `, ${running}` : ''}`),
        svg('rect', { x: n.x, y: n.y, width: n.width, height: n.height }),
        label(n.name, n.x + n.width / 2, n, 'middle'),
        roomy ? svg('text', { class: 'pl-glyph', x: n.x + n.width - 4, y: n.y + n.height - 5, 'text-anchor': 'end' }, glyph) : null);
    }

    function resourceNode(n) {
      const pinned = n.classes.includes('pinned');
      let x = n.x + 5;
      const pin = pinned ? pinGlyph(x + 3, n.y + 3) : null;
      if (pinned) x += 20;
      const icon = n.icon ? svg('circle', { class: 'pl-icon', cx: x + 7, cy: n.y + 10, r: 5 }, svg('title', {}, n.icon)) : null;
      if (n.icon) x += 20;
      const check = n.classes.find((c) => c === 'failed' || c === 'errored' || c === 'aborted');
      return svg('g', { class: `pl-node pl-resource pl-${n.kind} ${n.classes.join(' ')}`, 'data-testid': 'resource-node', 'data-name': n.name, 'data-key': n.key, 'data-id': n.id },
        svg('title', {}, `${n.name}${pinned ? ' (pinned)' : ''}${check ? `: check ${check}` : ''}`),
        svg('rect', { x: n.x, y: n.y, width: n.width, height: n.height }), pin, icon, label(n.name, x, n, 'start'));
    }

    function draw() {
      CI.clear(edgeLayer);
      CI.clear(nodeLayer);
      CI.clear(warnLayer);
      for (const e of graph.edges || []) {
        // Not data-from/-to: CI.tickTimes rewrites the text of elements carrying those.
        const attrs = { 'data-key': e.key, 'data-src': e.from, 'data-dst': e.to };
        // A wide transparent twin makes the 2 px line easy to hover.
        edgeLayer.append(svg('g', Object.assign({ class: `pl-edge ${e.class || 'none'}${e.dashed ? ' pl-dashed' : ''}` }, attrs),
          svg('path', { d: e.path, class: 'pl-hit' }), svg('path', { d: e.path, class: 'pl-line' })));
      }
      for (const n of graph.nodes || []) {
        nodeLayer.append(svg('a', { href: nodeHref(n), class: 'pl-link' }, n.kind === 'job' ? jobNode(n) : resourceNode(n)));
      }
      for (const x of graph.failed_columns || []) {
        warnLayer.append(svg('g', { class: 'pl-warn', 'data-testid': 'failed-column' },
          svg('title', {}, 'a job in this column failed'),
          svg('path', { d: `M ${x - 8} 17 L ${x + 8} 17 L ${x} 3 Z` }),
          svg('text', { x, y: 15, 'text-anchor': 'middle' }, '!')));
      }
      setHover(hover);
      applySearch();
    }

    // Highlight everything sharing the hovered key, plus a hovered node's edges and neighbours
    // (a job's key is only its own name).
    function setHover(hv) {
      hover = hv;
      graphEl.classList.toggle('pl-hl', !!hv);
      const near = new Set();
      for (const e of (hv && hv.id !== undefined && graph && graph.edges) || []) {
        if (String(e.from) === hv.id || String(e.to) === hv.id) near.add(String(e.from)).add(String(e.to));
      }
      for (const e of graphEl.querySelectorAll('[data-key]')) {
        const on = !!hv && (e.dataset.key === hv.key || near.has(e.dataset.id) ||
          (near.has(e.dataset.src) && near.has(e.dataset.dst) && (e.dataset.src === hv.id || e.dataset.dst === hv.id)));
        e.classList.toggle('pl-on', on);
      }
    }
    graphEl.addEventListener('mouseover', (e) => {
      const t = e.target.closest('[data-key]');
      const hv = t ? { key: t.dataset.key, id: t.dataset.id } : null;
      if (JSON.stringify(hv) !== JSON.stringify(hover)) setHover(hv);
    });
    graphEl.addEventListener('mouseleave', () => setHover(null));

    function applySearch() {
      const terms = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      graphEl.classList.toggle('pl-searching', terms.length > 0);
      const byId = new Map(((graph && graph.nodes) || []).map((n) => [String(n.id), n]));
      for (const g of nodeLayer.querySelectorAll('.pl-job')) {
        const n = byId.get(g.dataset.id);
        g.classList.toggle('pl-dim', !!n && !terms.every((t) => termMatches(n, t)));
      }
    }

    // ---- zoom and pan: the viewBox is the view (x, y at the top-left, s = screen px per unit)
    function applyView() {
      const w = graphEl.clientWidth || 1;
      const hh = graphEl.clientHeight || 1;
      graphEl.setAttribute('viewBox', `${view.x} ${view.y} ${w / view.s} ${hh / view.s}`);
    }
    function fit() {
      const w = graphEl.clientWidth;
      const hh = graphEl.clientHeight;
      if (!graph || !graph.width || !w || !hh) return false;
      const s = Math.min(1, Math.max(MIN_FIT, Math.min(w / graph.width, hh / graph.height)));
      // Centre an axis that fits; otherwise start at the graph's left/top (the user pans on).
      const axis = (screen, size) => (size * s <= screen ? (size - screen / s) / 2 : 0);
      Object.assign(view, { s, x: axis(w, graph.width), y: axis(hh, graph.height), fitted: true });
      applyView();
      return true;
    }
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    graphEl.addEventListener('wheel', (e) => {
      e.preventDefault();
      const r = graphEl.getBoundingClientRect();
      const px = e.clientX - r.left;
      const py = e.clientY - r.top;
      const gx = view.x + px / view.s;
      const gy = view.y + py / view.s;
      // deltaMode 1 = lines (Firefox), 0 = pixels.
      view.s = clamp(view.s * Math.exp(-e.deltaY * (e.deltaMode ? 0.05 : 0.002)), 0.1, 4);
      view.x = gx - px / view.s;
      view.y = gy - py / view.s;
      applyView();
    }, { passive: false });

    let drag = null; // {x, y, vx, vy, moved}
    let suppressClick = false;
    graphEl.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, moved: false, id: e.pointerId };
    });
    graphEl.addEventListener('pointermove', (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return; // a click, not a drag
      if (!drag.moved) graphEl.setPointerCapture(drag.id);
      drag.moved = true;
      graphEl.classList.add('pl-dragging');
      view.x = drag.vx - dx / view.s;
      view.y = drag.vy - dy / view.s;
      applyView();
    });
    const endDrag = () => {
      if (drag && drag.moved) suppressClick = true;
      drag = null;
      graphEl.classList.remove('pl-dragging');
    };
    graphEl.addEventListener('pointerup', endDrag);
    graphEl.addEventListener('pointercancel', endDrag);
    // Node links: SVG <a> has no pathname, so the router would reload the page; navigate here.
    graphEl.addEventListener('click', (e) => {
      if (suppressClick) {
        suppressClick = false;
        e.preventDefault();
        return;
      }
      const a = e.target.closest('a');
      if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      CI.navigate(a.getAttribute('href'));
    });
    const onResize = () => (view.fitted ? applyView() : graph && fit());
    window.addEventListener('resize', onResize);

    // ---- legend: fades after 10 s without mouse movement -----------------------------------
    let legendTimer = 0;
    const wakeLegend = () => {
      legendEl.classList.remove('pl-legend-hidden');
      clearTimeout(legendTimer);
      legendTimer = setTimeout(() => legendEl.classList.add('pl-legend-hidden'), 10000);
    };
    document.addEventListener('mousemove', wakeLegend);
    wakeLegend();

    // ---- refresh -----------------------------------------------------------------------
    function emptyText(graphError, nodes) {
      if (graphError && !graph) return `the graph could not be drawn: ${graphError.message}`;
      if (nodes.length) return '';
      if (graph && !graph.nodes) return 'this server does not lay out pipeline graphs yet';
      if (!jobs.length) return 'this pipeline has no jobs; configure some with fly set-pipeline';
      return 'no jobs in the selected group' + (selectedGroups().length > 1 ? 's' : '');
    }

    async function refresh() {
      const p = await apiGet(''); // errors propagate: 404 → not-found page
      if (dead) return;
      info = p;
      const groupQ = selectedGroups().map((g) => 'group=' + CI.enc(g)).join('&');
      let graphError = null;
      const [g, js, rs] = await Promise.all([
        apiGet('/graph', groupQ).catch((e) => ((graphError = e), null)),
        apiGet('/jobs').catch(() => null),
        apiGet('/resources').catch(() => null),
      ]);
      if (dead) return;
      if (js) jobs = js;
      renderControls();
      renderGroups();
      renderPins(rs);
      if (g) graph = g;
      const nodes = (graph && graph.nodes) || [];
      const text = emptyText(graphError, nodes);
      message.textContent = text;
      message.hidden = !text;
      if (!graph) return;
      draw();
      // Fit once; later refreshes keep the user's zoom and pan.
      if (!view.fitted && nodes.length) {
        fit();
        performance.mark('graph-drawn'); // read by benches/ui.rs
      }
    }

    return {
      el,
      title: pipeline,
      crumbs: [[team, null], [pipeline, null]],
      controls: [pauseBtn, favBtn],
      pausedBar: false,
      refresh,
      destroy() {
        dead = true;
        clearTimeout(legendTimer);
        document.removeEventListener('mousemove', wakeLegend);
        window.removeEventListener('resize', onResize);
        const topbar = document.querySelector('.topbar');
        if (topbar) topbar.classList.remove('paused');
      },
      help: [['r', 'reset the graph view'], ['wheel / drag', 'zoom / pan the graph'], ['shift+click', 'add a group to the selection']],
      keys: { r: () => fit() },
    };
  };
})();
