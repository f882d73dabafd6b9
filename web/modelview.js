/* attnviz viewer: the model view, every layer x head as a thumbnail on one canvas; click one to open it. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  class ModelView {
    constructor(el, app) {
      this.el = el;
      this.app = app;
      this.note = document.createElement('div');
      this.note.className = 'note';
      this.canvas = document.createElement('canvas');
      this.canvas.id = 'model-canvas';
      this.canvas.style.cursor = 'pointer';
      el.append(this.note, this.canvas);
      this.canvas.addEventListener('mousemove', (e) => this.hover(e));
      this.canvas.addEventListener('mouseleave', () => app.tooltip(null));
      this.canvas.addEventListener('click', (e) => {
        const hit = this.hit(e);
        if (hit) app.set({ layer: hit.layer, head: hit.head, view: 'heatmap' });
      });
    }

    paint() {
      const app = this.app, st = app.state, tr = app.trace, L = tr.layers(st.kind);
      let H = 0;
      for (let l = 0; l < L; l++) H = Math.max(H, tr.set(st.kind, l).heads);
      const s0 = tr.set(st.kind, 0);
      const fg = AV.cssVar('--fg') || '#222', accent = AV.cssVar('--accent') || '#2563eb';
      const availW = Math.max(300, this.el.clientWidth - 40);
      const gap = 4, lw = 34, top = 22;
      const T = Math.max(24, Math.min(140, Math.floor((availW - lw - 80) / H) - gap));
      const aspect = s0.nq / s0.nk, tw = aspect <= 1 ? T : Math.round(T / aspect), th = aspect <= 1 ? Math.round(T * aspect) : T;
      const ctx = AV.sizeCanvas(this.canvas, lw + H * (tw + gap) + 10, top + L * (th + gap) + 10);
      ctx.imageSmoothingEnabled = false;
      ctx.fillStyle = fg;
      ctx.font = '11px "DejaVu Sans", sans-serif';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'alphabetic';
      for (let h = 0; h < H; h++) ctx.fillText('H' + h, lw + h * (tw + gap) + tw / 2, top - 6);
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      for (let l = 0; l < L; l++) ctx.fillText('L' + l, lw - 6, top + l * (th + gap) + th / 2);
      const lut = app.lut();
      for (let l = 0; l < L; l++) {
        const heads = tr.set(st.kind, l).heads;
        for (let h = 0; h < heads; h++) {
          const M = AV.matrix(tr, st.kind, l, { head: h, exclude: st.exclude, qsel: st.qsel, ksel: st.ksel });
          const R = M.rows.length, C = M.cols.length;
          const P = pool(M.data, R, C, Math.min(R, th), Math.min(C, tw), !!app.diff);
          const scale = AV.makeScale(lut, P.max, st.log, st.contrast, !!app.diff);
          ctx.drawImage(AV.matrixCanvas(P.data, P.R, P.C, scale), lw + h * (tw + gap), top + l * (th + gap), tw, th);
        }
      }
      const cur = typeof st.head === 'number' ? st.head : -1;
      if (cur >= 0 && st.layer < L) {
        ctx.strokeStyle = accent;
        ctx.lineWidth = 2;
        ctx.strokeRect(lw + cur * (tw + gap) - 1, top + st.layer * (th + gap) - 1, tw + 2, th + 2);
      }
      this.geo = { lw, top, tw, th, gap, L, H };
      this.note.textContent = L + ' layers × ' + H + ' heads' + (st.kind !== 'self' ? ' (' + st.kind + ')' : '') +
        ' · each thumbnail is scaled to its own maximum (max-pooled when larger than its pixels) · click one to open it';
    }

    hit(e) {
      const g = this.geo;
      if (!g) return null;
      const rect = this.canvas.getBoundingClientRect();
      const x = e.clientX - rect.left - g.lw, y = e.clientY - rect.top - g.top;
      const h = Math.floor(x / (g.tw + g.gap)), l = Math.floor(y / (g.th + g.gap));
      if (x < 0 || y < 0 || h >= g.H || l >= g.L || x - h * (g.tw + g.gap) > g.tw || y - l * (g.th + g.gap) > g.th) return null;
      if (h >= this.app.trace.set(this.app.state.kind, l).heads) return null;
      return { layer: l, head: h };
    }

    hover(e) {
      const hit = this.hit(e);
      if (!hit) { this.app.tooltip(null); return; }
      this.app.tooltip('layer ' + hit.layer + ', head ' + hit.head + '\nclick to open', e.clientX, e.clientY, hit);
    }
  }

  /* Max-pools (R, C) to (r, c) cells so a single strong weight stays visible in a small thumbnail; signed
   * values (differences) pool by magnitude and max is the largest magnitude. */
  function pool(data, R, C, r, c, signed) {
    let max = 0;
    const mag = signed ? Math.abs : (v) => v;
    if (r >= R && c >= C) {
      for (let i = 0; i < data.length; i++) if (mag(data[i]) > max) max = mag(data[i]);
      return { data, R, C, max };
    }
    const out = new Float32Array(r * c);
    for (let i = 0; i < R; i++) {
      const oi = Math.floor((i * r) / R) * c, di = i * C;
      for (let j = 0; j < C; j++) {
        const o = oi + Math.floor((j * c) / C), v = data[di + j];
        if (mag(v) > mag(out[o])) out[o] = v;
        if (mag(v) > max) max = mag(v);
      }
    }
    return { data: out, R: r, C: c, max };
  }
  AV.pool = pool;
  AV.ModelView = ModelView;
})();
