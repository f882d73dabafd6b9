/* attnviz viewer: the query/key map (AttentionViz, Yeh et al. 2023). One head's query and key vectors in one
 * 2-D map, projected when the page was built (src/render/html_qkmap.c, the corpus report's projection: keys
 * translated onto the queries' mean, both sides scaled to the same mean norm, then PCA of the joint points).
 * Queries are circles, keys squares; colors by side, position or token; the token on hover; clicking a query
 * rings the keys it attends to most (from the page's attention) and joins them to it. Needs meta "qkmap"
 * (traces run with --keep-qk or --lazy). */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});
  const SIZE = 560, PAD = 14, R = 3, TOP_KEYS = 5;
  const SIDE_COLORS = ['rgb(31,119,180)', 'rgb(255,127,14)']; /* query, key */
  const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

  class QkMapView {
    constructor(el, app) {
      this.el = el;
      this.app = app;
      this.selected = null; /* the clicked query: its index among the map's points */
      this.note = document.createElement('div');
      this.note.className = 'note';
      const bar = document.createElement('div');
      this.color = document.createElement('select');
      this.color.id = 'qkmap-color';
      for (const [v, t] of [['type', 'query / key'], ['position', 'position'], ['token', 'token']]) this.color.add(new Option(t, v));
      this.side = document.createElement('select');
      this.side.id = 'qkmap-side';
      for (const [v, t] of [['both', 'queries and keys'], ['q', 'queries'], ['k', 'keys']]) this.side.add(new Option(t, v));
      for (const s of [this.color, this.side]) s.addEventListener('change', () => this.paint());
      const cl = document.createElement('label'), sl = document.createElement('label');
      cl.append('color by ', this.color);
      sl.append(' show ', this.side);
      this.legend = document.createElement('span');
      this.legend.id = 'qkmap-legend';
      bar.append(cl, sl, this.legend);
      this.canvas = document.createElement('canvas');
      this.canvas.id = 'qkmap-canvas';
      this.info = document.createElement('div');
      this.info.id = 'qkmap-info';
      this.info.className = 'note';
      el.append(this.note, bar, this.canvas, this.info);
      this.canvas.addEventListener('mousemove', (e) => this.hover(e));
      this.canvas.addEventListener('mouseleave', () => app.tooltip(null));
      this.canvas.addEventListener('click', (e) => this.click(e));
    }

    /* The map of the state's kind, layer and head: {K, h, pts: [{side, pos, tok, x, y}], var}, or a message. */
    map() {
      const st = this.app.state, meta = this.app.trace.meta, qm = meta.qkmap;
      if (!qm) return meta.qkmap_note || 'this page has no query/key map';
      const K = qm.kinds[st.kind];
      if (!K) return 'no queries and keys of the ' + st.kind + ' attention are stored: choose another kind';
      const m = K.maps.find((e) => e.layer === st.layer);
      if (!m) return 'the map of layer ' + st.layer + ' did not fit the page (layers ' + K.maps.map((e) => e.layer).join(', ') +
        ' are embedded): open the page at that layer (attnviz html --layer ' + st.layer + ') or raise --max-mb';
      const h = typeof st.head === 'number' ? st.head : 0, nq = K.qpos.length, n = nq + K.kpos.length, b = this.app.trace.bytes;
      const xy = new Float32Array(b.buffer, b.byteOffset + m.off + h * n * 8, n * 2), pts = [];
      for (let i = 0; i < n; i++) {
        const side = i < nq ? 0 : 1, j = side ? i - nq : i;
        pts.push({ side, pos: side ? K.kpos[j] : K.qpos[j], tok: (side ? K.ktok : K.qtok)[j], x: xy[2 * i], y: xy[2 * i + 1] });
      }
      return { K, h, pts, var: m.var[h] };
    }

    paint() {
      const app = this.app, st = app.state, M = this.map();
      this.last = null;
      this.geo = null;
      if (typeof M === 'string') { this.note.textContent = M; this.canvas.hidden = true; this.info.textContent = ''; return; }
      const key = st.kind + '.' + st.layer + '.' + M.h;
      if (this.shown !== key) this.selected = null;
      this.shown = key;
      const { K, pts } = M, sampled = K.qpos.length < K.n_query || K.kpos.length < K.n_key;
      this.note.textContent = st.kind + ' layer ' + st.layer + ' · head ' + M.h + (typeof st.head === 'number' ? '' : ' (the map shows one head: choose a head number)') +
        ': ' + K.qpos.length + ' queries and ' + K.kpos.length + ' keys' +
        (sampled ? ', sampled evenly from ' + K.n_query + ' and ' + K.n_key + ' (the page\'s budget, --max-mb)' : '') +
        '. Keys translated onto the queries\' mean and both sides scaled to the same mean norm (AttentionViz), then PCA: ' +
        (100 * M.var[0]).toFixed(1) + '% + ' + (100 * M.var[1]).toFixed(1) + '% of the variance.' +
        (K.rel_bias ? ' The scores also add a relative-position bias the map does not show.' : '') + ' Click a query to see the keys it attends to most.';
      this.draw(M);
      this.last = { kind: st.kind, layer: st.layer, head: M.h, n: pts.length, selected: this.selected, top: this.top || null };
    }

    /* Attention of the map's query point p over every key: Float32Array(nk), or null when the page lacks it. */
    row(p, h) {
      const st = this.app.state, tr = this.app.trace;
      if (tr.pooled(st.kind)) return null;
      const s = tr.set(st.kind, st.layer);
      return tr.head(st.kind, st.layer, h).subarray(p.pos * s.nk, (p.pos + 1) * s.nk);
    }

    pointColor(p, mode, K, tokens) {
      if (mode === 'type') return SIDE_COLORS[p.side];
      if (mode === 'token') return tokens.get(p.tok);
      const n = p.side ? K.n_key : K.n_query, lut = this.app.trace.meta.cmaps.viridis, c = Math.min(255, Math.floor((n > 1 ? p.pos / (n - 1) : 0) * 256));
      return 'rgb(' + lut[3 * c] + ',' + lut[3 * c + 1] + ',' + lut[3 * c + 2] + ')';
    }

    draw(M) {
      const { K, pts } = M, mode = this.color.value, show = this.side.value, fg = AV.cssVar('--fg') || '#222';
      let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
      for (const p of pts) { x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x); y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y); }
      const span = Math.max(x1 - x0, y1 - y0) || 1, cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
      for (const p of pts) {
        p.px = PAD + SIZE / 2 + ((p.x - cx) / span) * SIZE * 0.98;
        p.py = PAD + SIZE / 2 - ((p.y - cy) / span) * SIZE * 0.98;
        p.hidden = (show === 'q' && p.side === 1) || (show === 'k' && p.side === 0);
      }
      const tokens = new Map();
      for (const p of pts) if (!tokens.has(p.tok)) tokens.set(p.tok, PALETTE[tokens.size % PALETTE.length]);
      this.canvas.hidden = false;
      const ctx = AV.sizeCanvas(this.canvas, SIZE + 2 * PAD, SIZE + 2 * PAD);
      ctx.strokeStyle = AV.cssVar('--line') || '#ccc';
      ctx.strokeRect(PAD, PAD, SIZE, SIZE);
      for (const p of pts) {
        if (p.hidden) continue;
        ctx.fillStyle = this.pointColor(p, mode, K, tokens);
        if (p.side) ctx.fillRect(p.px - R, p.py - R, 2 * R, 2 * R);
        else { ctx.beginPath(); ctx.arc(p.px, p.py, R, 0, 2 * Math.PI); ctx.fill(); }
      }
      this.geo = { pts, K };
      this.legend.textContent = '  ● query  ■ key' + (mode === 'position' ? ' · color: position, first (dark) to last (yellow)' :
        mode === 'token' ? ' · color: token (' + tokens.size + ' distinct, 10 colors cycled)' : '');
      if (mode === 'type') {
        this.legend.textContent = '';
        SIDE_COLORS.forEach((c, i) => {
          const s = document.createElement('span');
          s.style.color = c;
          s.textContent = (i ? '  ■ key' : '  ● query');
          this.legend.append(s);
        });
      }
      this.top = null;
      this.info.textContent = '';
      if (this.selected !== null && pts[this.selected]) this.drawSelection(ctx, M, pts[this.selected], fg);
    }

    /* Rings the selected query and its TOP_KEYS strongest keys (those in the map), joined by lines. */
    drawSelection(ctx, M, q, fg) {
      const row = this.row(q, M.h), byPos = new Map();
      for (const p of M.pts) if (p.side === 1) byPos.set(p.pos, p);
      ctx.strokeStyle = fg;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(q.px, q.py, R + 4, 0, 2 * Math.PI);
      ctx.stroke();
      if (!row) { this.info.textContent = 'query ' + q.pos + ' “' + q.tok + '”: this pooled page holds no exact attention rows to rank its keys'; return; }
      const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b).slice(0, TOP_KEYS);
      const lab = this.app.trace.labels(this.app.state.kind).k;
      this.top = order.map((j) => ({ pos: j, weight: row[j], inMap: byPos.has(j) }));
      ctx.lineWidth = 1;
      for (const j of order) {
        const k = byPos.get(j);
        if (!k) continue;
        ctx.beginPath();
        ctx.moveTo(q.px, q.py);
        ctx.lineTo(k.px, k.py);
        ctx.stroke();
        ctx.strokeRect(k.px - R - 3, k.py - R - 3, 2 * R + 6, 2 * R + 6);
      }
      this.info.textContent = 'query ' + q.pos + ' “' + q.tok + '” attends most to: ' + this.top.map((t) =>
        t.pos + ' “' + AV.cut(lab[t.pos] || '', 16) + '” ' + t.weight.toFixed(3) + (t.inMap ? '' : ' (not in the sample)')).join(' · ');
    }

    /* The visible point nearest to the mouse (within 8 px), or null. */
    nearest(e) {
      const g = this.geo;
      if (!g) return null;
      const rect = this.canvas.getBoundingClientRect(), mx = e.clientX - rect.left, my = e.clientY - rect.top;
      let best = null, bd = 64;
      g.pts.forEach((p, i) => {
        const d = (p.px - mx) ** 2 + (p.py - my) ** 2;
        if (!p.hidden && d < bd) { bd = d; best = i; }
      });
      return best;
    }

    hover(e) {
      const i = this.nearest(e);
      if (i === null) { this.app.tooltip(null); return; }
      const p = this.geo.pts[i], K = this.geo.K;
      this.app.tooltip('“' + p.tok + '”\n' + (p.side ? 'key' : 'query') + ' at position ' + p.pos + ' of ' + (p.side ? K.n_key : K.n_query),
        e.clientX, e.clientY, { q: p.side ? '' : p.pos, k: p.side ? p.pos : '', value: '' });
    }

    click(e) {
      const i = this.nearest(e);
      this.selected = i !== null && this.geo.pts[i].side === 0 ? i : null;
      this.paint();
    }
  }
  AV.QkMapView = QkMapView;
})();
