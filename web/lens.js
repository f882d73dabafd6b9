/* attnviz viewer: the logit lens (attnviz lens; docs/ATTRIBUTION.md). meta.lens holds, for every layer entry
 * (0: the embeddings; e: after layer e; the last is the model's output) and position, the k most probable
 * next tokens after decoding that residual stream with the final norm and the output head. The grid shows
 * the top token of each cell colored by its probability, the output on top; a framed cell's top token is the
 * one that actually comes next. Hover a cell for its top k and the next token's probability and rank. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  class LensView {
    constructor(el, app) {
      this.el = el;
      this.app = app;
      this.data = app.trace.meta.lens || null;
      this.note = document.createElement('div');
      this.note.className = 'note';
      this.canvas = document.createElement('canvas');
      this.canvas.id = 'lens-canvas';
      el.append(this.note, this.canvas);
      this.canvas.addEventListener('mousemove', (e) => this.hover(e));
      this.canvas.addEventListener('mouseleave', () => app.tooltip(null));
    }

    label(id) {
      const l = this.data.labels && this.data.labels[String(id)];
      return l !== undefined ? l : '#' + id;
    }

    paint() {
      const d = this.data;
      if (!d) {
        this.note.textContent = 'This trace has no logit lens: make one with attnviz lens --model M --text … (docs/ATTRIBUTION.md).';
        return;
      }
      const app = this.app, lut = app.lut(), E = d.entries, T = d.tokens, K = d.k, lab = app.trace.labels('self').k;
      const fg = AV.cssVar('--fg') || '#222', muted = AV.cssVar('--muted') || '#666';
      const avail = Math.max(300, this.el.clientWidth - 40);
      const cw = Math.max(14, Math.min(72, Math.floor((avail - 110) / T))), ch = 20, text = cw >= 30;
      const x0 = 96, y0 = 24, W = cw * T, H = ch * E, below = text ? 90 : 40;
      const ctx = AV.sizeCanvas(this.canvas, x0 + W + 70, y0 + H + below);
      const sc = AV.makeScale(lut, 1, false, 1);
      ctx.font = '11px "DejaVu Sans", sans-serif';
      ctx.textBaseline = 'middle';
      for (let e = 0; e < E; e++) {
        const y = y0 + (E - 1 - e) * ch;
        ctx.fillStyle = fg;
        ctx.textAlign = 'right';
        ctx.fillText(e === 0 ? 'embeddings' : 'layer ' + e, x0 - 6, y + ch / 2);
        for (let q = 0; q < T; q++) {
          const at = (e * T + q) * K, id = d.topk_ids[at], p = Math.exp(d.topk_logprobs[at]), x = x0 + q * cw;
          const c = sc.css(p), rgb = c.match(/\d+/g).map(Number);
          ctx.fillStyle = c;
          ctx.fillRect(x, y, cw - 1, ch - 1);
          if (id === d.target_ids[q]) {
            ctx.strokeStyle = fg;
            ctx.lineWidth = 1.5;
            ctx.strokeRect(x + 0.75, y + 0.75, cw - 2.5, ch - 2.5);
          }
          if (!text) continue;
          ctx.fillStyle = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140 ? '#111' : '#fff';
          ctx.textAlign = 'center';
          ctx.fillText(AV.cut(this.label(id), Math.floor(cw / 7)), x + cw / 2, y + ch / 2);
        }
      }
      /* the next tokens above the grid, the input tokens under it (rotated when narrow) */
      ctx.fillStyle = muted;
      ctx.textAlign = 'left';
      ctx.fillText('next →', 4, y0 - 10);
      ctx.fillText('input →', 4, y0 + H + 12);
      const dpr = window.devicePixelRatio || 1;
      for (let q = 0; q < T; q++) {
        const cx = x0 + (q + 0.5) * cw;
        ctx.fillStyle = muted;
        ctx.textAlign = 'center';
        if (text && d.target_ids[q] >= 0) ctx.fillText(AV.cut(this.label(d.target_ids[q]), Math.floor(cw / 7)), cx, y0 - 10);
        ctx.save();
        ctx.fillStyle = fg;
        ctx.textAlign = 'right';
        ctx.setTransform(0, -dpr, dpr, 0, cx * dpr, (y0 + H + 4) * dpr);
        ctx.fillText(AV.cut(lab[q] || '', 14), 0, 0);
        ctx.restore();
      }
      AV.drawColorbar(ctx, sc, x0 + W + 16, y0, 14, Math.max(H, 60), fg);
      this.geo = { x0, y0, cw, ch, E, T };
      const hits = [];
      for (let e = 0; e < E; e++) {
        let n = 0;
        for (let q = 0; q < T; q++) n += d.topk_ids[(e * T + q) * K] === d.target_ids[q] ? 1 : 0;
        hits.push(n);
      }
      this.note.textContent = 'Logit lens: each layer\u2019s residual stream decoded with the final norm and the output head; ' +
        'cell = most probable next token, color = its probability, framed = it is the token that comes next ' +
        '(top-1 agreement with the next token per entry, embeddings first: ' + hits.join(', ') + ' of ' + (T - 1) + ')';
    }

    hover(e) {
      const g = this.geo, d = this.data;
      if (!g) return;
      const rect = this.canvas.getBoundingClientRect(), x = e.clientX - rect.left - g.x0, y = e.clientY - rect.top - g.y0;
      const q = Math.floor(x / g.cw), r = Math.floor(y / g.ch);
      if (x < 0 || y < 0 || q >= g.T || r >= g.E) { this.app.tooltip(null); return; }
      const ent = g.E - 1 - r, at = (ent * g.T + q) * d.k, lab = this.app.trace.labels('self').k, c = ent * g.T + q;
      let s = (ent === 0 ? 'embeddings' : 'after layer ' + ent) + ' · position ' + q + ' “' + (lab[q] || '') + '”\n';
      for (let i = 0; i < d.k; i++) s += '  ' + (i + 1) + '. “' + this.label(d.topk_ids[at + i]) + '”  p ' + AV.fmt(Math.exp(d.topk_logprobs[at + i])) + '\n';
      if (d.target_ids[q] >= 0)
        s += 'next token “' + this.label(d.target_ids[q]) + '”: p ' + AV.fmt(Math.exp(d.target_logprobs[c])) + ', rank ' + (d.target_ranks[c] + 1);
      this.app.tooltip(s, e.clientX, e.clientY, { q, k: ent, value: d.topk_logprobs[at] });
    }
  }
  AV.LensView = LensView;
})();
