/* attnviz viewer: the neuron view (BertViz's): for one head and a chosen query token, the query vector q_i,
 * every key vector k_j it may see, their elementwise product q_i ⊙ k_j, the score scale · Σ(q_i ⊙ k_j) and
 * the softmax weight, next to the weight the trace stored. Needs the page's queries and keys (meta "qk":
 * traces run with --keep-qk or --lazy); components are colored blue (negative) - white - red (positive), one
 * scale for q and k, one for the products. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});
  const CELL = 9, ROW = 16, MAX_KEYS = 400;

  /* blue - white - red for t in [-1, 1] */
  function diverging(t) {
    t = Math.max(-1, Math.min(1, t || 0));
    const a = Math.round(255 * (1 - Math.abs(t)));
    return t >= 0 ? 'rgb(255,' + a + ',' + a + ')' : 'rgb(' + a + ',' + a + ',255)';
  }

  class NeuronView {
    constructor(el, app) {
      this.el = el;
      this.app = app;
      this.query = null;
      this.note = document.createElement('div');
      this.note.className = 'note';
      const bar = document.createElement('div'), qs = AV.querySelect(this, 'neuron-query');
      this.qselect = qs.select;
      this.keys = document.createElement('select');
      this.keys.id = 'neuron-keys';
      this.keys.add(new Option('every key it sees', 'all'));
      this.keys.add(new Option('the 20 strongest keys', 'top'));
      this.keys.addEventListener('change', () => this.paint());
      const kl = document.createElement('label');
      kl.append(' keys ', this.keys);
      bar.append(qs.label, kl);
      this.canvas = document.createElement('canvas');
      this.canvas.id = 'neuron-canvas';
      el.append(this.note, bar, this.canvas);
      this.canvas.addEventListener('mousemove', (e) => this.hover(e));
      this.canvas.addEventListener('mouseleave', () => app.tooltip(null));
    }

    /* q (heads, n, d) and k (kv_heads, n, d) of a layer, as Float32Arrays on the page's data. */
    vectors(qk, layer) {
      const b = this.app.trace.bytes, L = qk.layers[layer];
      return { L, q: new Float32Array(b.buffer, b.byteOffset + L.qoff, qk.heads * qk.n * qk.d),
        k: new Float32Array(b.buffer, b.byteOffset + L.koff, qk.kv_heads * qk.n * qk.d) };
    }

    /* Scores and softmax weights of query i of head h over the keys it sees. */
    compute(qk, layer, h, i) {
      const { L, q, k } = this.vectors(qk, layer), d = qk.d, g = Math.floor(h / (qk.heads / qk.kv_heads));
      const qi = q.subarray((h * qk.n + i) * d, (h * qk.n + i + 1) * d);
      const lo = qk.causal && L.window > 0 ? Math.max(0, i - L.window + 1) : 0, hi = qk.causal ? i : qk.n - 1;
      const keys = [], scores = [];
      let mx = -Infinity;
      for (let j = lo; j <= hi; j++) {
        const kj = k.subarray((g * qk.n + j) * d, (g * qk.n + j + 1) * d);
        let s = 0;
        for (let e = 0; e < d; e++) s += qi[e] * kj[e];
        s *= L.scale;
        if (L.softcap > 0) s = L.softcap * Math.tanh(s / L.softcap);
        keys.push({ j, kj });
        scores.push(s);
        if (s > mx) mx = s;
      }
      let sum = 0;
      const w = scores.map((s) => { const x = Math.exp(s - mx); sum += x; return x; });
      keys.forEach((key, n) => { key.score = scores[n]; key.weight = w[n] / sum; });
      return { qi, keys };
    }

    paint() {
      const app = this.app, st = app.state, tr = app.trace, qk = tr.meta.qk;
      this.last = null;
      this.canvas.hidden = true;
      if (!qk) { this.note.textContent = tr.meta.qk_note || 'this page has no queries and keys'; return; }
      if (st.kind !== 'self') { this.note.textContent = 'the neuron view shows self-attention: choose the self kind'; return; }
      if (typeof st.head !== 'number') { this.note.textContent = 'the neuron view shows one head: choose a head number (not ' + st.head + ')'; return; }
      const lab = tr.labels('self');
      if (this.query === null || this.query >= qk.n) this.query = qk.n - 1;
      if (this.qselect.options.length !== qk.n) {
        this.qselect.textContent = '';
        for (let i = 0; i < qk.n; i++) this.qselect.add(new Option(i + ': ' + AV.cut(lab.q[i] || '', 20), String(i)));
      }
      this.qselect.value = String(this.query);
      const { qi, keys } = this.compute(qk, st.layer, st.head, this.query);
      let shown = keys;
      if (this.keys.value === 'top' || keys.length > MAX_KEYS) shown = keys.slice().sort((a, b) => b.weight - a.weight).slice(0, this.keys.value === 'top' ? 20 : MAX_KEYS);
      const stored = tr.pooled('self') ? null : tr.head('self', st.layer, st.head), nk = tr.set('self', st.layer).nk;
      shown.forEach((key) => { key.stored = stored ? stored[this.query * nk + key.j] : NaN; });
      this.last = { layer: st.layer, head: st.head, query: this.query, keys: shown.map(({ j, score, weight, stored: s }) => ({ j, score, weight, stored: s })) };
      this.draw(qk, qi, shown, lab);
      this.note.textContent = 'layer ' + st.layer + ' · head ' + st.head + ' · query ' + this.query + ' “' + (lab.q[this.query] || '') + '”: ' +
        'q (its query vector), k (each key vector), q × k (their elementwise product), the score scale · Σ(q × k)' +
        (qk.layers[st.layer].softcap > 0 ? ' soft-capped' : '') + ' and the softmax weight (the bar; in brackets, the weight the trace stored)' +
        (shown.length < keys.length ? ' · ' + shown.length + ' of ' + keys.length + ' keys, strongest first' : '');
    }

    draw(qk, qi, keys, lab) {
      const d = qk.d, fg = AV.cssVar('--fg') || '#222', left = 150, gap = 16, vw = d * CELL;
      const xk = left, xp = xk + vw + gap, xs = xp + vw + gap, top = 44;
      let vmax = 0, pmax = 0;
      for (let e = 0; e < d; e++) vmax = Math.max(vmax, Math.abs(qi[e]));
      for (const { kj } of keys) for (let e = 0; e < d; e++) { vmax = Math.max(vmax, Math.abs(kj[e])); pmax = Math.max(pmax, Math.abs(qi[e] * kj[e])); }
      this.canvas.hidden = false;
      const ctx = AV.sizeCanvas(this.canvas, xs + 260, top + (keys.length + 1) * ROW + 10);
      ctx.font = '11px "DejaVu Sans", sans-serif';
      ctx.textBaseline = 'middle';
      ctx.fillStyle = fg;
      ctx.textAlign = 'center';
      ctx.fillText('k (key vector)', xk + vw / 2, 10);
      ctx.fillText('q × k', xp + vw / 2, 10);
      ctx.textAlign = 'left';
      ctx.fillText('score · weight', xs, 10);
      ctx.textAlign = 'right';
      ctx.fillText('q “' + AV.cut(lab.q[this.query] || '', 12) + '”', left - 6, 28);
      for (let e = 0; e < d; e++) { ctx.fillStyle = diverging(qi[e] / vmax); ctx.fillRect(xk + e * CELL, 22, CELL - 1, ROW - 4); }
      keys.forEach((key, r) => {
        const y = top + r * ROW;
        ctx.fillStyle = fg;
        ctx.textAlign = 'right';
        ctx.fillText(key.j + ' ' + AV.cut(lab.k[key.j] || '', 14), left - 6, y + ROW / 2);
        for (let e = 0; e < d; e++) {
          ctx.fillStyle = diverging(key.kj[e] / vmax);
          ctx.fillRect(xk + e * CELL, y + 2, CELL - 1, ROW - 4);
          ctx.fillStyle = diverging((qi[e] * key.kj[e]) / pmax);
          ctx.fillRect(xp + e * CELL, y + 2, CELL - 1, ROW - 4);
        }
        ctx.fillStyle = AV.cssVar('--accent') || '#2563eb';
        ctx.fillRect(xs + 60, y + 3, 120 * key.weight, ROW - 6);
        ctx.fillStyle = fg;
        ctx.textAlign = 'left';
        ctx.fillText(key.score.toFixed(2), xs, y + ROW / 2);
        ctx.fillText(key.weight.toFixed(3) + (isNaN(key.stored) ? '' : ' (' + key.stored.toFixed(3) + ')'), xs + 184, y + ROW / 2);
      });
      this.geo = { xk, xp, xs, top, d, keys, qi };
    }

    hover(e) {
      const g = this.geo;
      if (!g) return;
      const rect = this.canvas.getBoundingClientRect(), x = e.clientX - rect.left, y = e.clientY - rect.top;
      const r = Math.floor((y - g.top) / ROW), key = g.keys[r];
      if (!key) { this.app.tooltip(null); return; }
      const inK = x >= g.xk && x < g.xk + g.d * CELL, inP = x >= g.xp && x < g.xp + g.d * CELL;
      if (!inK && !inP) {
        this.app.tooltip('key ' + key.j + '\nscore ' + key.score.toPrecision(4) + '\nweight ' + key.weight.toPrecision(4) +
          (isNaN(key.stored) ? '' : ' (stored ' + key.stored.toPrecision(4) + ')'), e.clientX, e.clientY, { q: this.query, k: key.j, value: key.weight });
        return;
      }
      const c = Math.floor((x - (inK ? g.xk : g.xp)) / CELL), q = g.qi[c], k = key.kj[c];
      this.app.tooltip('key ' + key.j + ', component ' + c + '\nq ' + q.toPrecision(4) + '  k ' + k.toPrecision(4) + '\nq × k ' + (q * k).toPrecision(4),
        e.clientX, e.clientY, { q: this.query, k: key.j, value: q * k });
    }
  }
  AV.NeuronView = NeuronView;
})();
