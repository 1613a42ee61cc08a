// The resource page (web-ui.md §8): check status and manual check, the pin bar with its
// comment, and the paginated versions list (enable/disable, pin, expandable details).
'use strict';

(function () {
  const { h } = CI;

  // Order-independent comparison of two version objects.
  const sameVersion = (a, b) =>
    !!a && !!b && JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());


  const pinIcon = () => CI.svg('svg', { class: 'res-pin-icon', viewBox: '0 0 24 24', width: 18, height: 18, 'aria-hidden': 'true' },
    CI.svg('path', { d: 'M16 12V4h1V2H7v2h1v8l-2 2v2h5.2v6h1.6v-6H18v-2z', fill: 'currentColor' }));

  const buildLink = (b) =>
    h('li', {}, h('a', { href: CI.buildUrl(b), class: `res-build-link status-${b.status}` },
      CI.statusBadge(b.status), ' ', b.job_name ? `${b.job_name} #${b.name}` : `build #${b.name}`));

  CI.pages.resource = function (params, query) {
    const { team, pipeline, resource } = params;
    const varsJson = query.get('vars');
    const vars = CI.parseVars(varsJson);
    const varsQ = varsJson ? 'vars=' + CI.enc(varsJson) : '';
    const filters = query.getAll('filter').map((f) => 'filter=' + CI.enc(f));
    const api = `${CI.apiPipeline(team, pipeline)}/resources/${CI.enc(resource)}`;
    const url = (path) => CI.withQuery(api + path, varsQ);
    const pageUrl = CI.withQuery(CI.resourceUrl(team, pipeline, resource, vars), ...filters);
    const paging = ['from', 'to', 'limit'].filter((k) => query.get(k)).map((k) => `${k}=${CI.enc(query.get(k))}`);
    if (!query.get('limit')) paging.push('limit=100');
    const atHead = !query.get('from') && !query.get('to');

    const nameEl = h('h1', { class: 'res-name', 'data-testid': 'resource-name' }, resource);
    const typeEl = h('span', { class: 'res-type' });
    const checkedEl = h('span', { class: 'res-checked', 'data-testid': 'last-checked' });
    const checkBadge = h('span', { class: 'res-check-badge', 'data-testid': 'check-status' });
    const checkBtn = CI.guard(CI.button([h('span', { 'aria-hidden': 'true' }, '⟳'), ' check'], {
      class: 'res-check', 'data-testid': 'check-resource', title: 'trigger manual check', onclick: check,
    }), CI.canOperate(team));
    const header = h('header', { class: 'res-header', 'data-testid': 'resource-header' },
      h('div', { class: 'res-title' }, nameEl, typeEl),
      h('div', { class: 'res-check-info' }, checkedEl, checkBadge, checkBtn));
    const checkError = h('div', { class: 'res-check-error', 'data-testid': 'check-error', role: 'status', hidden: true });
    const pinBar = h('div', { class: 'res-pin-bar', 'data-testid': 'pin-bar', hidden: true, dataset: { pinned: 'none' } });
    const pager = h('nav', { class: 'pager res-pager', 'aria-label': 'version pages' });
    const list = h('ul', { class: 'res-versions', 'data-testid': 'versions', 'aria-busy': 'true' },
      h('li', { class: 'muted' }, 'loading…'));
    const checkOutput = h('div', { class: 'res-check-output', 'data-testid': 'check-output', hidden: true });
    const el = h('div', { class: 'res-page' }, header, checkError, checkOutput, pinBar,
      h('section', { class: 'page res-history' },
        h('div', { class: 'res-history-head' }, h('h2', {}, 'versions'), pager,
          filters.length ? h('a', { href: CI.resourceUrl(team, pipeline, resource, vars), class: 'res-clear-filter' }, 'show all versions') : ''),
        list));

    let res = null; // last Resource
    let gen = 0;
    let destroyed = false;
    let pinKey = '';
    let commentDirty = false;
    let commentBox = null;
    let fastTimer = null;
    let ownCheck = null; // the check build started here, until the resource reports it as its `build`
    const expanded = new Set(); // version ids whose details are open
    const rows = new Map(); // version id → {el, head, details, key}

    async function check() {
      checkBtn.disabled = true;
      const b = await CI.act(() => CI.post(url('/check'), { from: null }));
      if (b && b.id !== undefined) ownCheck = b;
      checkBtn.disabled = false;
      await refresh().catch(() => {});
    }

    // Every action refreshes afterwards, successful or not, so the page shows the server's truth.
    const action = (fn) => async (e) => {
      if (e && e.currentTarget) e.currentTarget.disabled = true;
      await CI.act(fn);
      pinKey = '';
      await refresh().catch(() => {});
    };

    function renderHeader(r, b) {
      nameEl.textContent = r.name;
      typeEl.textContent = r.type || '';
      CI.clear(checkedEl);
      if (r.last_checked) {
        checkedEl.append('checked ', h('span', { 'data-since': r.last_checked, dataset: { suffix: ' ago' }, title: CI.fmtTime(r.last_checked) },
          CI.ago(r.last_checked) + ' ago'));
      } else {
        checkedEl.append(h('span', { class: 'muted' }, 'not checked yet'));
      }
      const status = b ? b.status : '';
      CI.clear(checkBadge);
      if (b) checkBadge.append(CI.statusBadge(status, status === 'started' || status === 'pending' ? 'checking' : status));
      // A failed check is why builds wait forever (issues #4811/#4844): say so loudly.
      const bad = status === 'failed' || status === 'errored' || status === 'aborted';
      const running = status === 'started' || status === 'pending';
      checkError.hidden = !(bad || running);
      checkError.className = `res-check-error${bad ? ` bg-${status}` : running ? ' bg-started running-stripes' : ''}`;
      CI.clear(checkError);
      if (bad || running) {
        checkError.append(
          h('span', { class: 'res-check-msg' }, bad ? `check ${status}` : 'check running'),
          b.end_time ? h('span', { class: 'res-check-when' }, CI.fmtTime(b.end_time)) : '',
          h('a', { href: `/builds/${b.id}`, 'data-testid': 'check-build-link' }, 'view check build'));
      }
      showCheckOutput(bad || running ? b : null);
    }

    // The failing or running check's steps and log, as on the build page. Check builds are
    // never public: only the team's members see them.
    let checkWatch = null;
    async function showCheckOutput(b) {
      const want = b && CI.roleAtLeast(team, 'viewer') ? b.id : null;
      if ((checkWatch && checkWatch.id) === want) return;
      if (checkWatch && checkWatch.watcher) checkWatch.watcher.close();
      checkWatch = want ? { id: want } : null;
      CI.clear(checkOutput);
      checkOutput.hidden = !want;
      if (!want) return;
      const mine = checkWatch;
      const plan = await CI.get(`/api/v1/builds/${want}/plan`).catch(() => null);
      if (!plan || mine !== checkWatch || destroyed) return;
      mine.watcher = CI.watchBuild(b, plan.plan);
      checkOutput.append(mine.watcher.view.el);
    }

    function renderPinBar(r) {
      const pinned = r.pinned_version;
      const mode = !pinned ? 'none' : r.pinned_in_config ? 'config' : 'api';
      pinBar.hidden = mode === 'none';
      pinBar.dataset.pinned = mode;
      const canOp = CI.canOperate(team);
      const key = JSON.stringify([mode, pinned || null, canOp]);
      if (key !== pinKey) {
        pinKey = key;
        CI.clear(pinBar);
        commentBox = null;
        if (mode === 'none') return;
        const version = h('span', { class: 'res-pin-version', 'data-testid': 'pinned-version' }, CI.versionText(pinned));
        if (mode === 'config') {
          pinBar.append(pinIcon(), version,
            h('span', { class: 'res-pin-note' }, 'version is pinned in the pipeline config'));
          return;
        }
        commentBox = CI.guard(h('textarea', {
          class: 'res-pin-comment', 'data-testid': 'pin-comment', rows: 2, placeholder: 'why is this version pinned?',
          'aria-label': 'pin comment', oninput: () => (commentDirty = true),
        }), canOp);
        commentBox.value = r.pin_comment || '';
        commentDirty = false;
        const box = commentBox;
        const save = CI.guard(CI.button('save', {
          class: 'res-save-comment', 'data-testid': 'save-pin-comment', onclick: async () => {
            save.disabled = true;
            const ok = await CI.act(() => CI.put(url('/pin_comment'), { pin_comment: box.value }), () => (commentDirty = false));
            save.disabled = false;
            if (ok !== undefined) CI.flash('pin comment saved', 'info');
            await refresh().catch(() => {});
          },
        }), canOp);
        pinBar.append(
          h('div', { class: 'res-pin-line' }, pinIcon(), 'pinned ', version,
            CI.guard(CI.button('unpin', { class: 'res-unpin', 'data-testid': 'unpin', onclick: action(() => CI.put(url('/unpin'))) }), canOp)),
          h('div', { class: 'res-pin-comment-row' }, commentBox, save));
      } else if (commentBox && !commentDirty && document.activeElement !== commentBox) {
        // Take someone else's edit only when the user is not typing their own.
        if (commentBox.value !== (r.pin_comment || '')) commentBox.value = r.pin_comment || '';
      }
    }

    function rowHead(v, r) {
      const canOp = CI.canOperate(team);
      const isPinned = sameVersion(r.pinned_version, v.version);
      const open = expanded.has(v.id);
      const enabled = CI.guard(h('input', {
        type: 'checkbox', class: 'res-enabled', 'data-testid': 'version-enabled', checked: v.enabled,
        title: v.enabled ? 'disable this version' : 'enable this version', 'aria-label': 'version enabled',
        onchange: action(() => CI.put(url(`/versions/${v.id}/${v.enabled ? 'disable' : 'enable'}`))),
      }), canOp);
      // The pinned version's button unpins; any other switches the pin to it.
      const pin = CI.button(isPinned ? 'pinned' : 'pin', {
        class: `res-pin${isPinned ? ' res-is-pinned' : ''}`, 'data-testid': 'pin-version', 'aria-pressed': String(isPinned),
        title: isPinned ? 'unpin this version' : 'pin this version',
        onclick: action(() => CI.put(isPinned ? url('/unpin') : url(`/versions/${v.id}/pin`))),
      });
      if (r.pinned_in_config) CI.guard(pin, false, 'the pipeline config pins this resource');
      else CI.guard(pin, canOp);
      const toggle = h('button', {
        type: 'button', class: 'res-version-toggle', 'data-testid': 'version-toggle', 'aria-expanded': String(open),
        onclick: () => toggle_(v.id),
      }, h('span', { class: 'res-caret', 'aria-hidden': 'true' }, open ? '▾' : '▸'), CI.versionText(v.version));
      return h('div', { class: 'res-version-head', onclick: (e) => {
        if (e.target === e.currentTarget) toggle_(v.id);
      } }, enabled, pin, toggle);
    }

    async function fillDetails(v, details) {
      const part = async (path, title) => {
        try {
          const builds = await CI.get(url(`/versions/${v.id}/${path}`));
          return h('div', { class: 'res-builds', 'data-testid': `version-${path.replace('_', '-')}` }, h('h3', {}, title),
            builds && builds.length ? h('ul', {}, builds.map(buildLink)) : h('p', { class: 'muted' }, 'none'));
        } catch (e) {
          if (e.status === 401) throw e;
          return h('div', { class: 'res-builds', 'data-testid': `version-${path.replace('_', '-')}` }, h('h3', {}, title),
            h('p', { class: 'muted' }, 'not available'));
        }
      };
      const [inputs, outputs] = await Promise.all([part('input_to', 'inputs to'), part('output_of', 'outputs of')]);
      if (destroyed || !expanded.has(v.id)) return;
      CI.clear(details).append(
        h('div', { class: 'res-metadata' }, h('h3', {}, 'metadata'),
          v.metadata && v.metadata.length ? CI.kvTable(v.metadata) : h('p', { class: 'muted' }, 'no metadata')),
        inputs, outputs);
    }

    function toggle_(id) {
      if (expanded.has(id)) expanded.delete(id);
      else expanded.add(id);
      const row = rows.get(id);
      if (!row) return;
      row.key = ''; // head shows the caret state
      renderRow(row.v, res);
    }

    function renderRow(v, r) {
      const key = JSON.stringify([v, sameVersion(r.pinned_version, v.version), !!r.pinned_in_config, expanded.has(v.id), CI.canOperate(team)]);
      let row = rows.get(v.id);
      if (!row) {
        const details = h('div', { class: 'res-version-details', 'data-testid': 'version-details', hidden: true });
        row = { el: h('li', { 'data-testid': 'version', dataset: { versionId: v.id } }), details, key: '' };
        rows.set(v.id, row);
      }
      row.v = v;
      row.el.className = `res-version${v.enabled ? '' : ' res-disabled'}${expanded.has(v.id) ? ' res-open' : ''}`;
      row.el.dataset.enabled = String(v.enabled);
      if (row.key !== key) {
        row.key = key;
        CI.clear(row.el).append(rowHead(v, r), row.details);
      }
      const open = expanded.has(v.id);
      if (open && row.details.hidden) CI.clear(row.details).append(h('p', { class: 'muted' }, 'loading…'));
      row.details.hidden = !open;
      if (open) fillDetails(v, row.details).catch(() => {});
      return row.el;
    }

    function renderVersions(versions, r) {
      list.removeAttribute('aria-busy');
      if (!versions.length) {
        rows.clear();
        CI.clear(list).append(h('li', { class: 'empty', 'data-testid': 'versions-empty' },
          filters.length ? 'no versions match the filter' : 'no versions yet'));
        return;
      }
      const seen = new Set(versions.map((v) => v.id));
      for (const id of [...rows.keys()]) if (!seen.has(id)) rows.delete(id);
      const els = versions.map((v) => renderRow(v, r));
      for (const node of [...list.children]) if (!els.includes(node)) node.remove();
      els.forEach((node, i) => {
        if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
      });
    }

    async function refresh() {
      const my = ++gen;
      const [r, page] = await Promise.all([
        CI.get(CI.withQuery(api, varsQ)),
        CI.getPage(CI.withQuery(`${api}/versions`, varsQ, ...filters, ...paging)),
      ]);
      // The resource may not list a check build while it runs; follow the one we started.
      let check = r.build;
      if (ownCheck && (!check || check.id < ownCheck.id)) {
        const own = await CI.get(`/api/v1/builds/${ownCheck.id}`).catch(() => null);
        if (own) check = ownCheck = own;
      } else ownCheck = null;
      if (my !== gen || destroyed) return; // a newer refresh is already under way
      res = r;
      renderHeader(r, check);
      renderPinBar(r);
      // Without from/to this is the newest page: a `previous` link can only lead back here.
      const pageLinks = Object.assign({}, page.links);
      if (atHead) delete pageLinks.previous;
      CI.clear(pager).append(...CI.pagerLinks(pageLinks, pageUrl, 'res', 'versions'));
      renderVersions(Array.isArray(page.items) ? page.items : [], r);
      // A running check finishes in seconds: look again sooner than the 5 s poll.
      clearTimeout(fastTimer);
      if (check && (check.status === 'started' || check.status === 'pending')) {
        fastTimer = setTimeout(() => refresh().catch(() => {}), 1000);
      }
    }

    const go = (rel) => CI.pagerKey(pager, rel);

    const pipelineLabel = CI.pipelineLabel(pipeline, vars);
    return {
      el,
      title: resource,
      crumbs: [[team, null], [pipelineLabel, CI.pipelineUrl(team, pipeline, vars)], [resource, null]],
      refresh,
      destroy() {
        destroyed = true;
        clearTimeout(fastTimer);
        if (checkWatch && checkWatch.watcher) checkWatch.watcher.close();
      },
      help: [['h', 'newer versions page'], ['l', 'older versions page']],
      keys: { h: go('previous'), l: go('next') },
    };
  };
})();
