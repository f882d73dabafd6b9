/* attnviz serve: the live page. Talks to the HTTP API (docs/API.md): POST /api/run, polls /api/runs/{id},
 * then shows the trace in the zoomable map (zoom.js, tiles and rows computed on demand) and, in the
 * "All views" tab, the standalone viewer of web/ on the same trace (GET /api/traces/{id}/viewer). Runs only
 * on the serve page (it does nothing when inlined into the standalone viewer). */
(function () {
  'use strict';
  const app = document.getElementById('av-serve');
  if (!app || !window.AvZoomMap) return;

  const $ = (id) => document.getElementById(id);
  const state = {info: null, trace: null, cmaps: null, polling: null, viewerFor: null};
  const ui = {
    model: $('sv-model'), input: $('sv-input'), text: $('sv-text'), run: $('sv-run'), progress: $('sv-progress'),
    status: $('sv-status'), traces: $('sv-traces'), kind: $('sv-kind'), kindBox: $('sv-kind-box'),
    layer: $('sv-layer'), head: $('sv-head'), pool: $('sv-pool'), cmap: $('sv-cmap'), scale: $('sv-scale'),
    auto: $('sv-auto'), viewinfo: $('sv-viewinfo'), viewer: $('sv-viewer'), viewerNote: $('sv-viewer-note'),
    image: $('sv-image'), target: $('sv-target'), inputsNote: $('sv-inputs-note'),
  };

  /* ---- HTTP ---- */

  async function api(path, options) {
    const resp = await fetch(path, options);
    let body = null;
    try { body = await resp.json(); } catch (e) { /* empty or not JSON */ }
    if (!resp.ok) throw new Error((body && body.error) || 'HTTP ' + resp.status);
    return body;
  }

  function setStatus(text, isError) {
    ui.status.textContent = text;
    ui.status.classList.toggle('sv-error', !!isError);
  }

  /* ---- the map ---- */

  const map = new window.AvZoomMap($('sv-map'), {
    tooltip: $('sv-tip'),
    autoScale: false,
    overview: +new URLSearchParams(location.search).get('overview') || 0, /* cells a side of the overview */
    tileUrl: (p) => traceUrl('tile') + '&q0=' + p.q0 + '&q1=' + p.q1 + '&k0=' + p.k0 + '&k1=' + p.k1 +
      '&rows=' + p.rows + '&cols=' + p.cols + '&pool=' + ui.pool.value + '&format=f32',
    rowUrl: (q) => traceUrl('row') + '&q=' + q + '&format=f32',
    onView: (v) => {
      ui.viewinfo.textContent = 'queries ' + v.q0 + '–' + (v.q1 - 1) + ', keys ' + v.k0 + '–' + (v.k1 - 1) +
        ' · ' + (v.exact ? 'exact values' : v.level > 0 ? ui.pool.value + ' of ' + v.level + '×' + v.level + ' blocks' : 'overview') +
        ' · ' + v.zoom.toFixed(v.zoom < 1 ? 3 : 1) + ' px/cell' + (v.inflight ? ' · loading ' + v.inflight + ' tiles' : '');
    },
    onError: (msg) => setStatus(msg, true),
  });
  window.attnvizServe = {map, state}; /* for tests and the console */

  function traceUrl(what) {
    const t = state.trace;
    return '/api/traces/' + encodeURIComponent(t.id) + '/' + what + '?kind=' + ui.kind.value + '&layer=' +
      ui.layer.value + '&head=' + ui.head.value;
  }

  function kindInfo() {
    return state.trace.kinds.find((k) => k.kind === ui.kind.value) || state.trace.kinds[0];
  }

  function updateMapSource() {
    if (!state.trace || !kindInfo()) return;
    const k = kindInfo(), t = state.trace;
    map.opts.autoScale = ui.auto.checked;
    map.setSource({
      key: [t.id, k.kind, ui.layer.value, ui.head.value, ui.pool.value, ui.auto.checked].join('/'),
      nq: k.n_query, nk: k.n_key, qLabels: t[k.query_labels] || t.tokens, kLabels: t[k.key_labels] || t.tokens,
      pool: ui.pool.value,
    });
  }

  function updateColors() {
    if (state.cmaps) map.setColors(state.cmaps[ui.cmap.value], ui.scale.value);
  }

  function fillSelect(sel, items, keep) {
    const old = sel.value;
    sel.textContent = '';
    for (const [value, text] of items) {
      const o = document.createElement('option');
      o.value = value;
      o.textContent = text;
      sel.appendChild(o);
    }
    if (keep && items.some(([v]) => v === old)) sel.value = old;
  }

  function fillLayerHead() {
    const k = kindInfo();
    if (!k) return;
    fillSelect(ui.layer, Array.from({length: k.n_layers}, (_, i) => [String(i), String(i)]), true);
    const heads = Array.from({length: k.n_heads}, (_, i) => [String(i), String(i)]);
    heads.push(['mean', 'mean'], ['max', 'max']);
    fillSelect(ui.head, heads, true);
  }

  /* ---- traces ---- */

  async function loadTrace(id) {
    try {
      const t = await api('/api/traces/' + encodeURIComponent(id));
      state.trace = t;
      state.viewerFor = null;
      fillSelect(ui.kind, t.kinds.map((k) => [k.kind, k.kind]), true);
      ui.kindBox.hidden = t.kinds.length < 2;
      fillLayerHead();
      updateMapSource();
      ui.traces.value = id;
      if (!t.has_attention) { /* a model API's response: tokens and log-probabilities only, in the viewer's Steps tab */
        setStatus(t.n_tokens + ' tokens · this provider returns no attention weights: the Steps tab of "All views" shows the tokens and their log-probabilities');
        $('sv-tab-viewer').click();
        return;
      }
      setStatus(t.n_tokens + ' tokens · ' + kindInfo().n_layers + ' layers × ' + kindInfo().n_heads + ' heads' +
        (t.lazy ? ' · lazy trace (rows and tiles recomputed exactly on demand)' : '') +
        (t.logprobs ? ' · log-probabilities in the Steps tab of "All views"' : ''));
      if (!$('sv-panel-viewer').hidden) showViewer();
    } catch (e) {
      setStatus('cannot open trace ' + id + ': ' + e.message, true);
    }
  }

  async function refreshTraces(select) {
    const list = await api('/api/traces');
    const done = list.filter((r) => r.status === 'done');
    fillSelect(ui.traces, done.map((r) => [r.id, r.id + ' (' + r.n_tokens + ' tokens)']).reverse(), true);
    if (select) ui.traces.value = select;
    return done;
  }

  function showViewer() {
    const t = state.trace;
    if (!t) { ui.viewerNote.textContent = 'Run some text first.'; return; }
    if (!t.viewer) {
      ui.viewer.hidden = true;
      ui.viewerNote.classList.add('sv-error');
      ui.viewerNote.textContent = 'This trace is too long for the views that draw every full matrix (' + t.n_tokens +
        ' tokens): explore it with the zoomable map, which computes only what is on screen.';
      return;
    }
    ui.viewerNote.classList.remove('sv-error');
    ui.viewerNote.textContent = 'The viewer of "attnviz html" on trace ' + t.id + ': heatmap, model view, head view, head roles, rollout, norm-based attention' +
      (t.logprobs ? ', generation steps' : '') + '.';
    ui.viewer.hidden = false;
    if (state.viewerFor !== t.id) {
      state.viewerFor = t.id;
      ui.viewer.src = '/api/traces/' + encodeURIComponent(t.id) + '/viewer';
    }
  }

  /* ---- runs ---- */

  function readImage(file) {
    return new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve(r.result);
      r.onerror = () => reject(new Error('cannot read ' + file.name));
      r.readAsDataURL(file);
    });
  }

  /* A text file becomes the text to run (read in the page: a 400 KB novel chapter needs no copy-paste). */
  function loadTextFile(input) {
    const f = input.files && input.files[0];
    if (!f) return;
    const r = new FileReader();
    r.onload = () => { ui.text.value = r.result; setStatus(f.name + ': ' + r.result.length + ' characters loaded'); };
    r.onerror = () => setStatus('cannot read ' + f.name, true);
    r.readAsText(f);
  }

  async function run() {
    const body = {text: ui.text.value};
    if (ui.target.value.trim()) body.target = ui.target.value;
    if (ui.image.files && ui.image.files[0]) body.image = await readImage(ui.image.files[0]);
    ui.run.disabled = true;
    ui.progress.removeAttribute('value'); /* indeterminate until the server estimates */
    setStatus('submitting…');
    try {
      const r = await api('/api/run', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
      setStatus('queued: ' + r.n_tokens + ' tokens');
      await poll(r.id);
    } catch (e) {
      setStatus(e.message, true);
      ui.progress.value = 0;
    } finally {
      ui.run.disabled = false;
    }
  }

  async function poll(id) {
    for (;;) {
      const s = await api('/api/runs/' + encodeURIComponent(id));
      if (s.status === 'done') {
        ui.progress.value = 1;
        await refreshTraces(id);
        await loadTrace(id);
        setStatus(ui.status.textContent + ' · ran in ' + s.elapsed_s.toFixed(2) + ' s');
        return;
      }
      if (s.status === 'failed') throw new Error('run failed: ' + s.error);
      if (s.status === 'queued') setStatus('queued (' + s.queue_position + ' ahead) · ' + s.n_tokens + ' tokens');
      else setStatus('running · ' + s.n_tokens + ' tokens · ' + s.elapsed_s.toFixed(1) + ' s');
      if (typeof s.progress === 'number' && s.status === 'running') ui.progress.value = s.progress;
      await new Promise((res) => setTimeout(res, s.status === 'queued' ? 400 : 200));
    }
  }

  /* ---- wiring ---- */

  function bind() {
    ui.run.addEventListener('click', run);
    $('sv-textfile').addEventListener('change', (e) => loadTextFile(e.target));
    ui.text.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) run(); });
    ui.traces.addEventListener('change', () => loadTrace(ui.traces.value));
    ui.kind.addEventListener('change', () => { fillLayerHead(); updateMapSource(); });
    for (const el of [ui.layer, ui.head, ui.pool, ui.auto]) el.addEventListener('change', updateMapSource);
    for (const el of [ui.cmap, ui.scale]) el.addEventListener('change', updateColors);
    $('sv-fit').addEventListener('click', () => map.fit());
    $('sv-zoom-in').addEventListener('click', () => map.zoomAt(2));
    $('sv-zoom-out').addEventListener('click', () => map.zoomAt(0.5));
    $('sv-go').addEventListener('click', () => {
      if (!state.trace) return;
      const k = kindInfo();
      if (!k) return;
      map.zoomToCell(Math.min(k.n_query - 1, +$('sv-go-q').value || 0), Math.min(k.n_key - 1, +$('sv-go-k').value || 0));
    });
    $('sv-theme').addEventListener('click', () => { app.classList.toggle('sv-dark'); map.redraw(); });
    for (const b of document.querySelectorAll('.sv-tabs button')) {
      b.addEventListener('click', () => {
        const tab = b.dataset.tab;
        for (const o of document.querySelectorAll('.sv-tabs button')) o.setAttribute('aria-selected', String(o === b));
        $('sv-panel-map').hidden = tab !== 'map';
        $('sv-panel-viewer').hidden = tab !== 'viewer';
        if (tab === 'viewer') showViewer();
        else map.resize();
      });
    }
  }

  async function start() {
    bind();
    try {
      const [info, cmaps] = await Promise.all([api('/api/info'), api('/api/colormaps')]);
      state.info = info;
      state.cmaps = cmaps;
      updateColors();
      if (info.mode === 'model') {
        const m = info.model;
        ui.model.textContent = m.name + ' · ' + m.arch + ' · ' + m.n_layers + ' layers × ' + m.n_heads + ' heads · up to ' +
          info.limits.max_tokens + ' tokens per run';
        ui.input.hidden = false;
        const notes = [];
        if (!info.inputs.image) notes.push('this model takes no image (the server will refuse one)');
        if (!info.inputs.target) notes.push('this model has no target side (the server will refuse a target text)');
        ui.inputsNote.textContent = notes.join('; ');
      } else {
        ui.model.textContent = 'showing a saved trace';
      }
      const done = await refreshTraces();
      if (done.length) await loadTrace(done[done.length - 1].id);
      else setStatus('type some text and press Run');
    } catch (e) {
      setStatus('cannot reach the server: ' + e.message, true);
    }
  }

  start();
})();
