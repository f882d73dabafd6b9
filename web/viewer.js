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
      const tr = this.trace, start = meta.start || {};
      const kind = tr.kinds.includes(start.kind) ? start.kind : tr.kinds.includes('self') ? 'self' : tr.kinds.includes('cross') ? 'cross' : tr.kinds[0];
      this.grid = AV.patchGrid(meta.meta);
      const dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
      // `attnviz serve` caches one page per trace and names the first view in the page's URL (?view=)
      const urlView = new URLSearchParams(window.location.search).get('view');
      this.state = {
        view: urlView || meta.view || (this.grid ? 'image' : 'heatmap'), kind, layer: start.layer || 0, head: start.head === undefined ? 'mean' : start.head,
        cmap: 'viridis', log: false, contrast: 1, exclude: !!start.exclude, qsel: null, ksel: null, qtext: '', ktext: '', theme: dark ? 'dark' : 'light',
      };
      if (typeof this.state.head !== 'number' && tr.set(kind, 0).heads === 1) this.state.head = 0;
      this.lastPaint = null;
      this.views = {
        heatmap: new AV.Heatmap($('view-heatmap'), this),
        model: new AV.ModelView($('view-model'), this),
        head: new AV.HeadView($('view-head'), this),
        image: this.grid ? new AV.ImageView($('view-image'), this) : null,
        summary: new AV.SummaryView($('view-summary'), this),
        rollout: new AV.RolloutView($('view-rollout'), this),
        norm: new AV.NormView($('view-norm'), this),
        neuron: new AV.NeuronView($('view-neuron'), this),
        rows: new AV.RowView($('view-rows'), this),
      };
      if (!(this.state.view in this.views)) this.state.view = 'heatmap';
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
        if (b.dataset.view === 'image') b.hidden = !this.grid;
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
      if (st.view === 'image' && !this.grid) st.view = 'heatmap';
      const L = tr.layers(st.kind);
      st.layer = Math.max(0, Math.min(L - 1, st.layer | 0));
      const H = tr.set(st.kind, st.layer).heads;
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
        view.paint();
      } catch (e) {
        view.el.textContent = 'cannot draw this view: ' + e.message;
        throw e;
      }
      const ms = performance.now() - t0;
      this.lastPaint = { view: st.view, ms };
      const tr = this.trace, s = tr.set(st.kind, st.layer), m = tr.meta.meta || {};
      $('status').textContent = [m.model || tr.meta.title, m.arch, tr.layers(st.kind) + ' layers × ' + s.heads + ' heads',
        tr.pooled(st.kind) ? tr.pooled(st.kind).n_query + ' tokens, pooled overview' : s.nq + (s.nq !== s.nk ? '×' + s.nk : '') + ' tokens',
        'data ' + AV.precisionText(tr.encoding),
        'painted in ' + ms.toFixed(1) + ' ms'].filter(Boolean).join(' · ');
    }
  }

  function start() {
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
