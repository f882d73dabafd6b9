/* attnviz viewer: the Rows view. The query rows a page embeds at full resolution (attnviz html --rows A:B;
 * on long traces next to the pooled overview): one row over every key as bars (each pixel column the max of
 * its keys), a color strip, the ten strongest keys with their tokens, and exact values on hover. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  class RowView {
    constructor(el, app) {
      this.el = el;
      this.app = app;
      this.query = null;
      this.note = document.createElement('div');
      this.note.className = 'note';
      const qs = AV.querySelect(this, 'rows-query');
      this.qselect = qs.select;
      this.canvas = document.createElement('canvas');
      this.canvas.id = 'rows-canvas';
      this.top = document.createElement('table');
      this.top.id = 'rows-top';
      this.top.className = 'top';
      el.append(this.note, qs.label, this.canvas, this.top);
      this.canvas.addEventListener('mousemove', (e) => this.hover(e));
      this.canvas.addEventListener('mouseleave', () => app.tooltip(null));
    }

    /* The token labels of kind at full resolution (pooled pages carry them apart from the cell labels). */
    labels(kind) {
      const full = this.app.trace.meta.tokens_full;
      return (full && full[kind]) || this.app.trace.labels(kind);
    }

    /* The row of query q in entry r for the state's head: Float32Array(nk), or a message. */
    row(r, q) {
      const st = this.app.state, tr = this.app.trace, i = q - r.q0;
      const plane = (d, rows, h, n) => AV.decodePlane(tr.encoding, tr.block(d, rows, r.nk).vals, tr.block(d, rows, r.nk).scales, h, n, r.nk);
      if (st.head === 'mean') return plane(r.mean, r.nq, 0, r.nq).subarray(i * r.nk, (i + 1) * r.nk);
      if (!r.heads) return 'only the mean over heads of this layer fits the page: choose head "mean" (or a larger --max-mb)';
      const heads = typeof st.head === 'number' ? [st.head] : [...Array(r.heads).keys()];
      const out = new Float32Array(r.nk);
      heads.forEach((h, hi) => {
        const m = plane(r.head_rows, r.heads * r.nq, h, r.nq);
        for (let k = 0; k < r.nk; k++) {
          const v = m[i * r.nk + k];
          out[k] = hi === 0 ? v : st.head === 'max' ? Math.max(out[k], v) : Math.min(out[k], v);
        }
      });
      return out;
    }

    paint() {
      const app = this.app, st = app.state, tr = app.trace, entries = tr.rowsOf(st.kind, st.layer);
      this.last = null;
      if (!entries.length) {
        this.note.textContent = 'No rows are embedded for this ' + (tr.meta.rows ? 'layer' : 'page') +
          ': attnviz html TRACE --rows A:B embeds query rows A..B-1 at full resolution (every key, exact weights).';
        this.canvas.hidden = this.top.hidden = true;
        return;
      }
      const r = entries[0], lab = this.labels(st.kind);
      if (this.query === null || this.query < r.q0 || this.query >= r.q0 + r.nq) this.query = r.q0;
      if (this.qselect.options.length !== r.nq || +this.qselect.options[0].value !== r.q0) {
        this.qselect.textContent = '';
        for (let q = r.q0; q < r.q0 + r.nq; q++) this.qselect.add(new Option(q + ': ' + AV.cut(lab.q[q] || '', 24), String(q)));
      }
      this.qselect.value = String(this.query);
      const v = this.row(r, this.query);
      if (typeof v === 'string') { this.note.textContent = v; this.canvas.hidden = this.top.hidden = true; return; }
      this.canvas.hidden = this.top.hidden = false;
      this.draw(v, r, lab);
      this.last = { query: this.query, layer: st.layer, head: st.head, values: v };
      const what = typeof st.head === 'number' ? 'head ' + st.head : st.head + ' over heads';
      this.note.textContent = 'layer ' + st.layer + ' · ' + what + ' · query ' + this.query + ' “' + (lab.q[this.query] || '') + '” over ' +
        r.nk + ' keys at full resolution (each pixel column shows the max of its keys) · hover for exact weights';
    }

    draw(v, r, lab) {
      const app = this.app, st = app.state, fg = AV.cssVar('--fg') || '#222';
      const W = Math.max(300, this.el.clientWidth - 40), H = 180, strip = 14, top = 8, left = 50;
      const bins = Math.min(r.nk, W - left - 10), bw = (W - left - 10) / bins;
      const binMax = new Float32Array(bins), binArg = new Int32Array(bins).fill(-1);
      let max = 0;
      for (let k = 0; k < r.nk; k++) {
        const b = Math.floor((k * bins) / r.nk);
        if (binArg[b] < 0 || v[k] > binMax[b]) { binMax[b] = v[k]; binArg[b] = k; }
        if (v[k] > max) max = v[k];
      }
      const scale = AV.makeScale(app.lut(), max, st.log, st.contrast);
      const ctx = AV.sizeCanvas(this.canvas, W, top + H + strip + 34);
      ctx.fillStyle = fg;
      ctx.font = '11px "DejaVu Sans", sans-serif';
      ctx.textAlign = 'right';
      ctx.fillText(AV.fmt(scale.vmax), left - 6, top + 8);
      ctx.fillText('0', left - 6, top + H);
      for (let b = 0; b < bins; b++) {
        const t = Math.max(0, Math.min(1, scale.t(binMax[b]))), x = left + b * bw;
        ctx.fillStyle = scale.css(binMax[b]);
        ctx.fillRect(x, top + H * (1 - t), Math.max(1, bw - (bw > 3 ? 1 : 0)), H * t);
        ctx.fillRect(x, top + H + 4, Math.max(1, bw), strip);
      }
      ctx.fillStyle = fg;
      ctx.textAlign = 'center';
      for (let i = 0; i <= 4; i++) ctx.fillText(String(Math.round((i * (r.nk - 1)) / 4)), left + (i * (W - left - 10)) / 4, top + H + strip + 20);
      this.geo = { left, bw, bins, binMax, binArg, nk: r.nk, v, lab, top, H };
      /* the ten strongest keys */
      const order = [...Array(r.nk).keys()].sort((a, b) => v[b] - v[a]).slice(0, 10);
      this.top.textContent = '';
      const head = this.top.insertRow();
      for (const h of ['key', 'token', 'weight']) head.insertCell().textContent = h;
      for (const k of order) {
        const row = this.top.insertRow();
        row.insertCell().textContent = String(k);
        row.insertCell().textContent = lab.k[k] || '';
        row.insertCell().textContent = app.fmtWeight(v[k], 0);
      }
    }

    hover(e) {
      const g = this.geo;
      if (!g) return;
      const rect = this.canvas.getBoundingClientRect(), b = Math.floor((e.clientX - rect.left - g.left) / g.bw);
      if (b < 0 || b >= g.bins) { this.app.tooltip(null); return; }
      const a = Math.ceil((b * g.nk) / g.bins), z = Math.ceil(((b + 1) * g.nk) / g.bins) - 1, k = g.binArg[b];
      if (k < 0) { this.app.tooltip(null); return; }
      this.app.tooltip((a === z ? 'key ' + a : 'keys ' + a + '-' + z + ', strongest ' + k) + '  “' + (g.lab.k[k] || '') + '”\nweight ' +
        this.app.fmtWeight(g.v[k], 0) + ' from query ' + this.query, e.clientX, e.clientY, { q: this.query, k, value: g.v[k] });
    }
  }
  AV.RowView = RowView;
})();
