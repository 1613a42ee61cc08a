// Small pages: fly's browser login hand-off, the fly download page, not found (web-ui.md §9).
'use strict';

(function () {
  const { h } = CI;

  // `/fly_success?fly_port=N`: sends the token (from the `auth-token` meta tag) to fly's
  // listener on 127.0.0.1:N; when that fails, offers it to copy and paste into fly.
  CI.pages.flySuccess = function (params, query) {
    const token = CI.meta('auth-token');
    const port = query.get('fly_port');
    const status = h('p', { 'data-testid': 'fly-status' }, 'sending token to fly...');
    const copy = h('div', { hidden: true, 'data-testid': 'fly-copy' },
      h('p', {}, 'copy the token below and paste it into fly:'),
      h('pre', { 'data-testid': 'fly-token' }, token),
      CI.button('copy token to clipboard', {
        onclick: () => navigator.clipboard.writeText(token).then(() => CI.flash('token copied', 'info'), () => {}),
      }));
    const el = h('div', { class: 'box' }, h('h2', {}, 'login successful!'), status, copy);
    const failed = (why) => {
      status.textContent = why;
      copy.hidden = !token;
    };
    if (query.get('noop') === 'true') {
      status.textContent = 'return to fly OR go back to the Concourse dashboard';
    } else if (!port || !/^\d+$/.test(port)) {
      failed('could not find a valid fly port to send the token to.');
    } else if (!token) {
      failed('no token to send: log in first.');
    } else {
      fetch(`http://127.0.0.1:${port}/?token=${encodeURIComponent(token)}`, { mode: 'no-cors' })
        .then(() => {
          status.textContent = 'your token has been transferred to fly. you may now close this window.';
        })
        .catch(() => failed('your token could not be sent to fly (blocked by browser?).'));
    }
    return { el, title: 'fly login' };
  };

  const PLATFORMS = [
    ['linux', 'amd64', 'Linux (amd64)'],
    ['linux', 'arm64', 'Linux (arm64)'],
    ['darwin', 'amd64', 'macOS (amd64)'],
    ['darwin', 'arm64', 'macOS (arm64)'],
    ['windows', 'amd64', 'Windows (amd64)'],
  ];

  CI.pages.downloadFly = function () {
    const base = (CI.info.external_url || location.origin).replace(/\/$/, '');
    const steps = h('pre', { 'data-testid': 'fly-install' });
    const show = (platform, arch) => {
      const url = `${base}/api/v1/cli?arch=${arch}&platform=${platform}`;
      steps.textContent = platform === 'windows'
        ? `Invoke-WebRequest "${url}" -OutFile fly.exe\n.\\fly.exe -t main login -c ${base}`
        : `curl -fLo fly "${url}"\nchmod +x fly && sudo mv fly /usr/local/bin/\nfly -t main login -c ${base}`;
    };
    const el = h('div', { class: 'box' },
      h('h2', {}, 'download the fly CLI'),
      h('p', {}, PLATFORMS.map(([platform, arch, label]) =>
        h('span', {}, h('a', { href: `/api/v1/cli?arch=${arch}&platform=${platform}`, download: '', onmouseover: () => show(platform, arch), onfocus: () => show(platform, arch) }, label), ' '))),
      steps);
    show('linux', 'amd64');
    return { el, title: 'download fly' };
  };

  CI.pages.notFound = function () {
    const el = h('div', { class: 'not-found', 'data-testid': 'not-found' },
      h('h1', {}, '404'), h('p', {}, 'this page was not found'), h('a', { href: '/' }, 'back to the dashboard'));
    return { el, title: 'not found' };
  };
})();
