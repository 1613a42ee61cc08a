// The frame around every page (web-ui.md §2): top bar with breadcrumbs and the login
// area, side bar of teams and pipelines, wall banner, turbulence banner, keyboard help.
'use strict';

CI.chrome = (function () {
  const { h } = CI;
  let topbar, crumbs, controls, userArea, sidebar, help, wall;
  let sidebarOpen = localStorage.getItem('side_bar_state') === 'expanded';

  function mount(app) {
    CI.clear(app);
    crumbs = h('nav', { class: 'crumbs', 'aria-label': 'breadcrumbs' });
    controls = h('div', { class: 'top-controls' });
    userArea = h('div', { class: 'user-area' });
    const burger = CI.button('☰', {
      class: 'burger', title: 'pipelines', 'aria-label': 'toggle side bar',
      onclick: () => {
        sidebarOpen = !sidebarOpen;
        localStorage.setItem('side_bar_state', sidebarOpen ? 'expanded' : 'collapsed');
        renderSidebar();
      },
    });
    topbar = h('header', { class: 'topbar' },
      burger, h('a', { href: '/', class: 'logo', title: 'dashboard' }, '◎'), crumbs, controls, userArea);
    wall = h('div', { class: 'wall', hidden: true, role: 'status' });
    sidebar = h('aside', { class: 'sidebar', hidden: true });
    help = h('div', { class: 'help', hidden: true, role: 'dialog', 'aria-label': 'keyboard shortcuts' });
    const hideUi = new URLSearchParams(location.search).get('hide_ui') === 'true';
    app.append(
      hideUi ? h('span') : topbar,
      wall,
      h('div', { id: 'turbulence', class: 'turbulence', hidden: true }, 'experiencing turbulence: the server is not answering, retrying…'),
      h('div', { id: 'flash', class: 'flash-box' }),
      h('div', { class: 'body' }, hideUi ? h('span') : sidebar, h('main', { id: 'main' })),
      help
    );
  }

  function update() {
    CI.clear(userArea);
    if (CI.user) {
      const name = CI.user.display_user_id || CI.user.user_name || CI.user.email || CI.user.name;
      const menu = h('div', { class: 'user-menu', hidden: true },
        h('a', { href: '#', class: 'logout', onclick: logout }, 'logout'));
      userArea.append(
        CI.button(name, { class: 'user-id', onclick: () => (menu.hidden = !menu.hidden) }),
        menu
      );
    } else {
      userArea.append(h('a', { class: 'login', href: CI.loginUrl() }, 'login'));
    }
  }

  async function logout(e) {
    e.preventDefault();
    try {
      await CI.get('/sky/logout', { allow401: true });
    } catch (_) {}
    for (const k of ['csrf_token', 'jobs', 'pipelines', 'teams']) localStorage.removeItem(k);
    CI.user = null;
    update();
    CI.navigate('/');
  }

  let pipelinesCache = [];
  let currentParams = {};
  async function renderSidebar() {
    sidebar.hidden = !sidebarOpen;
    if (!sidebarOpen) return;
    try {
      pipelinesCache = await CI.get('/api/v1/pipelines');
    } catch (_) {}
    const favs = new Set(JSON.parse(localStorage.getItem('favorited_pipelines') || '[]'));
    const byTeam = new Map();
    for (const p of pipelinesCache) {
      if (!byTeam.has(p.team_name)) byTeam.set(p.team_name, []);
      byTeam.get(p.team_name).push(p);
    }
    const link = (p) =>
      h('a', {
        href: CI.pipelineUrl(p.team_name, p.name, p.instance_vars),
        class: p.team_name === currentParams.team && p.name === currentParams.pipeline ? 'current' : '',
      }, p.name, p.instance_vars ? h('span', { class: 'vars' }, ' ' + CI.versionText(p.instance_vars)) : '');
    CI.clear(sidebar);
    const favourites = pipelinesCache.filter((p) => favs.has(p.id));
    if (favourites.length) {
      sidebar.append(h('h3', {}, 'favorite pipelines'), h('ul', {}, favourites.map((p) => h('li', {}, link(p)))));
    }
    for (const [team, ps] of byTeam) {
      sidebar.append(h('details', { open: team === currentParams.team || byTeam.size < 4 },
        h('summary', {}, team), h('ul', {}, ps.map((p) => h('li', {}, link(p))))));
    }
  }

  // Breadcrumbs and page controls come from the page: `crumbs: [[text, href], …]`.
  function setPage(page, params) {
    currentParams = params || {};
    CI.clear(crumbs);
    (page.crumbs || []).forEach(([text, href, cls], i) => {
      if (i) crumbs.append(h('span', { class: 'sep' }, '›'));
      crumbs.append(href ? h('a', { href, class: cls || '' }, text) : h('span', { class: cls || '' }, text));
    });
    CI.clear(controls);
    if (page.controls) CI.append(controls, [page.controls]);
    topbar.classList.toggle('paused', !!page.pausedBar);
    renderSidebar();
    renderHelp(page);
  }

  function renderHelp(page) {
    CI.clear(help);
    const rows = [['/', 'search'], ['?', 'show or hide this help'], ['Esc', 'close']].concat(page.help || []);
    help.append(
      h('h2', {}, 'keyboard shortcuts'),
      h('table', {}, rows.map(([k, what]) => h('tr', {}, h('td', {}, h('kbd', {}, k)), h('td', {}, what)))),
      CI.button('close', { onclick: () => toggleHelp(false) })
    );
  }

  function toggleHelp(show) {
    help.hidden = show === undefined ? !help.hidden : !show;
  }

  // The wall message (GET /api/v1/wall): kept whitespace, URLs made links, not dismissible.
  async function pollWall() {
    let msg = '';
    try {
      msg = (await CI.get('/api/v1/wall', { allow401: true })).message || '';
    } catch (_) {
      return;
    }
    wall.hidden = !msg;
    CI.clear(wall);
    for (const part of msg.split(/(https?:\/\/[^\s]+)/)) {
      wall.append(/^https?:\/\//.test(part) ? h('a', { href: part, target: '_blank', rel: 'noopener' }, part) : part);
    }
  }

  return { mount, update, setPage, toggleHelp, pollWall };
})();
