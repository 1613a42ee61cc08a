// The router: upstream's URLs (web-ui.md §3) to pages, client-side navigation, the 5 s
// refresh and 1 s clock, and global keys.
'use strict';

(function () {
  const { h } = CI;
  const seg = '([^/]+)';
  const ROUTES = [
    [/^\/$/, 'dashboard', []],
    [new RegExp(`^/teams/${seg}/pipelines/${seg}/?$`), 'pipeline', ['team', 'pipeline']],
    [new RegExp(`^/teams/${seg}/pipelines/${seg}/jobs/${seg}/?$`), 'job', ['team', 'pipeline', 'job']],
    [new RegExp(`^/teams/${seg}/pipelines/${seg}/jobs/${seg}/builds/${seg}/?$`), 'build', ['team', 'pipeline', 'job', 'build']],
    [new RegExp(`^/teams/${seg}/pipelines/${seg}/resources/${seg}/?$`), 'resource', ['team', 'pipeline', 'resource']],
    [new RegExp(`^/builds/(\\d+)/?$`), 'build', ['id']],
    [/^\/fly_success\/?$/, 'flySuccess', []],
    [/^\/download-fly\/?$/, 'downloadFly', []],
  ];

  function match(pathname) {
    for (const [re, page, names] of ROUTES) {
      const m = pathname.match(re);
      if (m) {
        const params = {};
        names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1])));
        return { page, params };
      }
    }
    return { page: 'notFound', params: {} };
  }

  let current = null;
  let pollTimer = null;
  let pending = '';

  // `?hide_ui=true` (embedding) is kept on every navigation.
  function keepHideUi(url) {
    const here = new URLSearchParams(location.search);
    if (here.get('hide_ui') !== 'true') return url;
    const u = new URL(url, location.origin);
    u.searchParams.set('hide_ui', 'true');
    return u.pathname + u.search + u.hash;
  }

  CI.navigate = function (url, replace) {
    url = keepHideUi(url);
    if (replace) history.replaceState({}, '', url);
    else history.pushState({}, '', url);
    render();
  };

  // Reloads the current page's data now (after an action changed it).
  CI.refresh = () => current && current.refresh && current.refresh();

  function render() {
    if (current && current.destroy) current.destroy();
    clearInterval(pollTimer);
    const { page, params } = match(location.pathname);
    const query = new URLSearchParams(location.search);
    const build = CI.pages[page] || CI.pages.notFound;
    const main = document.getElementById('main');
    CI.clear(main);
    CI.setFavicon(null);
    current = build(params, query) || {};
    if (current.el) main.append(current.el);
    CI.chrome.setPage(current, params);
    document.title = (current.title ? current.title + ' - ' : '') + 'Concourse';
    const tick = async () => {
      const mine = current;
      if (!mine.refresh || pending === 'busy') return;
      pending = 'busy';
      try {
        await mine.refresh();
      } catch (e) {
        if (e.status === 404 && mine === current && !mine.loaded) showNotFound();
        else if (e.status && e.status !== 401) console.warn(e);
      } finally {
        pending = '';
      }
      if (mine === current) mine.loaded = true;
    };
    tick();
    if (current.refresh && current.poll !== 0) pollTimer = setInterval(tick, current.poll || 5000);
    window.scrollTo(0, 0);
  }

  // A page whose main resource is missing renders the not-found page in place.
  function showNotFound() {
    if (current && current.destroy) current.destroy();
    clearInterval(pollTimer);
    current = CI.pages.notFound({}, new URLSearchParams());
    CI.clear(document.getElementById('main')).append(current.el);
    CI.chrome.setPage(current, {});
  }
  CI.notFound = showNotFound;

  // Same-origin links navigate without reloading (modifier clicks open tabs as usual).
  document.addEventListener('click', (e) => {
    const a = e.target.closest('a');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (a.target || a.hasAttribute('download') || a.origin !== location.origin) return;
    const path = a.pathname;
    if (/^\/(api|sky|public|auth)\//.test(path) || path === '/login' || path === '/logout') return;
    e.preventDefault();
    if (path === location.pathname && a.search === location.search && a.hash) {
      history.pushState({}, '', a.hash);
      window.dispatchEvent(new HashChangeEvent('hashchange'));
      return;
    }
    CI.navigate(path + a.search + a.hash);
  });
  window.addEventListener('popstate', render);

  // Keys: pages register theirs; `/` and `?` are global. `gg` is a two-key sequence.
  let lastKey = '';
  let lastKeyAt = 0;
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable)) {
      if (e.key === 'Escape') t.blur();
      return;
    }
    let key = e.key;
    const now = Date.now();
    if (key === 'g' && lastKey === 'g' && now - lastKeyAt < 800) key = 'gg';
    lastKey = e.key;
    lastKeyAt = now;
    const keys = (current && current.keys) || {};
    if (keys[key]) {
      e.preventDefault();
      keys[key](e);
    } else if (key === '?') {
      CI.chrome.toggleHelp();
    } else if (key === 'Escape') {
      CI.chrome.toggleHelp(false);
    } else if (key === '/') {
      const search = document.querySelector('[data-search]');
      if (search) {
        e.preventDefault();
        search.focus();
      }
    }
  });

  async function start() {
    const app = document.getElementById('app');
    CI.chrome.mount(app);
    await Promise.all([
      CI.loadUser(),
      CI.get('/api/v1/info').then((i) => (CI.info = i), () => {}),
    ]);
    CI.chrome.update();
    render();
    setInterval(() => CI.tickTimes(), 1000);
    setInterval(() => CI.chrome.pollWall(), 5000);
    CI.chrome.pollWall();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
  void h;
})();
