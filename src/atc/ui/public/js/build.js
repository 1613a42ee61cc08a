// The build page (web-ui.md §7): header with times and actions, the job's build history,
// and the step tree from the public plan, filled live from the event stream. Logs arrive
// already rendered by the server (`events?render=lines`); `CI.LogView` draws only the
// lines on screen, so a 100,000-line log costs a screenful of DOM.
'use strict';

(function () {
  const { h } = CI;
  const LINE_HEIGHT = 18;

  // One step's log: rows of [time, spans], drawn in a fixed-height box where only the
  // visible rows (plus a margin) exist in the DOM.
  class LogView {
    constructor(stepId) {
      this.stepId = stepId;
      this.rows = [];
      this.highlight = null; // [from, to] line numbers (1-based)
      this.match = -1;
      this.el = h('div', { class: 'log', 'data-testid': 'step-log' });
      this.drawn = new Map();
    }
    set(index, time, spans) {
      for (let i = this.rows.length; i < index; i++) this.rows[i] = [time, []];
      const old = this.rows[index];
      this.rows[index] = [old ? old[0] : time, spans];
      const row = this.drawn.get(index);
      if (row) {
        row.remove();
        this.drawn.delete(index);
      }
    }
    text(i) {
      return (this.rows[i] ? this.rows[i][1] : []).map((s) => s.text).join('');
    }
    // Rows shown: the empty line a final newline opens is not part of the output.
    count() {
      const n = this.rows.length;
      return n && this.rows[n - 1][1].length === 0 ? n - 1 : n;
    }
    // Renders rows intersecting the viewport; called on scroll, resize and new lines.
    draw() {
      const n = this.count();
      this.el.style.height = n * LINE_HEIGHT + 'px';
      if (!this.el.isConnected || this.el.offsetParent === null) return;
      const rect = this.el.getBoundingClientRect();
      const top = Math.max(0, -rect.top);
      const bottom = Math.min(n * LINE_HEIGHT, window.innerHeight - rect.top);
      const first = Math.max(0, Math.floor(top / LINE_HEIGHT) - 30);
      const last = Math.min(n - 1, Math.ceil(bottom / LINE_HEIGHT) + 30);
      for (const [i, row] of this.drawn) {
        if (i < first || i > last) {
          row.remove();
          this.drawn.delete(i);
        }
      }
      for (let i = first; i <= last; i++) {
        if (this.drawn.has(i)) continue;
        const row = this.row(i);
        this.drawn.set(i, row);
        this.el.append(row);
      }
    }
    row(i) {
      const [time, spans] = this.rows[i] || [0, []];
      const line = i + 1;
      const hl = this.highlight && line >= this.highlight[0] && line <= this.highlight[1];
      const row = h('div', {
        class: `log-line${hl ? ' highlighted' : ''}${this.match === i ? ' search-hit' : ''}`,
        style: { top: i * LINE_HEIGHT + 'px' }, 'data-line': line,
      }, h('a', {
        class: 'log-time', href: `#L${this.stepId}:${line}`, title: `line ${line}`,
        onclick: (e) => this.select(e, line),
      }, time ? CI.clock(time) : ''));
      const text = h('span', { class: 'log-text' });
      for (const s of spans) {
        const span = h('span', { class: s.class || undefined }, s.text);
        if (s.fg) span.style.color = s.fg;
        if (s.bg) span.style.backgroundColor = s.bg;
        text.append(span);
      }
      row.append(text);
      return row;
    }
    // Click highlights one line; shift-click extends to a range (`#Lstep:from:to`).
    select(e, line) {
      e.preventDefault();
      let from = line, to = line;
      if (e.shiftKey && this.highlight) {
        from = Math.min(this.highlight[0], line);
        to = Math.max(this.highlight[0], line);
      }
      history.replaceState(history.state, '', `#L${this.stepId}:${from}${to !== from ? ':' + to : ''}`);
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    }
    redraw() {
      for (const row of this.drawn.values()) row.remove();
      this.drawn.clear();
      this.draw();
    }
    scrollTo(i) {
      const rect = this.el.getBoundingClientRect();
      window.scrollTo(0, window.scrollY + rect.top + i * LINE_HEIGHT - window.innerHeight / 3);
    }
  }
  CI.LogView = LogView;

  const KIND_ICON = {
    get: '↓', put: '↑', task: '▶', check: '✓?', set_pipeline: '⟳', load_var: '≔', run: '▶', across: '⋯',
    artifact_input: '↓', artifact_output: '↑',
  };
  const STATE_ICON = {
    pending: '◌', running: '◐', succeeded: '✓', failed: '✗', errored: '!', interrupted: '■', cancelled: '■',
  };

  CI.BuildView = class BuildView {
    constructor(build) {
      this.build = build;
      this.steps = new Map(); // plan id → step
      this.order = [];
      this.buildErrors = h('div', { class: 'build-errors' });
      this.tree = h('div', { class: 'steps', 'data-testid': 'steps' });
      this.el = h('div', { class: 'build-body' }, this.buildErrors, this.tree);
      this.showImages = false;
      this.follow = true;
      this.startTime = 0;
      this.live = build.status === 'pending' || build.status === 'started';
    }

    // Builds the tree from the public plan: containers become nesting, leaves headers.
    setPlan(plan) {
      CI.clear(this.tree);
      this.steps.clear();
      this.order = [];
      this.tree.append(this.node(plan, false));
    }

    node(plan, hidden) {
      if (!plan) return null;
      if (plan.do) return h('div', { class: 'seq' }, plan.do.map((p) => this.node(p, hidden)));
      if (plan.in_parallel) return h('div', { class: 'parallel' }, plan.in_parallel.steps.map((p) => this.node(p, hidden)));
      for (const hook of ['on_success', 'on_failure', 'on_error', 'on_abort', 'ensure']) {
        if (plan[hook]) {
          return h('div', { class: 'seq' }, this.node(plan[hook].step, hidden),
            h('div', { class: `hook hook-${hook}` }, h('div', { class: 'hook-label' }, hook.replace('_', ' ')), this.node(plan[hook][hook], hidden)));
        }
      }
      if (plan.try) return h('div', { class: 'try' }, this.node(plan.try.step, hidden));
      if (plan.timeout) return this.node(plan.timeout.step, hidden);
      if (plan.retry) return this.retry(plan);
      const kind = Object.keys(plan).find((k) => k !== 'id');
      const body = plan[kind] || {};
      return this.leaf(plan.id, kind, body, hidden).el;
    }

    retry(plan) {
      const tabs = h('div', { class: 'attempt-tabs' });
      const box = h('div', { class: 'attempts' }, tabs);
      const panes = plan.retry.map((p, i) => {
        const pane = h('div', { class: 'attempt', hidden: i !== 0, 'data-attempt': i + 1 }, this.node(p, false));
        const tab = CI.button(String(i + 1), { class: 'attempt-tab', 'data-testid': 'attempt-tab', onclick: () => show(i) });
        tabs.append(tab);
        box.append(pane);
        return { pane, tab, ids: this.idsUnder(p) };
      });
      const show = (i) => panes.forEach((p, j) => {
        p.pane.hidden = i !== j;
        p.tab.classList.toggle('current', i === j);
      });
      show(0);
      // The latest attempt that started is shown.
      for (const [i, p] of panes.entries()) for (const id of p.ids) if (this.steps.get(id)) this.steps.get(id).onStart = () => show(i);
      return box;
    }

    idsUnder(plan) {
      const ids = [];
      const walk = (v) => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === 'object') {
          if (typeof v.id === 'string') ids.push(v.id);
          Object.values(v).forEach(walk);
        }
      };
      walk(plan);
      return ids;
    }

    leaf(id, kind, body, hidden) {
      const name = body.name || body.message || kind;
      const stateIcon = h('span', { class: 'step-state', 'data-testid': 'step-state' }, STATE_ICON.pending);
      const version = h('span', { class: 'step-version' });
      const timing = h('span', { class: 'step-timing' });
      const changed = h('span', { class: 'step-changed', hidden: true }, 'changed');
      const imageToggle = h('button', { type: 'button', class: 'image-toggle', hidden: true, title: 'show image fetching', onclick: (e) => {
        e.stopPropagation();
        step.images.hidden = !step.images.hidden;
      } }, '⚙');
      const header = h('div', { class: 'step-header', 'data-testid': 'step-header', role: 'button', tabindex: 0 },
        h('span', { class: 'step-kind' }, KIND_ICON[kind] || '•', ' ', kind.replace('_', ' ')),
        h('span', { class: 'step-name' }, name), version, changed, h('span', { class: 'spacer' }), imageToggle, timing, stateIcon);
      const log = new LogView(id);
      const step = {
        id, kind, name, state: 'pending', header, stateIcon, version, timing, changed, log, imageToggle, manual: false,
        notes: h('div', { class: 'step-notes' }), errors: h('div', { class: 'step-errors' }),
        metadata: h('div', { class: 'step-metadata' }), images: h('div', { class: 'step-images', hidden: true }),
        substeps: h('div', { class: 'substeps' }), start: 0, end: 0,
      };
      step.body = h('div', { class: 'step-body', hidden: true }, step.images, step.metadata, step.notes, log.el, step.errors, step.substeps);
      step.el = h('div', { class: `step kind-${kind}`, 'data-step-id': id, 'data-testid': 'step', 'data-name': name, hidden }, header, step.body);
      const toggle = () => {
        step.manual = true;
        this.expand(step, step.body.hidden);
      };
      header.addEventListener('click', toggle);
      header.addEventListener('keydown', (e) => (e.key === 'Enter' || e.key === ' ') && (e.preventDefault(), toggle()));
      if (body.version) version.textContent = CI.versionText(body.version);
      this.steps.set(id, step);
      this.order.push(step);
      return step;
    }

    expand(step, open) {
      step.body.hidden = !open;
      step.el.classList.toggle('expanded', open);
      if (open) step.log.draw();
    }
    expandAll(open) {
      for (const s of this.steps.values()) {
        s.manual = true;
        this.expand(s, open);
      }
    }

    setState(step, state, time) {
      if (['succeeded', 'failed', 'errored', 'interrupted'].includes(step.state) && state === 'running') return;
      step.state = state;
      step.el.dataset.state = state;
      step.stateIcon.textContent = STATE_ICON[state];
      step.stateIcon.title = state;
      step.el.classList.remove('running', 'succeeded', 'failed', 'errored', 'interrupted');
      step.el.classList.add(state);
      if (state === 'running') {
        if (!step.start) step.start = time || CI.now();
        if (step.onStart) step.onStart();
        if (!step.manual) this.expand(step, true);
      } else if (state !== 'pending') {
        step.end = time || CI.now();
        // Expanded while running and on failure. Replaying a finished build, green steps
        // stay folded; watched live, a step the user saw running stays open.
        if (!step.manual) this.expand(step, state !== 'succeeded' || (this.live && !step.body.hidden));
      }
      this.timing(step);
    }

    timing(step) {
      if (!step.start) return;
      step.timing.textContent = step.end ? CI.duration(step.end - step.start) : '';
      step.timing.title = `started ${CI.fmtTime(step.start)}${step.end ? `, finished ${CI.fmtTime(step.end)}` : ''}`;
      if (!step.end) step.timing.dataset.from = step.start;
      else delete step.timing.dataset.from;
    }

    // A step created by an event (image fetching, across substeps) under `parent`.
    subPlan(parentId, plan, into, label) {
      const parent = this.steps.get(parentId);
      if (!parent || !plan || this.steps.has(plan.id)) return;
      const wrap = h('div', { class: 'substep' }, label ? h('div', { class: 'substep-label' }, label) : null, this.node(plan, false));
      (into === 'images' ? parent.images : parent.substeps).append(wrap);
      if (into === 'images') parent.imageToggle.hidden = false;
      this.expand(parent, !parent.body.hidden);
    }

    note(step, text) {
      step.notes.append(h('div', { class: 'step-note' }, text));
    }

    // One envelope from the event stream (build-events.md §4).
    event(env) {
      const d = env.data || {};
      const origin = d.origin && d.origin.id;
      const step = origin ? this.steps.get(origin) : null;
      switch (env.event) {
        case 'status':
          if (d.status === 'started') this.startTime = d.time;
          if (this.onStatus) this.onStatus(d.status, d.time);
          return;
        case 'error':
          if (step) {
            step.errors.append(h('div', { class: 'error-line' }, d.message));
            this.setState(step, d.message === 'interrupted' ? 'interrupted' : 'errored', d.time);
          } else this.buildErrors.append(h('div', { class: 'error-line' }, d.message));
          return;
        case 'image-check':
        case 'image-get':
          this.subPlan(origin, d.plan, 'images');
          return;
        case 'across-substeps':
          (d.substeps || []).forEach((s) => this.subPlan(origin, s.step, 'substeps', (s.values || []).map(String).join(', ')));
          return;
      }
      if (!step) return;
      switch (env.event) {
        case 'initialize-task': case 'initialize-get': case 'initialize-put': case 'initialize-check': case 'initialize':
        case 'start-task': case 'start-get': case 'start-put': case 'start':
          this.setState(step, 'running', d.time);
          break;
        case 'selected-worker':
          this.note(step, `selected worker: ${d.selected_worker}`);
          break;
        case 'waiting-for-worker':
          this.note(step, 'no suitable workers found, waiting for worker...');
          break;
        case 'streaming-volume':
          this.note(step, `streaming volume ${d.volume} from ${d.source_worker}`);
          break;
        case 'waiting-for-streamed-volume':
          this.note(step, `waiting for volume ${d.volume} to be streamed by another step`);
          break;
        case 'finish-task':
          this.setState(step, d.exit_status === 0 ? 'succeeded' : 'failed', d.time);
          break;
        case 'finish-get': case 'finish-put':
          if (d.version && Object.keys(d.version).length) step.version.textContent = CI.versionText(d.version);
          CI.clear(step.metadata);
          if (d.metadata && d.metadata.length) step.metadata.append(CI.kvTable(d.metadata));
          this.setState(step, d.exit_status === 0 ? 'succeeded' : 'failed', d.time);
          break;
        case 'finish':
          this.setState(step, d.succeeded ? 'succeeded' : 'failed', d.time);
          break;
      }
    }

    lines(msg) {
      const step = this.steps.get(msg.origin);
      if (!step) return;
      for (const [i, time, spans] of msg.lines) step.log.set(i, time, spans);
      if (!step.body.hidden) step.log.draw();
    }

    // The build ended: steps still marked running did not get to finish.
    finish(status) {
      for (const s of this.steps.values()) {
        if (s.state === 'running') this.setState(s, status === 'aborted' ? 'interrupted' : status === 'succeeded' ? 'succeeded' : 'errored');
      }
    }

    drawVisible() {
      for (const s of this.steps.values()) if (!s.body.hidden) s.log.draw();
    }
  };
})();

