/* attnviz viewer: attribution (attnviz attribute; docs/ATTRIBUTION.md). meta.attribution holds, per method,
 * scores[n_target × source_len]: how much each source token matters to the log-probability of each target
 * token. Shown as the source strip colored by the attribution to the chosen target (or the whole target: the
 * sum over its tokens) and the target-by-source matrix, blue-white-red around 0 (viridis for saliency, a
 * norm). Hover a token or a cell for its value. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  const ABOUT = {
    occlusion: 'log p(target) with the input minus log p(target) with the source token replaced by the baseline ' +
      '(Captum FeatureAblation): positive = the token supports the target',
    shapley: 'Shapley value sampling (Captum ShapleyValueSampling): the mean change of log p(target) when the token ' +
      'joins, over random orders of the tokens; per target the values sum to f(input) − f(all baseline)',
    saliency: '‖∂ log p(target) / ∂ e_j‖₂, the gradient norm at the input embedding e_j (unsigned)',
    ixg: 'input × gradient: e_j · ∂ log p(target) / ∂ e_j, the first-order change of log p when e_j is zeroed',
    ig: 'integrated gradients (Sundararajan et al. 2017): (e_j − b_j) · the mean gradient on the path from the ' +
      'baseline b to the input; per target they sum to about f(input) − f(baseline)',
    'attn-grad': 'attention × gradient (Hao et al. 2021): Σ over layers, heads and queries of A · ∂ log p / ∂A ' +
      'for key j, the first-order contribution of attention to token j',
  };

  /* A diverging scale over [-a, a] for AV.drawMatrix / matrixCanvas (signed values, own ticks). */
  AV.signedScale = function (lut, a) {
    const vmax = a > 0 ? a : 1, t = (v) => 0.5 + (0.5 * v) / vmax;
    const index = (v) => { const x = t(v); return x >= 1 ? 255 : x > 0 ? Math.floor(x * 256) : 0; };
    const words = new Uint32Array(256);
    for (let i = 0; i < 256; i++) words[i] = 0xff000000 | (lut[3 * i + 2] << 16) | (lut[3 * i + 1] << 8) | lut[3 * i];
    const css = (v) => { const i = index(v); return 'rgb(' + lut[3 * i] + ',' + lut[3 * i + 1] + ',' + lut[3 * i + 2] + ')'; };
    return { signed: true, log: false, vmax, t, index, words, css, lut, ticks: [-vmax, -vmax / 2, 0, vmax / 2, vmax] };
  };

  class AttributionView {
    constructor(el, app) {
      this.el = el;
      this.app = app;
      this.data = app.trace.meta.attribution || null;
      this.note = document.createElement('div');
      this.note.className = 'note';
      const bar = (this.bar = document.createElement('div'));
      bar.className = 'note';
      this.methodSel = document.createElement('select');
      this.methodSel.id = 'attr-method';
      this.targetSel = document.createElement('select');
      this.targetSel.id = 'attr-target';
      const l1 = document.createElement('label'), l2 = document.createElement('label');
      l1.append('method ', this.methodSel);
      l2.append('  target ', this.targetSel);
      bar.append(l1, l2);
      this.about = document.createElement('div');
      this.about.className = 'caveat';
      this.strip = document.createElement('div');
      this.strip.id = 'attr-strip';
      this.strip.className = 'strip';
      this.caption = document.createElement('div');
      this.caption.className = 'caption';
      this.canvas = document.createElement('canvas');
      this.canvas.id = 'attr-canvas';
      el.append(this.note, bar, this.about, this.strip, this.caption, this.canvas);
      if (!this.data) return;
      this.methods = Object.keys(this.data.methods);
      for (const m of this.methods) this.methodSel.add(new Option(m, m));
      const t = this.data.targets;
      this.targetSel.add(new Option('whole target (sum over ' + t.ids.length + ' tokens)', '-1'));
      t.ids.forEach((id, i) => this.targetSel.add(new Option(i + ': “' + (t.labels ? t.labels[i] : '#' + id) + '”', String(i))));
      this.method = this.methods[0];
      this.target = -1;
      this.methodSel.addEventListener('change', () => { this.method = this.methodSel.value; this.paint(); });
      this.targetSel.addEventListener('change', () => { this.target = +this.targetSel.value; this.paint(); });
      this.canvas.addEventListener('mousemove', (e) => this.hover(e));
      this.canvas.addEventListener('mouseleave', () => app.tooltip(null));
    }

    /* Values of the strip: one target's row, or the sum over targets. */
    row(scores, S, N) {
      const v = new Float32Array(S);
      for (let i = 0; i < N; i++) if (this.target < 0 || this.target === i) for (let j = 0; j < S; j++) v[j] += scores[i * S + j];
      return v;
    }

    scaleFor(values) {
      let a = 0;
      for (const x of values) a = Math.max(a, Math.abs(x));
      const meta = this.app.trace.meta;
      return this.method === 'saliency' ? AV.makeScale(meta.cmaps.viridis, a, false, 1) : AV.signedScale(meta.cmaps.diverging, a);
    }

    paint() {
      const d = this.data;
      if (!d) {
        this.note.textContent = 'This trace has no attribution: make one with attnviz attribute --model M --text … ' +
          '--method occlusion|shapley|saliency|ixg|ig|attn-grad (docs/ATTRIBUTION.md).';
        this.bar.hidden = this.about.hidden = true;
        return;
      }
      this.methodSel.value = this.method;
      this.targetSel.value = String(this.target);
      const app = this.app, lab = app.trace.labels('self').k, S = d.source_len, t = d.targets, N = t.ids.length;
      const m = d.methods[this.method], set = d.settings || {};
      this.about.textContent = this.method + ': ' + (ABOUT[this.method] || '');
      const delta = m.ig_delta ? ' · IG completeness error (Σ attributions − (f(x) − f(baseline))) up to ' +
        AV.fmt(Math.max(...m.ig_delta.map((x) => Math.abs(x)))) + ' nats' : '';
      this.note.textContent = S + ' source tokens, ' + N + ' target token' + (N === 1 ? '' : 's') +
        (set.baseline ? ' · baseline ' + set.baseline + (set.baseline === 'token' ? ' ' + set.baseline_id : '') : '') +
        (set.group && set.group !== 'token' ? ' · groups ' + set.group : '') + delta;
      const v = this.row(m.scores, S, N), sc = this.scaleFor(v);
      this.strip.textContent = '';
      for (let j = 0; j < S; j++) {
        const s = document.createElement('span'), c = sc.css(v[j]), rgb = c.match(/\d+/g).map(Number);
        s.className = 'tok';
        s.textContent = lab[j] || '';
        s.style.background = c;
        s.style.color = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140 ? '#111' : '#fff';
        s.dataset.value = v[j];
        s.title = 'source ' + j + ' “' + (lab[j] || '') + '”: ' + AV.fmt(v[j]);
        this.strip.append(s);
      }
      for (let i = 0; i < N; i++) {
        const s = document.createElement('span');
        s.className = 'tok target' + (this.target === i ? ' current' : '');
        s.textContent = t.labels ? t.labels[i] : '#' + t.ids[i];
        s.title = 'target ' + i + ': log p ' + AV.fmt(t.logprobs[i]);
        this.strip.append(s);
      }
      this.caption.textContent = 'target (rows, with log p) by source token (columns)';
      const rowsLab = t.ids.map((id, i) => (t.labels ? t.labels[i] : '#' + id) + '  ' + t.logprobs[i].toFixed(2));
      const M = AV.subMatrix(Float32Array.from(m.scores), N, S, [...Array(N).keys()], [...Array(S).keys()]);
      const msc = this.scaleFor(m.scores);
      const availW = Math.max(200, this.el.clientWidth - 40), availH = Math.max(160, window.innerHeight - 320);
      this.geo = AV.drawMatrix(this.canvas, M, { q: rowsLab, k: lab }, msc, availW, availH, { q: 'target ↓', k: 'source →' });
    }

    hover(e) {
      const cell = AV.matrixCell(this.canvas, this.geo, e);
      if (!cell) { this.app.tooltip(null); return; }
      const t = this.data.targets, lab = this.app.trace.labels('self').k, { q, k, v } = cell;
      this.app.tooltip('target ' + q + '  “' + (t.labels ? t.labels[q] : '') + '” (log p ' + AV.fmt(t.logprobs[q]) + ')\nsource ' + k +
        '  “' + (lab[k] || '') + '”\n' + this.method + ' ' + AV.fmt(v), e.clientX, e.clientY, { q, k, value: v });
    }
  }
  AV.AttributionView = AttributionView;
})();
