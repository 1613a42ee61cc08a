// The job page (web-ui.md §6): header in the latest finished build's colour with trigger and
// pause controls, then the paginated builds list with each build's inputs and outputs.
'use strict';

(function () {
  const { h } = CI;



  function versionLines(version) {
    return Object.entries(version || {}).map(([k, v]) => h('div', { class: 'job-version-kv' }, `${k}: ${v}`));
  }

  function ioTable(title, rows, isInput) {
    return h('table', { class: `job-io job-${title}`, 'data-testid': `build-${title}` },
      h('thead', {}, h('tr', {}, h('th', { colspan: 2 }, title))),
      h('tbody', {}, rows.length
        ? rows.map((r) => h('tr', {},
          h('td', { class: 'job-io-name' }, r.name,
            isInput && r.first_occurrence ? h('span', { class: 'job-new', title: 'first build with this version' }, 'new') : ''),
          h('td', { class: 'job-io-version' }, versionLines(r.version))))
        : h('tr', {}, h('td', { colspan: 2, class: 'muted' }, `no ${title}`))));
  }

  function buildItem(b, res) {
    const status = b.status || 'pending';
    const times = [];
    if (b.start_time) times.push(h('span', {}, h('span', { class: 'muted' }, 'started '), CI.fmtTime(b.start_time)));
    if (b.end_time) times.push(h('span', {}, h('span', { class: 'muted' }, 'finished '), CI.fmtTime(b.end_time)));
    if (b.start_time) {
      times.push(h('span', {}, h('span', { class: 'muted' }, 'duration '),
        h('span', { 'data-from': b.start_time, 'data-to': b.end_time || '' },
          CI.duration((b.end_time || CI.now()) - b.start_time))));
    } else if (status === 'pending') {
      times.push(h('span', { class: 'muted' }, 'waiting to start'));
    }
    const running = status === 'started' || status === 'pending';
    return h('li', {
      class: `job-build${b.rerun_of ? ' job-rerun' : ''}`, 'data-testid': 'job-build',
      dataset: { buildId: b.id, buildName: b.name, status },
    },
    h('a', { class: `job-build-name bg-${status}${running ? ' running-stripes' : ''}`, href: CI.buildUrl(b), title: status },
      `#${b.name}`),
    h('div', { class: 'job-build-body' },
      h('div', { class: 'job-build-meta' }, CI.statusBadge(status, status), times,
        b.rerun_of ? h('span', { class: 'muted' }, `rerun of #${b.rerun_of.name}`) : '',
        b.created_by ? h('span', { class: 'muted' }, `by ${b.created_by}`) : ''),
      res
        ? h('div', { class: 'job-build-io' }, ioTable('inputs', res.inputs || [], true), ioTable('outputs', res.outputs || [], false))
        : h('div', { class: 'muted' }, running ? '' : 'inputs and outputs unavailable')));
  }

  CI.pages.job = function (params, query) {
    const { team, pipeline, job } = params;
    const varsJson = query.get('vars');
    const vars = CI.parseVars(varsJson);
    const varsQ = varsJson ? 'vars=' + CI.enc(varsJson) : '';
    const api = `${CI.apiPipeline(team, pipeline)}/jobs/${CI.enc(job)}`;
    const pageUrl = CI.jobUrl(team, pipeline, job, vars);
    const paging = ['from', 'to', 'limit'].filter((k) => query.get(k)).map((k) => `${k}=${CI.enc(query.get(k))}`);
    if (!query.get('limit')) paging.push('limit=100');
    const atHead = !query.get('from') && !query.get('to');

    const nameEl = h('h1', { class: 'job-name', 'data-testid': 'job-name' }, job);
    const pausedBadge = h('span', { class: 'job-paused-badge', 'data-testid': 'job-paused', hidden: true }, '❚❚ paused');
    const actions = h('div', { class: 'job-actions' });
    const header = h('header', { class: 'job-header bg-pending', 'data-testid': 'job-header' },
      h('div', { class: 'job-title' }, nameEl, pausedBadge), actions);
    const pager = h('nav', { class: 'pager job-pager', 'aria-label': 'build pages' });
    const list = h('ul', { class: 'job-builds', 'data-testid': 'job-builds', 'aria-busy': 'true' },
      h('li', { class: 'muted job-loading' }, 'loading…'));
    const el = h('div', { class: 'job-page' }, header,
      h('section', { class: 'page job-history' }, h('div', { class: 'job-history-head' }, h('h2', {}, 'builds'), pager), list));

    let current = null; // last Job
    let actionsKey = '';
    let links = {};
    let gen = 0;
    let destroyed = false;
    const resCache = new Map(); // build id → {inputs, outputs} of finished builds
    const items = new Map(); // build id → {el, key}

    function renderActions(j) {
      const canOp = CI.canOperate(team);
      const key = JSON.stringify([canOp, !!j.paused, !!j.disable_manual_trigger]);
      if (key === actionsKey) return;
      actionsKey = key;
      const trigger = CI.button([h('span', { class: 'job-plus', 'aria-hidden': 'true' }, '+'), ' trigger'], {
        class: 'job-trigger', 'data-testid': 'trigger-job', title: 'trigger a new build',
        onclick: async () => {
          trigger.disabled = true;
          const b = await CI.act(() => CI.post(CI.withQuery(`${api}/builds`, varsQ)));
          if (b && b.id !== undefined && !destroyed) CI.navigate(CI.buildUrl(b));
          else trigger.disabled = false;
        },
      });
      if (j.disable_manual_trigger) CI.guard(trigger, false, 'manual triggering is disabled for this job');
      else CI.guard(trigger, canOp);
      const pause = CI.button(j.paused ? '▶ unpause' : '❚❚ pause', {
        class: 'job-pause', 'data-testid': 'pause-job', 'aria-pressed': String(!!j.paused),
        title: j.paused ? 'unpause job' : 'pause job',
        onclick: async () => {
          pause.disabled = true;
          await CI.act(() => CI.put(CI.withQuery(`${api}/${current && current.paused ? 'unpause' : 'pause'}`, varsQ)));
          actionsKey = ''; // re-enable from fresh state even if the refresh shows no change
          await refresh().catch(() => {});
        },
      });
      CI.guard(pause, canOp);
      CI.clear(actions).append(pause, trigger);
    }

    function renderHeader(j) {
      const status = (j.finished_build && j.finished_build.status) || 'pending';
      header.className = `job-header bg-${status}${j.next_build ? ' running-stripes' : ''}${j.paused ? ' job-is-paused' : ''}`;
      header.dataset.status = status;
      nameEl.textContent = j.name;
      pausedBadge.hidden = !j.paused;
      renderActions(j);
    }

    function renderBuilds(builds, resources) {
      list.removeAttribute('aria-busy');
      if (!builds.length) {
        items.clear();
        CI.clear(list).append(h('li', { class: 'job-empty empty', 'data-testid': 'job-builds-empty' },
          `no builds for job "${job}"`));
        return;
      }
      const seen = new Set();
      const els = builds.map((b) => {
        seen.add(b.id);
        const res = resources.get(b.id);
        const key = JSON.stringify([b, res || null]);
        let it = items.get(b.id);
        if (!it || it.key !== key) {
          it = { el: buildItem(b, res), key };
          items.set(b.id, it);
        }
        return it.el;
      });
      for (const id of [...items.keys()]) if (!seen.has(id)) items.delete(id);
      // Reorder in place so unchanged entries keep their nodes (and the reader's selection).
      for (const node of [...list.children]) if (!els.includes(node)) node.remove();
      els.forEach((node, i) => {
        if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
      });
    }

    async function loadResources(builds) {
      const out = new Map();
      await Promise.all(builds.map(async (b) => {
        const finished = b.status !== 'started' && b.status !== 'pending';
        if (finished && resCache.has(b.id)) return out.set(b.id, resCache.get(b.id));
        if (b.status === 'pending') return; // nothing resolved yet
        try {
          const r = await CI.get(`/api/v1/builds/${b.id}/resources`);
          out.set(b.id, r);
          if (finished) resCache.set(b.id, r);
        } catch (_) {
          // A build we may not read in detail still shows up in the list.
        }
      }));
      return out;
    }

    async function refresh() {
      const my = ++gen;
      const [j, page] = await Promise.all([
        CI.get(CI.withQuery(api, varsQ)),
        CI.getPage(CI.withQuery(`${api}/builds`, varsQ, ...paging)),
      ]);
      const builds = Array.isArray(page.items) ? page.items : [];
      const resources = await loadResources(builds);
      if (my !== gen || destroyed) return; // a newer refresh is already under way
      current = j;
      links = page.links;
      renderHeader(j);
      // Without from/to this is the newest page: a `previous` link can only lead back here.
      if (atHead) delete links.previous;
      CI.clear(pager).append(...CI.pagerLinks(links, pageUrl, 'job', 'builds'));
      renderBuilds(builds, resources);
      CI.tickTimes(el);
    }

    const go = (rel) => CI.pagerKey(pager, rel);

    const pipelineLabel = CI.pipelineLabel(pipeline, vars);
    return {
      el,
      title: job,
      crumbs: [[team, null], [pipelineLabel, CI.pipelineUrl(team, pipeline, vars)], [job, null]],
      refresh,
      destroy() {
        destroyed = true;
      },
      help: [['h', 'newer builds page'], ['l', 'older builds page']],
      keys: { h: go('previous'), l: go('next') },
    };
  };
})();