// Streams a started build into a new BuildView: the plan, then the rendered event stream
// (a reconnect starts over from a clean tree). `hooks`: onStatus(status), onLines(),
// onEnd(), onDenied() when the stream cannot be opened at all.
CI.watchBuild = function (build, plan, hooks = {}) {
  const view = new CI.BuildView(build);
  view.onStatus = (status) => {
    view.lastStatus = status;
    if (hooks.onStatus) hooks.onStatus(status);
  };
  view.plan = plan;
  view.setPlan(plan);
  let opened = false;
  const es = new EventSource(`/api/v1/builds/${build.id}/events?render=lines`);
  es.addEventListener('open', () => {
    if (opened) view.setPlan(plan);
    opened = true;
  });
  es.addEventListener('event', (m) => view.event(JSON.parse(m.data)));
  es.addEventListener('lines', (m) => {
    view.lines(JSON.parse(m.data));
    if (hooks.onLines) hooks.onLines();
  });
  es.addEventListener('end', () => {
    es.close();
    view.finish(view.lastStatus || build.status);
    if (hooks.onEnd) hooks.onEnd();
  });
  es.addEventListener('error', () => {
    if (!opened) {
      es.close();
      if (hooks.onDenied) hooks.onDenied();
    }
  });
  return { view, close: () => es.close() };
};
