/* attnviz viewer: norm-based attention (Kobayashi et al. 2020, "Attention is Not Only a Weight"). The
 * contribution of key j to query i through head h has norm alpha_ij * ||v_j W_o^h||; the trace stores the
 * value norms (vnorm.<layer>, [heads, tokens]) and the page multiplies them with the attention weights, for
 * the chosen layer and head or the mean / max over the heads' norm-based matrices. Shown alone, next to the
 * raw weights, or the raw weights alone. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  class NormView {
    constructor(el, app) {
      this.el = el;
      this.app = app;
      this.mode = 'both';
      this.normalize = false;
      this.note = document.createElement('div');
      this.note.className = 'note';
      const bar = (this.bar = document.createElement('div'));
      bar.className = 'note';
      const mode = (this.modeSel = document.createElement('select'));
      mode.id = 'norm-mode';
      mode.add(new Option('norm-based and raw weights', 'both'));
      mode.add(new Option('norm-based ‖α v W_o‖', 'norm'));
      mode.add(new Option('raw weights α', 'raw'));
      mode.addEventListener('change', () => { this.mode = mode.value; this.paint(); });
      const norm = (this.normBox = document.createElement('input'));
      norm.type = 'checkbox';
      norm.id = 'norm-rows';
      norm.addEventListener('change', () => { this.normalize = norm.checked; this.paint(); });
      const l1 = document.createElement('label'), l2 = document.createElement('label');
      l1.append('show ', mode);
      l2.append('  ', norm, ' normalize rows (each row of the norm-based matrix sums to 1)');
      l2.title = 'rescale each query row of the norm-based matrix to sum 1, comparable to attention weights';
      bar.append(l1, l2);
      this.row = document.createElement('div');
      this.row.className = 'row';
      this.panels = ['norm', 'raw'].map((kind) => {
        const p = document.createElement('div'), cap = document.createElement('div'), cv = document.createElement('canvas');
        cap.className = 'caption';
        cv.id = kind === 'norm' ? 'norm-canvas' : 'norm-raw-canvas';
        p.append(cap, cv);
        this.row.append(p);
        cv.addEventListener('mousemove', (e) => this.hover(e, panel));
        cv.addEventListener('mouseleave', () => app.tooltip(null));
        const panel = { kind, el: p, cap, canvas: cv, geo: null };
        return panel;
      });
      el.append(this.note, bar, this.row);
    }

    paint() {
      const app = this.app, st = app.state, tr = app.trace, an = app.analysis;
      const missing = an.vnormMissing(st.kind, st.layer);
      this.modeSel.value = this.mode;
      this.normBox.checked = this.normalize;
      if (missing) {
        this.note.textContent = 'Norm-based attention (Kobayashi et al. 2020) weighs each attention weight α_ij by the length of the vector ' +
          'it moves, ‖v_j W_o^h‖, and needs these value norms. They cannot be shown here: ' + missing + '. The raw weights are in the Heatmap view.';
        this.bar.hidden = this.row.hidden = true;
        for (const p of this.panels) p.geo = null;
        return;
      }
      this.bar.hidden = this.row.hidden = false;
      const both = this.mode === 'both', opt = { head: st.head, exclude: st.exclude, qsel: st.qsel, ksel: st.ksel, normalize: this.normalize };
      const availW = Math.max(200, (this.el.clientWidth - 40) / (both ? 2 : 1) - (both ? 12 : 0));
      const availH = Math.max(200, window.innerHeight - 230);
      const lab = tr.labels('self'), what = typeof st.head === 'number' ? 'head ' + st.head : st.head + ' over heads';
      for (const p of this.panels) {
        const show = both || this.mode === p.kind;
        p.el.hidden = !show;
        if (!show) { p.geo = null; continue; }
        const M = p.kind === 'norm' ? AV.normMatrix(tr, an, st.layer, opt) : AV.matrix(tr, 'self', st.layer, opt);
        const scale = AV.makeScale(app.lut(), M.max, st.log, st.contrast);
        p.geo = AV.drawMatrix(p.canvas, M, lab, scale, availW, availH);
        p.cap.textContent = p.kind === 'norm'
          ? 'norm-based ‖α_ij v_j W_o^h‖' + (this.normalize ? ', rows normalized' : '') + ' · layer ' + st.layer + ', ' + what
          : 'raw weights α_ij' + (st.exclude ? ' (rows renormalized)' : '') + ' · layer ' + st.layer + ', ' + what;
      }
      this.note.textContent = 'Norm-based attention (Kobayashi et al. 2020): key j’s contribution to query i through head h is the vector ' +
        'α_ij v_j W_o^h; its length α_ij ‖v_j W_o^h‖ is what the norm-based matrix shows (mean / max: over the heads’ norm-based matrices). ' +
        'Weight on a token whose value vector is short (often the first token or punctuation) carries little. Each panel has its own color scale.' +
        (st.exclude ? ' First token hidden' + (this.normalize ? '.' : ' (norms not rescaled).') : '');
    }

    hover(e, p) {
      const cell = AV.matrixCell(p.canvas, p.geo, e);
      if (!cell) { this.app.tooltip(null); return; }
      const app = this.app, st = app.state, tr = app.trace, an = app.analysis, lab = tr.labels('self'), { q, k } = cell;
      const nk = tr.set('self', st.layer).nk, vn = an.vnorm(st.layer), single = typeof st.head === 'number';
      const o = { head: st.head, exclude: st.exclude, qsel: [q], ksel: [k], normalize: this.normalize };
      const norm = AV.normMatrix(tr, an, st.layer, o).data[0], alpha = AV.matrix(tr, 'self', st.layer, o).data[0];
      const step = single && !st.exclude ? tr.step('self', st.layer, st.head, q, alpha) : 0;
      const lines = ['query ' + q + '  “' + (lab.q[q] || '') + '”', 'key ' + k + '  “' + (lab.k[k] || '') + '”'];
      lines.push((single ? 'α (weight) ' : 'α (' + st.head + ' weight) ') + app.fmtWeight(alpha, step) + (st.exclude ? ' (renormalized)' : ''));
      if (single) lines.push('‖v_' + k + ' W_o^' + st.head + '‖ ' + app.fmtWeight(vn[st.head * nk + k], 0));
      lines.push('norm-based ' + app.fmtWeight(norm, this.normalize ? 0 : step * (single ? vn[st.head * nk + k] : 0)) +
        (this.normalize ? '  (share of the row’s norm-based total)' : single ? '  (= α × ‖v W_o‖)' : '  (' + st.head + ' over heads of α × ‖v W_o‖)'));
      lines.push('layer ' + st.layer + ', ' + (single ? 'head ' + st.head : st.head + ' over heads'));
      app.tooltip(lines.join('\n'), e.clientX, e.clientY, { q, k, value: p.kind === 'norm' ? norm : alpha });
    }
  }
  AV.NormView = NormView;
})();
