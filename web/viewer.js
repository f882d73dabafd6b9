/* attnviz viewer: the app. Reads the embedded trace, wires the toolbar, switches views and exposes
 * window.attnviz (state, set(), lastPaint) for scripting and the browser tests. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});
  const $ = (id) => document.getElementById(id);

  class App {
    constructor() {
      const meta = JSON.parse($('av-meta').textContent);
      this.trace = new AV.Trace(meta, AV.b64ToBytes($('av-data').textContent));
      this.analysis = new AV.Analysis(this.trace);
      const tr = this.trace, kind = tr.kinds.includes('self') ? 'self' : tr.kinds.includes('cross') ? 'cross' : tr.kinds[0] || null;
      this.daam = meta.daam || null; /* a text-to-image trace: its patches are queries, not keys */
      this.grid = this.daam ? null : AV.patchGrid(meta.meta);
      /* a generation opens on its steps; a trace without attention (a model API's response) has only those */
      const steps = meta.steps, stepsFirst = steps && (steps.prompt_len !== null || !kind);
      /* attnviz diff: a signed difference A − B of two traces, drawn on the diverging map */
      this.diff = meta.meta && meta.meta.diff ? JSON.parse(meta.meta.diff) : null;
      if (this.diff) this.diff.logprobs = meta.meta.diff_logprobs ? JSON.parse(meta.meta.diff_logprobs) : null;
      const dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
      // `attnviz serve` caches one page per trace and names the first view in the page's URL (?view=)
      const urlView = new URLSearchParams(window.location.search).get('view');
      // meta.state: the first kind, layer, head, head-view heads and theme the page's maker chose
      const init = meta.state || {};
      this.state = {
        view: urlView || meta.view || (stepsFirst ? 'steps' : this.daam ? 'daam' : this.grid ? 'image' : 'heatmap'), kind: init.kind || kind,
        layer: init.layer || 0, head: init.head !== undefined ? init.head : 'mean', cmap: 'viridis', log: false, contrast: 1,
        exclude: !!init.exclude, qsel: null, ksel: null, qtext: '', ktext: '', theme: init.theme || (dark ? 'dark' : 'light'), step: null,
      };
      this.initialHeads = init.heads || null; /* consumed by the head view's first paint */
      if (this.state.kind && typeof this.state.head !== 'number' && tr.set(this.state.kind, this.state.layer).heads === 1) this.state.head = 0;
      if (this.diff) {
        $('cmap').add(new Option('diverging', 'diverging'));
        this.state.cmap = 'diverging';
        if (!['heatmap', 'model', 'steps'].includes(this.state.view)) this.state.view = 'heatmap';
      }
      this.lastPaint = null;
      this.views = {
        heatmap: new AV.Heatmap($('view-heatmap'), this),
        model: new AV.ModelView($('view-model'), this),
        head: new AV.HeadView($('view-head'), this),
        image: this.grid ? new AV.ImageView($('view-image'), this) : null,
        daam: this.daam ? new AV.DaamView($('view-daam'), this) : null,
        summary: new AV.SummaryView($('view-summary'), this),
        rollout: new AV.RolloutView($('view-rollout'), this),
        norm: new AV.NormView($('view-norm'), this),
        attribution: meta.attribution ? new AV.AttributionView($('view-attribution'), this) : null,
        lens: meta.lens ? new AV.LensView($('view-lens'), this) : null,
        steps: new AV.StepsView($('view-steps'), this),
        neuron: new AV.NeuronView($('view-neuron'), this),
        rows: new AV.RowView($('view-rows'), this),
        qkmap: meta.qkmap ? new AV.QkMapView($('view-qkmap'), this) : null,
      };
      if (!this.views[this.state.view]) this.state.view = 'heatmap';
      this.tip = $('tooltip');
      this.wire();
      this.set({});
    }

    lut() { return this.trace.meta.cmaps[this.state.cmap] || this.trace.meta.cmaps.viridis; }

    fmtWeight(v, step) {
      const s = v === 0 ? '0' : Math.abs(v) >= 1e-4 ? v.toPrecision(4) : v.toExponential(3);
      return step > 0 ? s + ' ±' + step.toPrecision(2) : s;
    }

    tooltip(text, x, y, data) {
      const t = this.tip;
      if (!text) { t.hidden = true; return; }
      t.textContent = text;
      t.hidden = false;
      if (data) { t.dataset.q = data.q; t.dataset.k = data.k; t.dataset.value = data.value; }
      const w = t.offsetWidth, h = t.offsetHeight;
      t.style.left = Math.min(x + 14, window.innerWidth - w - 4) + 'px';
      t.style.top = (y + 16 + h > window.innerHeight ? y - h - 8 : y + 16) + 'px';
    }

    wire() {
      const tr = this.trace;
      document.querySelectorAll('#tabs button').forEach((b) => {
        if (b.dataset.view in this.views) b.hidden = !this.views[b.dataset.view];
        if (b.dataset.view === 'steps') {
          b.hidden = !this.trace.meta.steps && !(this.diff && this.diff.logprobs);
          if (this.diff) b.textContent = 'Δ log-prob';
        }
        b.addEventListener('click', () => this.set({ view: b.dataset.view }));
      });
      const kindSel = $('kind');
      for (const k of tr.kinds) kindSel.add(new Option(tr.kindLabels[k], k));
      $('kind-box').hidden = tr.kinds.length < 2;
      kindSel.addEventListener('change', () => this.set({ kind: kindSel.value, layer: 0, qsel: null, ksel: null, qtext: '', ktext: '' }));
      $('layer').addEventListener('change', () => this.set({ layer: +$('layer').value }));
      $('head').addEventListener('change', () => {
        const v = $('head').value;
        this.set({ head: v === 'mean' || v === 'max' ? v : +v });
      });
      $('cmap').addEventListener('change', () => this.set({ cmap: $('cmap').value }));
      $('scale').addEventListener('change', () => this.set({ log: $('scale').value === 'log' }));
      $('contrast').addEventListener('input', () => this.set({ contrast: +$('contrast').value }));
      $('exclude').addEventListener('change', () => this.set({ exclude: $('exclude').checked }));
      const subset = (id, side) => {
        const el = $(id);
        el.addEventListener('change', () => {
          const s = tr.set(this.state.kind, this.state.layer);
          try {
            const sel = AV.parseSubset(el.value, side === 'q' ? s.nq : s.nk);
            el.classList.remove('bad');
            el.title = '';
            this.set(side === 'q' ? { qsel: sel, qtext: el.value } : { ksel: sel, ktext: el.value });
          } catch (e) {
            el.classList.add('bad');
            el.title = e.message;
          }
        });
      };
      subset('qsel', 'q');
      subset('ksel', 'k');
      $('theme').addEventListener('click', () => this.set({ theme: this.state.theme === 'dark' ? 'light' : 'dark' }));
      window.addEventListener('resize', () => { clearTimeout(this.rt); this.rt = setTimeout(() => this.paint(), 100); });
    }

    /* Updates the state, the toolbar and repaints the active view. */
    set(patch) {
      const st = Object.assign(this.state, patch), tr = this.trace;
      if (!this.views[st.view]) st.view = 'heatmap';
      if (st.view === 'steps' && !tr.meta.steps && !(this.diff && this.diff.logprobs)) st.view = 'heatmap';
      document.querySelectorAll('.controls .attn').forEach((c) => { c.hidden = !st.kind || (c.id === 'kind-box' && tr.kinds.length < 2); });
      const L = st.kind ? tr.layers(st.kind) : 0;
      st.layer = Math.max(0, Math.min(L - 1, st.layer | 0));
      const H = st.kind ? tr.set(st.kind, st.layer).heads : 0;
      if (typeof st.head === 'number' && st.head >= H) st.head = 0;
      document.body.className = st.theme;
      $('title').textContent = tr.meta.title;
      const layerSel = $('layer');
      if (layerSel.options.length !== L || layerSel.dataset.kind !== st.kind) {
        layerSel.textContent = '';
        for (let l = 0; l < L; l++) layerSel.add(new Option(String(l), String(l)));
        layerSel.dataset.kind = st.kind;
      }
      layerSel.value = String(st.layer);
      const headSel = $('head');
      if (headSel.dataset.n !== String(H)) {
        headSel.textContent = '';
        headSel.add(new Option('mean', 'mean'));
        headSel.add(new Option('max', 'max'));
        for (let h = 0; h < H; h++) headSel.add(new Option(String(h), String(h)));
        headSel.dataset.n = String(H);
      }
      headSel.value = String(st.head);
      $('kind').value = st.kind;
      $('cmap').value = st.cmap;
      $('scale').value = st.log ? 'log' : 'linear';
      $('contrast').value = String(st.contrast);
      $('exclude').checked = st.exclude;
      $('qsel').value = st.qtext;
      $('ksel').value = st.ktext;
      document.querySelectorAll('#tabs button').forEach((b) => b.classList.toggle('active', b.dataset.view === st.view));
      for (const [name, v] of Object.entries(this.views)) if (v) v.el.classList.toggle('active', name === st.view);
      this.paint();
    }

    paint() {
      const st = this.state, view = this.views[st.view];
      this.tooltip(null);
      const t0 = performance.now();
      try {
        if (this.diff && !['heatmap', 'model', 'steps'].includes(st.view))
          view.el.textContent = 'This view is not defined for a difference of two traces (attnviz diff): the Heatmap and Model tabs show A − B, the Δ log-prob tab the tokens.';
        else if (st.kind || st.view === 'steps') view.paint();
        else view.el.textContent = 'This trace holds no attention weights (' + (this.trace.meta.steps ? 'this provider returns no attention weights' :
          'none stored') + '): the Steps tab shows its tokens and log-probabilities.';
      } catch (e) {
        view.el.textContent = 'cannot draw this view: ' + e.message;
        throw e;
      }
      const ms = performance.now() - t0;
      this.lastPaint = { view: st.view, ms };
      const tr = this.trace, s = st.kind ? tr.set(st.kind, st.layer) : null, m = tr.meta.meta || {}, pl = st.kind && tr.pooled(st.kind);
      $('status').textContent = [m.model || tr.meta.title, m.arch, s && tr.layers(st.kind) + ' layers × ' + s.heads + ' heads',
        pl ? pl.n_query + ' tokens, pooled overview' : s ? s.nq + (s.nq !== s.nk ? '×' + s.nk : '') + ' tokens' : tr.meta.steps.steps.length + ' tokens, no attention',
        s && 'data ' + AV.precisionText(tr.encoding), 'painted in ' + ms.toFixed(1) + ' ms'].filter(Boolean).join(' · ');
    }
  }

  /* Several attnviz pages pasted into one document share element ids: each viewer would read the first
   * page's data and draw into the first page's elements. Refuse with a visible message instead (embed each
   * page in its own iframe, as the Python package's notebook display does). */
  function refuseShared() {
    if (document.querySelectorAll('script#av-meta').length < 2) return false;
    if (!document.getElementById('av-shared')) {
      const msg = document.createElement('div');
      msg.id = 'av-shared';
      msg.className = 'av-error';
      msg.textContent = 'attnviz: this document holds several viewer pages, which cannot share one document ' +
        '(their element ids collide); show each page in its own iframe (attnviz.Trace.show() in Python does).';
      document.body.prepend(msg);
    }
    return true;
  }

  function start() {
    if (refuseShared()) return;
    const app = new App();
    window.attnviz = {
      app,
      get state() { return app.state; },
      get lastPaint() { return app.lastPaint; },
      set: (patch) => { app.set(patch); return app.lastPaint; },
      trace: app.trace,
      analysis: app.analysis,
    };
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
