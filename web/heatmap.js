/* attnviz viewer: the heatmap view (one head, or the mean / max over heads) with hover tooltips, and the
 * matrix painter it shares with the rollout and norm-based views (AV.drawMatrix, AV.matrixCell). */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  /* Draws matrix M {rows, cols, data} on canvas with query labels on the left, key labels rotated above, the
   * axis names and a colorbar; cells fit availW x availH (1..28 CSS px). lab {q, k}: labels by token index.
   * Returns the geometry {x0, y0, cs, R, C, M, stride} for AV.matrixCell. */
  AV.drawMatrix = function (canvas, M, lab, scale, availW, availH, axes) {
    const R = M.rows.length, C = M.cols.length;
    const fg = AV.cssVar('--fg') || '#222', muted = AV.cssVar('--muted') || '#666';
    let cs = Math.floor(Math.min((availW - 160) / Math.max(1, C), (availH - 110) / Math.max(1, R)));
    cs = Math.max(1, Math.min(28, cs));
    const font = Math.max(8, Math.min(12, cs - 2)), stride = Math.max(1, Math.ceil((font + 3) / cs));
    const ctx0 = canvas.getContext('2d');
    ctx0.font = font + 'px "DejaVu Sans", sans-serif';
    const maxChars = 18;
    let qw = 0, kh = 0;
    for (let r = 0; r < R; r += stride) qw = Math.max(qw, ctx0.measureText(AV.cut(lab.q[M.rows[r]] || '', maxChars)).width);
    for (let c = 0; c < C; c += stride) kh = Math.max(kh, ctx0.measureText(AV.cut(lab.k[M.cols[c]] || '', maxChars)).width);
    ctx0.font = '12px "DejaVu Sans", sans-serif';
    const qAxis = (axes && axes.q) || 'query ↓', kAxis = (axes && axes.k) || 'key →';
    const x0 = Math.max(Math.ceil(qw) + 26, 74, Math.ceil(ctx0.measureText(qAxis).width) + 14);
    const y0 = Math.ceil(kh) + 26, W = C * cs, H = R * cs;
    const cbx = x0 + W + 18, cbh = Math.max(H, 120);
    const ctx = AV.sizeCanvas(canvas, cbx + 70, y0 + Math.max(H, cbh) + 10);
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
    const dpr = window.devicePixelRatio || 1;
    for (let c = 0; c < C; c += stride) {
      ctx.setTransform(0, -dpr, dpr, 0, (x0 + (c + 0.5) * cs) * dpr, (y0 - 5) * dpr);
      ctx.fillText(AV.cut(lab.k[M.cols[c]] || '', maxChars), 0, 0);
    }
    ctx.restore();
    ctx.fillStyle = muted;
    ctx.font = '12px "DejaVu Sans", sans-serif';
    ctx.textAlign = 'left';
    ctx.textBaseline = 'alphabetic';
    ctx.fillText(kAxis, 4, 14);
    ctx.fillText(qAxis, 4, y0 - 6);
    AV.drawColorbar(ctx, scale, cbx, y0, 14, cbh, fg);
    return { x0, y0, cs, R, C, M, stride };
  };

  /* The cell under a mouse event: {r, c, q, k, v} (row/column in M, token indices, value) or null. */
  AV.matrixCell = function (canvas, g, e) {
    if (!g) return null;
    const rect = canvas.getBoundingClientRect();
    const x = e.clientX - rect.left - g.x0, y = e.clientY - rect.top - g.y0;
    const c = Math.floor(x / g.cs), r = Math.floor(y / g.cs);
    if (x < 0 || y < 0 || c >= g.C || r >= g.R) return null;
    return { r, c, q: g.M.rows[r], k: g.M.cols[c], v: g.M.data[r * g.C + c], r0: g.M.rows[r] };
  };

  /* Rows x cols of a full (nq x nk) matrix: {rows, cols, data, max, min}, as AV.matrix returns. */
  AV.subMatrix = function (full, nq, nk, rows, cols) {
    const R = rows.length, C = cols.length, data = new Float32Array(R * C);
    let max = 0, min = Infinity;
    for (let r = 0; r < R; r++) {
      const o = rows[r] * nk;
      for (let c = 0; c < C; c++) {
        const v = full[o + cols[c]];
        data[r * C + c] = v;
        if (v > max) max = v;
        if (v < min) min = v;
      }
    }
    return { rows, cols, data, max, min: min === Infinity ? 0 : min };
  };

  /* Token indices [off, n) narrowed to a subset (null: all). */
  AV.indices = function (sel, n, off) {
    const out = [];
    if (sel) { for (const i of sel) if (i >= off && i < n) out.push(i); } else for (let i = off; i < n; i++) out.push(i);
    return out;
  };

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
      const scale = app.diff ? AV.makeScale(app.lut(), Math.max(M.max, -M.min), false, st.contrast, true)
        : AV.makeScale(app.lut(), M.max, st.log, st.contrast);
      const availW = Math.max(200, this.el.clientWidth - 40), availH = Math.max(200, window.innerHeight - 170);
      const g = (this.geo = AV.drawMatrix(this.canvas, M, tr.labels(st.kind), scale, availW, availH));
      const s = tr.set(st.kind, st.layer);
      const what = typeof st.head === 'number' ? 'head ' + st.head : st.head + ' of ' + s.heads + ' heads';
      const pl = tr.pooled(st.kind);
      this.note.textContent = (st.kind !== 'self' ? st.kind + ' attention · ' : '') + 'layer ' + st.layer + ' · ' + what +
        (pl ? ' · pooled overview of ' + pl.n_query + ' × ' + pl.n_key + ' tokens: each cell is the max over ~' +
          Math.round(pl.n_query / pl.rows) + ' × ' + Math.round(pl.n_key / pl.cols) + ' tokens (exact rows: the Rows tab)'
          : ' · ' + g.R + ' queries × ' + g.C + ' keys') + (g.stride > 1 ? ' · 1 label in ' + g.stride + ' shown' : '') +
        (st.exclude ? ' · first token excluded, rows renormalized' : '') + (st.log ? ' · log scale' : '') +
        (app.diff ? ' · A − B: red where ' + app.diff.a + ' attends more, blue where ' + app.diff.b + ' does' : '') +
        ' · hover a cell for its exact weight';
    }

    hover(e) {
      const cell = AV.matrixCell(this.canvas, this.geo, e);
      if (!cell) { this.app.tooltip(null); return; }
      const app = this.app, st = app.state, tr = app.trace, lab = tr.labels(st.kind), { q, k, v } = cell;
      let text = 'query ' + q + '  “' + (lab.q[q] || '') + '”\nkey ' + k + '  “' + (lab.k[k] || '') + '”\n';
      const name = (app.diff ? 'A − B ' : '') + (typeof st.head === 'number' ? 'weight' : st.head + ' weight');
      text += name + ' ' + app.fmtWeight(v, typeof st.head === 'number' && !st.exclude ? tr.step(st.kind, st.layer, st.head, cell.r0, v) : 0);
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
