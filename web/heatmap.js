/* attnviz viewer: the heatmap view (one head, or the mean / max over heads) with hover tooltips. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  class Heatmap {
    constructor(el, app) {
      this.el = el;
      this.app = app;
      this.note = document.createElement('div');
      this.note.className = 'note';
      this.canvas = document.createElement('canvas');
      this.canvas.id = 'heatmap-canvas';
      el.append(this.note, this.canvas);
      this.canvas.addEventListener('mousemove', (e) => this.hover(e));
      this.canvas.addEventListener('mouseleave', () => app.tooltip(null));
    }

    paint() {
      const app = this.app, st = app.state, tr = app.trace;
      const M = AV.matrix(tr, st.kind, st.layer, { head: st.head, exclude: st.exclude, qsel: st.qsel, ksel: st.ksel });
      const scale = AV.makeScale(app.lut(), M.max, st.log, st.contrast);
      const R = M.rows.length, C = M.cols.length, lab = tr.labels(st.kind);
      const fg = AV.cssVar('--fg') || '#222', muted = AV.cssVar('--muted') || '#666';
      /* cell size: fit the window, 1..28 CSS px */
      const availW = Math.max(200, this.el.clientWidth - 40), availH = Math.max(200, window.innerHeight - 170);
      let cs = Math.floor(Math.min((availW - 160) / C, (availH - 110) / R));
      cs = Math.max(1, Math.min(28, cs));
      const font = Math.max(8, Math.min(12, cs - 2)), stride = Math.max(1, Math.ceil((font + 3) / cs));
      const ctx0 = this.canvas.getContext('2d');
      ctx0.font = font + 'px "DejaVu Sans", sans-serif';
      const maxChars = 18;
      let qw = 0, kh = 0;
      for (let r = 0; r < R; r += stride) qw = Math.max(qw, ctx0.measureText(AV.cut(lab.q[M.rows[r]] || '', maxChars)).width);
      for (let c = 0; c < C; c += stride) kh = Math.max(kh, ctx0.measureText(AV.cut(lab.k[M.cols[c]] || '', maxChars)).width);
      const x0 = Math.max(Math.ceil(qw) + 26, 74), y0 = Math.ceil(kh) + 26, W = C * cs, H = R * cs;
      const cbx = x0 + W + 18, cbh = Math.max(H, 120);
      const ctx = AV.sizeCanvas(this.canvas, cbx + 70, y0 + Math.max(H, cbh) + 10);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(AV.matrixCanvas(M.data, R, C, scale), x0, y0, W, H);
      /* labels: queries right-aligned on the left, keys rotated above the matrix */
      ctx.fillStyle = fg;
      ctx.font = font + 'px "DejaVu Sans", sans-serif';
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      for (let r = 0; r < R; r += stride) ctx.fillText(AV.cut(lab.q[M.rows[r]] || '', maxChars), x0 - 5, y0 + (r + 0.5) * cs);
      ctx.save();
      ctx.textAlign = 'left';
      for (let c = 0; c < C; c += stride) {
        const dpr = window.devicePixelRatio || 1;
        ctx.setTransform(0, -dpr, dpr, 0, (x0 + (c + 0.5) * cs) * dpr, (y0 - 5) * dpr);
        ctx.fillText(AV.cut(lab.k[M.cols[c]] || '', maxChars), 0, 0);
      }
      ctx.restore();
      ctx.fillStyle = muted;
      ctx.font = '12px "DejaVu Sans", sans-serif';
      ctx.textAlign = 'left';
      ctx.textBaseline = 'alphabetic';
      ctx.fillText('key →', 4, 14);
      ctx.fillText('query ↓', 4, y0 - 6);
      AV.drawColorbar(ctx, scale, cbx, y0, 14, cbh, fg);
      this.geo = { x0, y0, cs, R, C, M };
      const s = tr.set(st.kind, st.layer);
      const what = typeof st.head === 'number' ? 'head ' + st.head : st.head + ' of ' + s.heads + ' heads';
      this.note.textContent = (st.kind !== 'self' ? st.kind + ' attention · ' : '') + 'layer ' + st.layer + ' · ' + what +
        ' · ' + R + ' queries × ' + C + ' keys' + (stride > 1 ? ' · 1 label in ' + stride + ' shown' : '') +
        (st.exclude ? ' · first token excluded, rows renormalized' : '') + (st.log ? ' · log scale' : '') +
        ' · hover a cell for its exact weight';
    }

    hover(e) {
      const g = this.geo;
      if (!g) return;
      const rect = this.canvas.getBoundingClientRect();
      const x = e.clientX - rect.left - g.x0, y = e.clientY - rect.top - g.y0;
      const c = Math.floor(x / g.cs), r = Math.floor(y / g.cs);
      if (x < 0 || y < 0 || c >= g.C || r >= g.R) { this.app.tooltip(null); return; }
      const app = this.app, st = app.state, tr = app.trace, lab = tr.labels(st.kind);
      const q = g.M.rows[r], k = g.M.cols[c], v = g.M.data[r * g.C + c];
      let text = 'query ' + q + '  “' + (lab.q[q] || '') + '”\nkey ' + k + '  “' + (lab.k[k] || '') + '”\n';
      const name = typeof st.head === 'number' ? 'weight' : st.head + ' weight';
      text += name + ' ' + app.fmtWeight(v, typeof st.head === 'number' ? tr.step(st.kind, st.layer, st.head, q) : 0);
      if (st.exclude && typeof st.head === 'number') {
        const raw = tr.head(st.kind, st.layer, st.head)[q * tr.set(st.kind, st.layer).nk + k];
        text += '  (renormalized; raw ' + app.fmtWeight(raw, 0) + ')';
      }
      text += '\nlayer ' + st.layer + ', ' + (typeof st.head === 'number' ? 'head ' + st.head : st.head + ' over heads');
      app.tooltip(text, e.clientX, e.clientY, { q, k, value: v });
    }
  }
  AV.Heatmap = Heatmap;
})();
