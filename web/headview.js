/* attnviz viewer: the head view (BertViz style). Queries on the left, keys on the right, one line per
 * weight with opacity = weight; several heads overlaid, each in its own color. Hover a query token to
 * isolate its row (or a key token for its column). Each line is its own 1 px stroke (alpha accumulates
 * where lines overlap, as in BertViz); weights under 0.02 are not drawn, so 12 heads x 128 x 128 tokens
 * paint in about 0.1 s. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});
  const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
    '#bcbd22', '#17becf', '#393b79', '#ad494a', '#637939', '#7b4173', '#3182bd', '#e6550d'];
  const MAX_ROWS = 400;
  AV.headColor = (h) => PALETTE[h % PALETTE.length];

  class HeadView {
    constructor(el, app) {
      this.el = el;
      this.app = app;
      this.note = document.createElement('div');
      this.note.className = 'note';
      this.heads = document.createElement('div');
      this.heads.className = 'heads';
      this.canvas = document.createElement('canvas');
      this.canvas.id = 'head-canvas';
      /* sentence pairs (BERT --text-pair): which sentence's tokens attend to which (BertViz's filter) */
      this.pair = document.createElement('select');
      this.pair.id = 'head-pair';
      for (const [v, t] of [['all', 'all tokens'], ['AA', 'sentence A → A'], ['AB', 'sentence A → B'], ['BA', 'sentence B → A'], ['BB', 'sentence B → B']])
        this.pair.add(new Option(t, v));
      this.pair.addEventListener('change', () => this.draw());
      this.pairLabel = document.createElement('label');
      this.pairLabel.append('sentences ', this.pair);
      this.bStart = parseInt((app.trace.meta.meta || {}).sentence_b_start, 10);
      this.pairLabel.hidden = !(this.bStart > 0);
      el.append(this.note, this.pairLabel, this.heads, this.canvas);
      this.selected = null; /* Set of head indices */
      this.focus = null; /* {side: 'q'|'k', index} */
      this.canvas.addEventListener('mousemove', (e) => this.hover(e));
      this.canvas.addEventListener('mouseleave', () => { if (this.focus) { this.focus = null; this.draw(); } });
    }

    syncHeads() {
      const app = this.app, st = app.state, s = app.trace.set(st.kind, st.layer);
      const key = st.kind + '.' + st.layer + '.' + st.head;
      if (this.headKey !== key) {
        this.headKey = key;
        const first = app.initialHeads;
        app.initialHeads = null;
        this.selected = new Set(first || (typeof st.head === 'number' ? [st.head] : [...Array(s.heads).keys()]));
      }
      this.heads.textContent = '';
      for (let h = 0; h < s.heads; h++) {
        const lab = document.createElement('label'), cb = document.createElement('input'), sw = document.createElement('span');
        cb.type = 'checkbox';
        cb.checked = this.selected.has(h);
        cb.dataset.head = h;
        cb.addEventListener('change', () => {
          if (cb.checked) this.selected.add(h); else this.selected.delete(h);
          this.paint();
        });
        sw.className = 'swatch';
        sw.style.background = AV.headColor(h);
        lab.append(cb, sw, document.createTextNode('H' + h));
        this.heads.append(lab);
      }
    }

    paint() {
      this.syncHeads();
      this.draw();
    }

    draw() {
      const app = this.app, st = app.state, tr = app.trace, s = tr.set(st.kind, st.layer), lab = tr.labels(st.kind);
      const off = st.exclude ? 1 : 0;
      const f = this.bStart > 0 ? this.pair.value : 'all', b = this.bStart;
      const side = (x, i) => x === 'A' ? i < b : i >= b; /* sentence A: tokens before B's first */
      let rows = (st.qsel || [...Array(s.nq).keys()]).filter((i) => i >= off && i < s.nq && (f === 'all' || side(f[0], i)));
      let cols = (st.ksel || [...Array(s.nk).keys()]).filter((i) => i >= off && i < s.nk && (f === 'all' || side(f[1], i)));
      const cut = rows.length > MAX_ROWS || cols.length > MAX_ROWS;
      rows = rows.slice(0, MAX_ROWS);
      cols = cols.slice(0, MAX_ROWS);
      const fg = AV.cssVar('--fg') || '#222', bg = AV.cssVar('--bg') || '#fff';
      const rh = 18, font = 12, top = 8;
      const cx = this.canvas.getContext('2d');
      cx.font = font + 'px "DejaVu Sans", sans-serif';
      let qw = 0, kw = 0;
      for (const i of rows) qw = Math.max(qw, cx.measureText(AV.cut(lab.q[i] || '', 24)).width);
      for (const i of cols) kw = Math.max(kw, cx.measureText(AV.cut(lab.k[i] || '', 24)).width);
      const xl = Math.ceil(qw) + 16, xr = xl + Math.max(260, Math.min(520, this.el.clientWidth - qw - kw - 80));
      const height = top + Math.max(rows.length, cols.length) * rh + 8;
      const ctx = AV.sizeCanvas(this.canvas, xr + kw + 20, height);
      const yq = (r) => top + (r + 0.5) * (height - top - 8) / rows.length;
      const yk = (c) => top + (c + 0.5) * (height - top - 8) / cols.length;
      this.geo = { xl, xr, rows, cols, yq, yk, rh, top, height };
      const focus = this.focus;
      const heads = [...this.selected].sort((a, b) => a - b);
      ctx.lineWidth = 1;
      const contrast = st.contrast || 1;
      let drawn = 0;
      for (const h of heads) {
        const m = tr.head(st.kind, st.layer, h);
        ctx.strokeStyle = AV.headColor(h);
        for (let r = 0; r < rows.length; r++) {
          if (focus && focus.side === 'q' && focus.index !== rows[r]) continue;
          const o = rows[r] * s.nk, y0 = yq(r);
          let norm = 1;
          if (off) { let sum = 0; for (let k = 1; k < s.nk; k++) sum += m[o + k]; norm = sum > 0 ? 1 / sum : 1; }
          for (let c = 0; c < cols.length; c++) {
            if (focus && focus.side === 'k' && focus.index !== cols[c]) continue;
            const w = Math.min(1, m[o + cols[c]] * norm * contrast);
            if (w < 0.02) continue;
            ctx.globalAlpha = w;
            ctx.beginPath();
            ctx.moveTo(xl + 4, y0);
            ctx.lineTo(xr - 4, yk(c));
            ctx.stroke();
            drawn++;
          }
        }
      }
      this.drawn = drawn;
      ctx.globalAlpha = 1;
      ctx.font = font + 'px "DejaVu Sans", sans-serif';
      ctx.textBaseline = 'middle';
      const label = (text, x, y, align, hot) => {
        ctx.textAlign = align;
        if (hot) {
          const w = ctx.measureText(text).width;
          ctx.fillStyle = fg;
          ctx.fillRect(align === 'right' ? x - w - 3 : x - 3, y - rh / 2 + 1, w + 6, rh - 2);
          ctx.fillStyle = bg;
        } else ctx.fillStyle = fg;
        ctx.fillText(text, x, y);
      };
      rows.forEach((i, r) => label(AV.cut(lab.q[i] || '', 24), xl - 6, yq(r), 'right', focus && focus.side === 'q' && focus.index === i));
      cols.forEach((i, c) => label(AV.cut(lab.k[i] || '', 24), xr + 6, yk(c), 'left', focus && focus.side === 'k' && focus.index === i));
      this.note.textContent = 'layer ' + st.layer + (st.kind !== 'self' ? ' · ' + st.kind : '') + ' · queries (left) → keys (right), line opacity = weight' +
        (st.contrast > 1 ? ' × ' + st.contrast : '') + ' · hover a token to isolate it' + (cut ? ' · showing the first ' + MAX_ROWS + ' tokens: narrow with queries/keys' : '');
    }

    hover(e) {
      const g = this.geo;
      if (!g) return;
      const rect = this.canvas.getBoundingClientRect();
      const x = e.clientX - rect.left, y = e.clientY - rect.top;
      let f = null;
      if (x < g.xl + 2 && g.rows.length) {
        const r = Math.round(((y - g.top) / (g.height - g.top - 8)) * g.rows.length - 0.5);
        if (r >= 0 && r < g.rows.length) f = { side: 'q', index: g.rows[r] };
      } else if (x > g.xr - 2 && g.cols.length) {
        const c = Math.round(((y - g.top) / (g.height - g.top - 8)) * g.cols.length - 0.5);
        if (c >= 0 && c < g.cols.length) f = { side: 'k', index: g.cols[c] };
      }
      const same = (a, b) => (a === b) || (a && b && a.side === b.side && a.index === b.index);
      if (!same(f, this.focus)) { this.focus = f; this.draw(); }
    }
  }
  AV.HeadView = HeadView;
})();
