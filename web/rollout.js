/* attnviz viewer: the attention-rollout view (Abnar & Zuidema 2020), computed by `attnviz html` with
 * src/analysis/rollout.c (heads fused by mean, residual (A + I) / 2) and embedded like the attention data.
 * Cross-attention shows the encoder-decoder variant: each target token's share of each source token. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  class RolloutView {
    constructor(el, app) {
      this.el = el;
      this.app = app;
      this.note = document.createElement('div');
      this.note.className = 'note';
      this.caveat = document.createElement('div');
      this.caveat.className = 'caveat';
      this.canvas = document.createElement('canvas');
      this.canvas.id = 'rollout-canvas';
      el.append(this.note, this.caveat, this.canvas);
      this.canvas.addEventListener('mousemove', (e) => this.hover(e));
      this.canvas.addEventListener('mouseleave', () => app.tooltip(null));
    }

    paint() {
      const app = this.app, st = app.state, tr = app.trace, kind = st.kind, r = app.analysis.rollout(kind);
      this.caveat.textContent = 'Rollout multiplies the layers’ head-averaged attention, each mixed with the identity as (A + I)/2 and renormalized: ' +
        'it assumes the residual connection carries exactly half of every token’s state (I/2) and that information moves only along attention ' +
        'weights, ignoring value vectors, MLPs and layer norms. It shows how token identities could mix through the layers; it is not an ' +
        'explanation of the model’s output.';
      if (r.error) {
        this.geo = null;
        this.canvas.width = this.canvas.height = 0;
        this.canvas.style.width = this.canvas.style.height = '0';
        this.note.textContent = 'No rollout for ' + kind + ' attention: ' + r.error;
        return;
      }
      const d = r.desc, cross = d.variant === 'encoder-decoder', off = st.exclude ? 1 : 0;
      const rows = AV.indices(st.qsel, d.rows, off), cols = AV.indices(st.ksel, d.cols, off);
      const M = AV.subMatrix(r.data, d.rows, d.cols, rows, cols);
      const scale = AV.makeScale(app.lut(), M.max, st.log, st.contrast);
      const availW = Math.max(200, this.el.clientWidth - 40), availH = Math.max(200, window.innerHeight - 210);
      const axes = cross ? { k: 'source token →', q: 'target token ↓' } : { k: 'input token →', q: 'token ↓' };
      const g = (this.geo = AV.drawMatrix(this.canvas, M, tr.labels(kind), scale, availW, availH, axes));
      this.r = r;
      const share = 1 - Math.pow(d.residual, d.layers);
      this.note.textContent = (cross
        ? 'Encoder-decoder rollout over ' + d.layers + ' decoder layers' + (d.enc_layers ? ' and the ' + d.enc_layers + '-layer encoder rollout' : '') +
          ': how much each target token draws from each source token (rows sum to the source share 1 − ' + d.residual + '^' + d.layers + ' = ' + AV.fmt(share) + ')'
        : 'Attention rollout (Abnar & Zuidema 2020) of the ' + d.layers + ' ' + (kind === 'self' ? '' : kind + ' ') + 'layers: row = token after the last layer, ' +
          'column = input token, rows sum to 1') +
        ' · heads fused by ' + d.fusion + ', residual weight ' + d.residual + ' (the layer and head controls do not apply)' +
        (g.stride > 1 ? ' · 1 label in ' + g.stride + ' shown' : '') + (st.exclude ? ' · first token hidden' : '') + (st.log ? ' · log scale' : '') +
        ' · hover a cell for its value';
    }

    hover(e) {
      const cell = AV.matrixCell(this.canvas, this.geo, e);
      if (!cell) { this.app.tooltip(null); return; }
      const app = this.app, kind = app.state.kind, lab = app.trace.labels(kind), d = this.r.desc, { q, k, v } = cell;
      const cross = d.variant === 'encoder-decoder';
      const text = (cross ? 'target ' : 'token ') + q + '  “' + (lab.q[q] || '') + '”\n' + (cross ? 'source ' : 'input token ') + k + '  “' + (lab.k[k] || '') + '”\n' +
        'rollout ' + app.fmtWeight(v, this.r.step(q, v)) + '\n' +
        (cross ? 'share of source token ' + k + ' in target token ' + q : 'share of input token ' + k + ' in token ' + q + ' after layer ' + (d.layers - 1)) +
        ' (under rollout’s assumptions)';
      app.tooltip(text, e.clientX, e.clientY, { q, k, value: v });
    }
  }
  AV.RolloutView = RolloutView;
})();
