// The dashboard (web-ui.md §4): team sections of pipeline cards, coloured by the status the
// server computes (`GET /api/v1/dashboard`), searchable with upstream's filter terms.
'use strict';

(function () {
  const { h } = CI;

  // Splits a search into terms, keeping "quoted phrases" whole: `team:"a b" -foo`.
  CI.searchTerms = function (text) {
    const terms = [];
    const re = /(-?)(?:(\w+):)?(?:"([^"]*)"?|(\S+))/g;
    let m;
    while ((m = re.exec(text || ''))) {
      if (!m[0].trim()) continue;
      const quoted = m[3] !== undefined;
      terms.push({ negate: m[1] === '-', field: m[2] || '', value: (quoted ? m[3] : m[4] || '').toLowerCase(), exact: quoted });
    }
    return terms;
  };

  // Fuzzy: the term's characters appear in order in the name.
  CI.fuzzy = function (term, name) {
    name = name.toLowerCase();
    let i = 0;
    for (const c of name) if (c === term[i]) i++;
    return i === term.length;
  };

  const textMatch = (t, name) => (t.exact ? name.toLowerCase() === t.value : CI.fuzzy(t.value, name));

  function matches(p, terms) {
    return terms.every((t) => {
      let ok;
      if (t.field === 'team') ok = textMatch(t, p.team_name);
      else if (t.field === 'status') ok = t.value === 'running' ? p.running : p.status === t.value;
      else if (t.field === 'group') ok = p.name.toLowerCase() === t.value || (!t.exact && CI.fuzzy(t.value, p.name));
      else ok = textMatch(t, p.name);
      return t.negate ? !ok : ok;
    });
  }

  const favourites = () => new Set(JSON.parse(localStorage.getItem('favorited_pipelines') || '[]'));
  function toggleFavourite(id) {
    const favs = favourites();
    if (favs.has(id)) favs.delete(id);
    else favs.add(id);
    localStorage.setItem('favorited_pipelines', JSON.stringify([...favs]));
  }

  function statusText(p) {
    if (p.status === 'paused' || p.status === 'archived') return p.status;
    if (p.running) return 'running';
    if (p.status === 'pending') return 'pending';
    return p.transition_time ? CI.ago(p.transition_time) : p.status;
  }

  // Jobs in columns by `passed` depth; each box links to the job's latest build.
  function preview(p) {
    const columns = [];
    for (const j of p.jobs) (columns[j.depth] = columns[j.depth] || []).push(j);
    return h('div', { class: 'db-preview' }, columns.filter(Boolean).map((col) =>
      h('div', { class: 'db-col' }, col.map((j) => {
        const href = j.build
          ? CI.withQuery(`${CI.pipelinePath(p.team_name, p.name)}/jobs/${CI.enc(j.name)}/builds/${CI.enc(j.build.name)}`, CI.varsQuery(p.instance_vars))
          : CI.jobUrl(p.team_name, p.name, j.name, p.instance_vars);
        return h('a', {
          href, title: `${j.name}: ${j.next_status || j.status}`, 'data-testid': 'preview-job',
          class: `db-job bg-${j.status}${j.next_status ? ' running-stripes' : ''}`,
        });
      }))));
  }

  function card(p, hd, favs, refresh) {
    const url = CI.pipelineUrl(p.team_name, p.name, p.instance_vars);
    const text = statusText(p);
    const banner = p.running ? 'started' : p.status;
    const triangle = p.resource_error ? h('span', { class: 'db-resource-error', title: 'a resource check is failing' }, '▲') : null;
    const attrs = {
      class: `db-card${p.archived ? ' archived' : ''}`, 'data-testid': 'pipeline-card',
      'data-name': p.name, 'data-team': p.team_name, 'data-status': p.status,
    };
    if (hd) {
      return h('a', Object.assign({}, attrs, { href: url, class: `db-card hd bg-${banner}${p.running ? ' running-stripes' : ''}` }),
        h('span', { class: 'db-name' }, p.name), triangle);
    }
    const operate = CI.canOperate(p.team_name);
    const manage = CI.canManage(p.team_name);
    const pause = CI.guard(CI.button(p.paused ? '▶' : '❚❚', {
      class: 'db-pause', 'data-testid': 'pause-toggle', title: p.paused ? 'unpause pipeline' : 'pause pipeline',
      onclick: () => CI.act(() => CI.put(CI.withQuery(`${CI.apiPipeline(p.team_name, p.name)}/${p.paused ? 'unpause' : 'pause'}`, CI.varsQuery(p.instance_vars))), refresh),
    }), operate && !p.archived);
    const eye = CI.guard(CI.button(CI.icon(p.public ? 'eye' : 'eye-off'), {
      class: 'db-visibility', 'data-testid': 'visibility-toggle', title: p.public ? 'hide pipeline (visible to everyone now)' : 'expose pipeline (visible to its team only now)',
      onclick: () => CI.act(() => CI.put(CI.withQuery(`${CI.apiPipeline(p.team_name, p.name)}/${p.public ? 'hide' : 'expose'}`, CI.varsQuery(p.instance_vars))), refresh),
    }), manage);
    const fav = CI.button(favs.has(p.id) ? '★' : '☆', {
      class: 'db-fav', 'data-testid': 'favorite', title: 'favorite',
      onclick: () => { toggleFavourite(p.id); refresh(); },
    });
    const vars = p.instance_vars
      ? h('div', { class: 'db-vars' }, Object.entries(p.instance_vars).map(([k, v]) => h('div', {}, `${k}: ${JSON.stringify(v)}`)))
      : null;
    return h('div', attrs,
      h('div', { class: `db-banner bg-${banner}${p.running ? ' running-stripes' : ''}` }),
      h('a', { class: 'db-header', href: url }, h('span', { class: 'db-name', title: p.name }, p.name), vars),
      p.jobs.length ? preview(p) : h('div', { class: 'db-preview empty muted' }, 'no jobs'),
      h('div', { class: 'db-footer' },
        h('span', { class: `db-status status-${p.running ? 'running' : p.status}`, 'data-testid': 'card-status' },
          CI.STATUS_ICON[p.running ? 'running' : p.status] || '○', ' ',
          p.transition_time && !p.running && !['paused', 'pending', 'archived'].includes(p.status)
            ? h('span', { 'data-since': p.transition_time }, text)
            : text),
        triangle, h('span', { class: 'db-spacer' }), pause, eye, fav));
  }

  function firstRun() {
    const url = location.origin;
    return h('div', { class: 'db-card db-first-run', 'data-testid': 'first-run' },
      h('h2', {}, 'welcome to concourse!'),
      h('p', {}, 'no pipeline set yet. to get started, install fly and set one:'),
      h('pre', {}, `fly -t tutorial login -c ${url}\nfly -t tutorial set-pipeline -p hello -c hello.yml\nfly -t tutorial unpause-pipeline -p hello`),
      h('p', {}, h('a', { href: '/download-fly' }, 'download the fly CLI'),
        CI.user ? '' : [' · ', h('a', { href: CI.loginUrl() }, 'login here')]));
  }

  const ROLE_TAGS = { owner: 'OWNER', member: 'MEMBER', 'pipeline-operator': 'PIPELINE_OPERATOR', viewer: 'VIEWER' };

  CI.pages.dashboard = function (params, query) {
    const searchBox = h('input', {
      type: 'search', 'data-search': true, 'data-testid': 'search', placeholder: 'filter: team:, status:, "exact", -negate',
      value: query.get('search') || '', 'aria-label': 'search pipelines',
    });
    const content = h('div', { class: 'db-teams' });
    let hd = localStorage.getItem('high_density') === 'true';
    let data = JSON.parse(localStorage.getItem('pipelines') || 'null');
    let teams = [];
    const hdToggle = CI.button('', { 'data-testid': 'hd-toggle', onclick: () => {
      hd = !hd;
      localStorage.setItem('high_density', String(hd));
      draw();
    } });
    const cbToggle = CI.button('colour-blind palette', { onclick: () => {
      const on = !document.documentElement.classList.contains('cb');
      document.documentElement.classList.toggle('cb', on);
      localStorage.setItem('palette', on ? 'cb' : '');
    } });
    const el = h('div', { class: 'dashboard' },
      h('div', { class: 'db-toolbar' }, searchBox),
      content,
      h('footer', { class: 'legend' },
        ['succeeded', 'failed', 'errored', 'aborted', 'paused', 'pending', 'running'].map((s) => CI.statusBadge(s, s)),
        h('span', { class: 'db-spacer' }), hdToggle, cbToggle,
        h('a', { href: '/download-fly' }, 'download fly CLI'),
        h('a', { href: 'https://concourse-ci.org/docs.html', target: '_blank', rel: 'noopener' }, 'docs'),
        h('span', { 'data-testid': 'version' }, `version: v${CI.info.version || ''}`)));

    let searchTimer;
    searchBox.addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => {
        const url = new URL(location.href);
        if (searchBox.value) url.searchParams.set('search', searchBox.value);
        else url.searchParams.delete('search');
        history.replaceState({}, '', url.pathname + url.search);
        draw();
      }, 150);
    });

    function draw() {
      hdToggle.textContent = hd ? 'normal view' : 'high-density view';
      if (!data) return;
      const showAll = new URLSearchParams(location.search).get('view') === 'all';
      const favs = favourites();
      const terms = CI.searchTerms(searchBox.value);
      const groupTerm = terms.find((t) => t.field === 'group');
      let visible = data.pipelines.filter((p) => (showAll || !p.archived || favs.has(p.id)) && matches(p, terms));
      CI.clear(content);
      if (!data.pipelines.length) {
        content.append(firstRun());
        return;
      }
      const section = (title, tags, pipelines, team) => {
        // Instance groups: pipelines sharing a name with instance vars show as one card
        // unless the search already narrows to the group.
        const cards = [];
        const groups = new Map();
        for (const p of pipelines) {
          if (p.instance_vars && !groupTerm) {
            const key = p.team_name + '/' + p.name;
            if (!groups.has(key)) {
              groups.set(key, []);
              cards.push(key);
            }
            groups.get(key).push(p);
          } else cards.push(p);
        }
        return h('section', { class: 'db-team', 'data-testid': 'team-section', 'data-team': team || '' },
          h('h2', {}, title, tags.map((t) => h('span', { class: 'db-role' }, t))),
          cards.length
            ? h('div', { class: `db-cards${hd ? ' hd' : ''}` }, cards.map((c) => typeof c === 'string'
              ? groupCard(groups.get(c))
              : card(c, hd, favs, refresh)))
            : h('div', { class: 'muted db-none' }, 'no pipelines set'));
      };
      const favList = visible.filter((p) => favs.has(p.id));
      if (favList.length) content.append(section('favorite pipelines', [], favList));
      const names = new Set(teams.map((t) => t.name));
      for (const p of data.pipelines) names.add(p.team_name);
      const filteringTeams = terms.some((t) => t.field === 'team' || !t.field || t.field === 'status');
      for (const team of names) {
        const mine = visible.filter((p) => p.team_name === team);
        if (!mine.length && (filteringTeams && terms.length)) continue;
        const roles = ((CI.user && CI.user.teams) || {})[team] || [];
        content.append(section(team, roles.map((r) => ROLE_TAGS[r] || r), mine, team));
      }
      if (!content.childElementCount) content.append(h('div', { class: 'empty' }, `no results for "${searchBox.value}" matched your search`));
    }

    function groupCard(instances) {
      const first = instances[0];
      const search = `team:"${first.team_name}" group:"${first.name}"`;
      return h('a', {
        class: 'db-card db-group', 'data-testid': 'instance-group', href: '/?search=' + CI.enc(search),
      }, h('div', { class: 'db-banner bg-pending' }),
      h('div', { class: 'db-header' }, h('span', { class: 'db-name' }, first.name)),
      h('div', { class: 'db-preview db-instances' }, instances.map((p) =>
        h('span', { class: `db-job bg-${p.running ? 'started' : p.status}`, title: CI.versionText(p.instance_vars) }))),
      h('div', { class: 'db-footer muted' }, `${instances.length} instances`));
    }

    async function refresh() {
      const [dash, teamList] = await Promise.all([CI.get('/api/v1/dashboard'), CI.get('/api/v1/teams').catch(() => [])]);
      data = dash;
      teams = teamList;
      const first = !performance.getEntriesByName('dashboard-drawn').length;
      try {
        localStorage.setItem('pipelines', JSON.stringify(dash));
      } catch (_) {
        localStorage.removeItem('pipelines'); // over quota: paint from the server next time
      }
      draw();
      if (first) performance.mark('dashboard-drawn'); // read by benches/ui.rs
    }

    draw();
    const clusterName = CI.meta('cluster-name');
    return {
      el, title: clusterName || 'Dashboard', refresh,
      crumbs: clusterName ? [[clusterName, null, 'cluster-name']] : [],
    };
  };

  if (localStorage.getItem('palette') === 'cb') document.documentElement.classList.add('cb');
})();
