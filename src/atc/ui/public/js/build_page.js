// The build page around `CI.BuildView`: loading the build, its job and history, the
// header's actions, the event stream, `#L` permalinks, search, timeline and keys.
'use strict';

(function () {
  const { h } = CI;

  CI.pages.build = function (params, query) {
    const jobPath = params.job
      ? `${CI.apiPipeline(params.team, params.pipeline)}/jobs/${CI.enc(params.job)}`
      : null;
    const varsQ = query.get('vars') ? 'vars=' + CI.enc(query.get('vars')) : '';
    let build = null, job = null, view = null, watcher = null, pendingTimer = null, streaming = false;
    let scrolledTo = null;

    const header = h('div', { class: 'build-header bg-pending', 'data-testid': 'build-header' });
    const history = h('div', { class: 'build-history', 'data-testid': 'build-history' });
    const searchBox = h('input', { type: 'search', placeholder: 'search this log (Enter: next)', 'data-testid': 'log-search', 'aria-label': 'search the log' });
    const searchCount = h('span', { class: 'muted search-count' });
    const timeline = h('div', { class: 'timeline', hidden: true, 'data-testid': 'timeline' });
    const toolbar = h('div', { class: 'build-toolbar', hidden: true },
      CI.button('expand all', { 'data-testid': 'expand-all', onclick: () => view && view.expandAll(true) }),
      CI.button('collapse all', { 'data-testid': 'collapse-all', onclick: () => view && view.expandAll(false) }),
      CI.button('timeline', { 'data-testid': 'timeline-toggle', onclick: () => { timeline.hidden = !timeline.hidden; drawTimeline(); } }),
      searchBox, searchCount, h('span', { class: 'spacer' }),
      h('a', { class: 'download-log', 'data-testid': 'download-log', href: '#', target: '_blank' }, 'raw log'));
    const body = h('div', { class: 'build-main' });
    const el = h('div', { class: 'build-page' }, header, history, toolbar, timeline, body);

    const canOperate = () => build && CI.canOperate(build.team_name);
    const running = () => build && (build.status === 'pending' || build.status === 'started');

    function renderHeader() {
      const status = build.status;
      header.className = `build-header bg-${status}${status === 'started' ? ' running-stripes' : ''}`;
      header.dataset.status = status;
      CI.setFavicon(status);
      const title = build.job_name
        ? [h('a', { href: CI.jobUrl(build.team_name, build.pipeline_name, build.job_name, build.pipeline_instance_vars) }, build.job_name), ` #${build.name}`]
        : [build.resource_name ? `check ${build.resource_name} #${build.name}` : `build #${build.name}`];
      const abort = CI.guard(CI.button('✕ abort', { 'data-testid': 'abort-build', title: 'abort (A)', onclick: abortBuild }), canOperate());
      abort.hidden = !running();
      const rerun = build.job_name
        ? CI.guard(CI.button('↻ rerun', { 'data-testid': 'rerun-build', title: 'rerun with the same inputs (R)', onclick: rerunBuild }),
          canOperate() && !(job && job.disable_reruns) && !running())
        : null;
      const trigger = build.job_name
        ? CI.guard(CI.button('+ trigger', { 'data-testid': 'trigger-build', title: 'trigger a new build (T)', onclick: triggerBuild }),
          canOperate() && !(job && job.disable_manual_trigger))
        : null;
      const commentBtn = CI.guard(CI.button('✎ comment', { 'data-testid': 'comment-build', onclick: () => (commentBar.hidden = !commentBar.hidden) }), canOperate());
      const commentText = h('textarea', { rows: 2, 'data-testid': 'comment-text' });
      commentText.value = build.comment || '';
      const commentBar = h('div', { class: 'comment-bar', hidden: true },
        commentText, CI.button('save', { 'data-testid': 'save-comment', onclick: () => CI.act(() => CI.put(`/api/v1/builds/${build.id}/comment`, { comment: commentText.value }), load) }));
      const times = h('table', { class: 'build-times' },
        build.start_time ? h('tr', {}, h('td', {}, 'started'), h('td', { title: CI.fmtTime(build.start_time), 'data-since': build.start_time, 'data-suffix': ' ago' }, CI.ago(build.start_time) + ' ago')) : h('tr', {}, h('td', {}, 'pending')),
        build.end_time ? h('tr', {}, h('td', {}, 'finished'), h('td', { title: CI.fmtTime(build.end_time), 'data-since': build.end_time, 'data-suffix': ' ago' }, CI.ago(build.end_time) + ' ago')) : null,
        build.start_time ? h('tr', {}, h('td', {}, 'duration'), h('td', build.end_time ? {} : { 'data-from': build.start_time }, CI.duration((build.end_time || CI.now()) - build.start_time))) : null);
      CI.clear(header).append(
        h('div', { class: 'build-title' },
          h('h1', {}, CI.statusBadge(status), ' ', title),
          build.created_by ? h('div', { class: 'created-by' }, `created by ${build.created_by}`) : null,
          build.comment ? h('div', { class: 'build-comment', 'data-testid': 'build-comment' }, build.comment) : null),
        times, h('div', { class: 'build-actions' }, abort, rerun, trigger, commentBtn), commentBar);
      toolbar.querySelector('.download-log').href = `/api/v1/builds/${build.id}/log`;
    }

    async function renderHistory() {
      if (!jobPath) return;
      const builds = await CI.get(CI.withQuery(`${jobPath}/builds?limit=100`, varsQ));
      CI.clear(history).append(...builds.map((b) => h('a', {
        href: CI.buildUrl(b), class: `history-tab bg-${b.status}${b.id === build.id ? ' current' : ''}`, 'data-testid': 'history-tab', title: b.status,
      }, b.name)));
      const current = history.querySelector('.current');
      if (current && !scrolledTo) current.scrollIntoView({ block: 'nearest', inline: 'center' });
      scrolledTo = scrolledTo || 'done';
    }

    const abortBuild = () => CI.act(() => CI.put(`/api/v1/builds/${build.id}/abort`), load);
    const rerunBuild = () => CI.act(() => CI.post(CI.withQuery(`${jobPath}/builds/${CI.enc(build.name)}`, varsQ)), (b) => CI.navigate(CI.buildUrl(b)));
    const triggerBuild = () => CI.act(() => CI.post(CI.withQuery(`${jobPath}/builds`, varsQ)), (b) => CI.navigate(CI.buildUrl(b)));

    // Why a pending build waits (`/builds/:id/preparation`), refreshed every second.
    async function showPending() {
      const prep = await CI.get(`/api/v1/builds/${build.id}/preparation`).catch(() => null);
      if (!prep) return;
      const state = (s) => (s === 'BLOCKING' ? 'blocking' : s === 'NOT_BLOCKING' ? 'ok' : 'unknown');
      const item = (text, s, detail) => h('li', { class: `prep-${state(s)}`, 'data-testid': 'prep-item', 'data-state': state(s) },
        h('span', { class: 'prep-icon' }, state(s) === 'blocking' ? '✗' : state(s) === 'ok' ? '✓' : '…'), ' ', text,
        detail ? h('div', { class: 'prep-detail' }, detail) : null);
      const reasons = Object.entries(prep.missing_input_reasons || {}).map(([k, v]) => `${k}: ${v}`).join('; ');
      CI.clear(body).append(h('div', { class: 'preparation', 'data-testid': 'preparation' },
        h('h3', {}, 'preparing build'),
        h('ul', {},
          item('checking pipeline is not paused', prep.paused_pipeline),
          item('checking job is not paused', prep.paused_job),
          Object.entries(prep.inputs || {}).map(([name, s]) => item(`discovering any new versions of ${name}`, s)),
          item('waiting for a suitable set of input versions', prep.inputs_satisfied, reasons),
          item('checking max-in-flight is not reached', prep.max_running_builds))));
    }

    async function startStream() {
      if (streaming) return;
      streaming = true;
      const denied = () =>
        CI.clear(body).append(h('div', { class: 'empty', 'data-testid': 'not-authorized' }, 'not authorized to see this build\'s log'));
      let plan;
      try {
        plan = await CI.get(`/api/v1/builds/${build.id}/plan`);
      } catch (e) {
        streaming = false;
        if (e.status === 404 && !running()) CI.clear(body).append(h('div', { class: 'empty', 'data-testid': 'build-cancelled' }, 'build cancelled'));
        else if (e.status === 403) denied();
        return;
      }
      toolbar.hidden = false;
      watcher = CI.watchBuild(build, plan.plan, {
        onStatus: () => load(),
        onLines: () => {
          applyHash(false);
          if (view.follow && running()) window.scrollTo(0, document.body.scrollHeight);
        },
        onEnd: () => load().then(() => {
          view.finish(build.status);
          applyHash(false);
          performance.mark('log-complete'); // read by benches/ui.rs
        }),
        onDenied: denied,
      });
      view = watcher.view;
      CI.clear(body).append(view.el);
      // A get whose version is new to this job is marked "changed".
      CI.get(`/api/v1/builds/${build.id}/resources`).then((io) => {
        const fresh = new Set((io.inputs || []).filter((i) => i.first_occurrence).map((i) => i.name));
        for (const s of view.order) if (s.kind === 'get' && fresh.has(s.name)) s.changed.hidden = false;
      }, () => {});
    }

    // `#L<step>:<line>[:<to>]`: expand the step, highlight, scroll there once.
    let hashDone = '';
    function applyHash(force) {
      const m = location.hash.match(/^#L([^:]+):(\d+)(?::(\d+))?$/);
      if (!m || !view) return;
      const step = view.steps.get(decodeURIComponent(m[1]));
      if (!step) return;
      const from = Number(m[2]), to = Number(m[3] || m[2]);
      step.log.highlight = [Math.min(from, to), Math.max(from, to)];
      view.expand(step, true);
      step.manual = true;
      step.log.redraw();
      if ((force || hashDone !== location.hash) && step.log.rows.length >= from) {
        hashDone = location.hash;
        view.follow = false;
        step.log.scrollTo(from - 1);
        step.log.redraw();
      }
    }
    const onHash = () => applyHash(true);

    let matches = [], matchIndex = -1, matchQuery = '';
    searchBox.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter' || !view) return;
      const q = searchBox.value.toLowerCase();
      if (q !== matchQuery) {
        matchQuery = q;
        matches = [];
        if (q) for (const s of view.order) s.log.rows.forEach((_, i) => s.log.text(i).toLowerCase().includes(q) && matches.push([s, i]));
        matchIndex = -1;
      }
      for (const s of view.order) if (s.log.match !== -1) { s.log.match = -1; s.log.redraw(); }
      if (!matches.length) {
        searchCount.textContent = q ? 'no matches' : '';
        return;
      }
      matchIndex = (matchIndex + (e.shiftKey ? -1 : 1) + matches.length) % matches.length;
      const [step, i] = matches[matchIndex];
      searchCount.textContent = `${matchIndex + 1} of ${matches.length}`;
      view.follow = false;
      view.expand(step, true);
      step.log.match = i;
      step.log.scrollTo(i);
      step.log.redraw();
    });

    function drawTimeline() {
      if (timeline.hidden || !view) return;
      const steps = view.order.filter((s) => s.start);
      const t0 = Math.min(...steps.map((s) => s.start), build.start_time || Infinity);
      const t1 = Math.max(...steps.map((s) => s.end || CI.now()), build.end_time || 0, t0 + 1);
      CI.clear(timeline).append(...steps.map((s) => {
        const bar = h('div', { class: `tl-bar bg-${s.state === 'running' ? 'started' : s.state === 'interrupted' ? 'aborted' : s.state}` });
        bar.style.marginLeft = ((s.start - t0) / (t1 - t0)) * 100 + '%';
        bar.style.width = Math.max(0.5, (((s.end || CI.now()) - s.start) / (t1 - t0)) * 100) + '%';
        return h('div', { class: 'tl-row', 'data-testid': 'timeline-row' },
          h('span', { class: 'tl-name' }, `${s.kind} ${s.name}`), h('div', { class: 'tl-track' }, bar),
          h('span', { class: 'tl-dur' }, CI.duration((s.end || CI.now()) - s.start)));
      }));
    }

    let frame = 0;
    const onScroll = () => {
      if (view) view.follow = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
      if (!frame) frame = requestAnimationFrame(() => { frame = 0; if (view) view.drawVisible(); });
    };

    let loading = null;
    async function load() {
      if (loading) return loading;
      loading = (async () => {
        build = params.id
          ? await CI.get(`/api/v1/builds/${CI.enc(params.id)}`)
          : await CI.get(CI.withQuery(`${jobPath}/builds/${CI.enc(params.build)}`, varsQ));
        if (jobPath && !job) job = await CI.get(CI.withQuery(jobPath, varsQ)).catch(() => null);
        renderHeader();
        if (build.reap_time) {
          CI.clear(body).append(h('div', { class: 'empty' }, `RIP — this log has been reaped (${CI.fmtTime(build.reap_time)}).`));
        } else if (build.status === 'pending') {
          await showPending();
          clearTimeout(pendingTimer);
          pendingTimer = setTimeout(load, 1000);
        } else {
          await startStream();
        }
        drawTimeline();
      })();
      try {
        await loading;
      } finally {
        loading = null;
      }
    }

    window.addEventListener('scroll', onScroll, { passive: true });
    window.addEventListener('resize', onScroll);
    window.addEventListener('hashchange', onHash);
    let first = true;
    return {
      el,
      get title() { return build ? `${build.job_name || 'build'} #${build.name}` : 'build'; },
      crumbs: params.job
        ? [[params.team, null], [params.pipeline, CI.withQuery(CI.pipelinePath(params.team, params.pipeline), varsQ)], [params.job, CI.withQuery(`${CI.pipelinePath(params.team, params.pipeline)}/jobs/${CI.enc(params.job)}`, varsQ)]]
        : [['build', null], [params.id, null]],
      async refresh() {
        if (first) {
          first = false;
          await load();
          renderHistory().catch(() => {});
          return;
        }
        if (running()) await load();
        await renderHistory().catch(() => {});
        drawTimeline();
      },
      destroy() {
        if (watcher) watcher.close();
        clearTimeout(pendingTimer);
        window.removeEventListener('scroll', onScroll);
        window.removeEventListener('resize', onScroll);
        window.removeEventListener('hashchange', onHash);
      },
      help: [['h / l', 'previous / next build'], ['j / k', 'scroll down / up'], ['gg / G', 'top / bottom'], ['T', 'trigger a new build'], ['R', 'rerun this build'], ['A', 'abort this build']],
      keys: {
        h: () => step(1), l: () => step(-1),
        j: () => window.scrollBy(0, 60), k: () => window.scrollBy(0, -60),
        gg: () => window.scrollTo(0, 0), G: () => window.scrollTo(0, document.body.scrollHeight),
        T: () => canOperate() && jobPath && triggerBuild(),
        R: () => canOperate() && jobPath && !running() && rerunBuild(),
        A: () => canOperate() && running() && abortBuild(),
      },
    };

    // History is newest first: `h` goes to the older build (right), `l` to the newer one.
    function step(delta) {
      const tabs = [...history.querySelectorAll('.history-tab')];
      const i = tabs.findIndex((t) => t.classList.contains('current'));
      const next = tabs[i + delta];
      if (next) CI.navigate(next.getAttribute('href'));
    }
  };
})();
