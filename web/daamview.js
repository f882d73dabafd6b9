/* attnviz viewer: DAAM word maps of text-to-image traces (meta.daam, from `attnviz run` on a t2i model).
 * A word picker (a word that occurs twice, like "a", is one group), the range of sampling steps, the
 * denoiser layers and the heads summed (all heads, or one), and the word's map laid over the generated
 * image: 45 % image, 55 % colormap, as `attnviz render --word` draws it. The maps are computed here from the
 * page's copy of daam.raw (per step, layer and head) exactly as docs/T2I_MODEL.md section 9 says (sum,
 * bilinear upsampling, min-max scaling), so any selection matches the C library's av_trace_daam. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  /* One bilinear tap of output pixel i: lower cell, upper cell, weight of the upper one (align_corners false). */
  function tap(i, g, size) {
    const s = Math.max(0, ((i + 0.5) * g) / size - 0.5), c0 = Math.floor(s);
    return [c0, Math.min(c0 + 1, g - 1), s - c0];
  }

  /* The map (size x size, in [0, 1]) of the tokens `words` over steps [s0, s1), the layers in `layers` and
   * the heads in `heads`; raw: Float32Array (steps, layers, heads, S, g*g). Tokens of a group are each
   * normalized, summed, renormalized. */
  AV.daamMap = function (d, raw, words, s0, s1, layers, heads) {
    const gg = d.grid * d.grid, n = d.size * d.size, out = new Float64Array(n);
    const norm = (v) => {
      let lo = Infinity, hi = -Infinity;
      for (const x of v) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
      return v.map((x) => (x - lo) / (hi - lo + 1e-8));
    };
    for (const j of words) {
      const sum = new Float64Array(gg), up = new Float64Array(n);
      for (let i = s0; i < s1; i++)
        for (const l of layers)
          for (const h of heads) {
            const o = (((i * d.layers + l) * d.heads + h) * d.tokens + j) * gg;
            for (let k = 0; k < gg; k++) sum[k] += raw[o + k];
          }
      for (let y = 0; y < d.size; y++) {
        const [y0, y1, ly] = tap(y, d.grid, d.size);
        for (let x = 0; x < d.size; x++) {
          const [x0, x1, lx] = tap(x, d.grid, d.size), g = d.grid;
          up[y * d.size + x] = (1 - ly) * ((1 - lx) * sum[y0 * g + x0] + lx * sum[y0 * g + x1]) +
            ly * ((1 - lx) * sum[y1 * g + x0] + lx * sum[y1 * g + x1]);
        }
      }
      const m = norm(up);
      for (let k = 0; k < n; k++) out[k] += m[k];
    }
    return words.length > 1 ? norm(out) : out;
  };

  function el(tag, props, ...kids) {
    const e = Object.assign(document.createElement(tag), props || {});
    e.append(...kids);
    return e;
  }

  class DaamView {
    constructor(root, app) {
      const d = (this.d = app.trace.meta.daam), b = app.trace.bytes;
      this.el = root;
      this.app = app;
      this.raw = new Float32Array(b.buffer, b.byteOffset + d.raw,
        d.steps * d.layers * d.heads * d.tokens * d.grid * d.grid);
      this.img = new Float32Array(b.buffer, b.byteOffset + d.image, 3 * d.size * d.size);
      this.labels = JSON.parse(app.trace.meta.meta.prompt_tokens || '[]');
      const first = this.labels.findIndex((w) => !/^\[(CLS|SEP|PAD)\]$/.test(w));
      this.word = first >= 0 ? this.labels[first] : this.labels[0];
      this.s0 = 0;
      this.s1 = d.steps;
      this.layers = new Set([...Array(d.layers).keys()]);
      this.head = -1; /* -1: every head summed; else that head alone */
      const words = el('div', { className: 'note', id: 'daam-words' }, 'word ');
      for (const w of [...new Set(this.labels)]) {
        const bt = el('button', { textContent: w, className: 'daam-word' });
        bt.dataset.word = w;
        bt.addEventListener('click', () => { this.word = w; this.paint(); });
        words.append(bt);
      }
      const range = (id, v) => el('input', { type: 'range', min: 0, max: d.steps, step: 1, value: v, id });
      this.from = range('daam-step0', 0);
      this.to = range('daam-step1', d.steps);
      for (const r of [this.from, this.to])
        r.addEventListener('input', () => {
          this.s0 = Math.min(+this.from.value, d.steps - 1);
          this.s1 = Math.max(+this.to.value, this.s0 + 1);
          this.paint();
        });
      this.stepInfo = el('span');
      const layers = el('span', {}, ' layers ');
      for (let l = 0; l < d.layers; l++) {
        const cb = el('input', { type: 'checkbox', checked: true, id: 'daam-layer-' + l });
        cb.addEventListener('change', () => { if (cb.checked) this.layers.add(l); else this.layers.delete(l); this.paint(); });
        layers.append(el('label', {}, cb, String(l), ' '));
      }
      this.headPick = el('select', { id: 'daam-head' }, el('option', { value: '-1', textContent: 'all (summed)' }));
      for (let h = 0; h < d.heads; h++) this.headPick.append(el('option', { value: String(h), textContent: String(h) }));
      this.headPick.addEventListener('change', () => { this.head = +this.headPick.value; this.paint(); });
      const ctl = el('div', { className: 'note' }, 'steps from ', this.from, ' to ', this.to, this.stepInfo, layers,
        ' heads ', this.headPick);
      this.imgCanvas = el('canvas', { id: 'daam-image', width: d.size, height: d.size });
      this.mapCanvas = el('canvas', { id: 'daam-overlay', width: d.size, height: d.size });
      for (const c of [this.imgCanvas, this.mapCanvas]) Object.assign(c.style, { width: '256px', height: '256px', imageRendering: 'pixelated', marginRight: '12px' });
      this.caption = el('div', { className: 'note', id: 'daam-caption' });
      root.append(words, ctl, el('div', { className: 'row' }, this.imgCanvas, this.mapCanvas), this.caption,
        el('p', { className: 'note', id: 'daam-caveat', textContent: d.caveat }));
      this.drawImage(this.imgCanvas, null);
    }

    /* The image, or the image blended with heat (size x size in [0, 1]) on the current colormap. */
    drawImage(cv, heat) {
      const d = this.d, n = d.size * d.size, ctx = cv.getContext('2d'), im = ctx.createImageData(d.size, d.size);
      const lut = this.app.lut();
      for (let i = 0; i < n; i++) {
        const k = heat ? Math.min(255, Math.floor(Math.max(0, heat[i]) * 256)) : 0;
        for (let c = 0; c < 3; c++) {
          const v = Math.max(0, Math.min(1, this.img[c * n + i])) * 255;
          im.data[4 * i + c] = Math.round(heat ? 0.45 * v + 0.55 * lut[3 * k + c] : v);
        }
        im.data[4 * i + 3] = 255;
      }
      ctx.putImageData(im, 0, 0);
    }

    paint() {
      const d = this.d, words = [];
      this.labels.forEach((w, j) => { if (w === this.word) words.push(j); });
      const layers = [...this.layers].sort((a, b) => a - b);
      this.el.querySelectorAll('.daam-word').forEach((b) => b.classList.toggle('active', b.dataset.word === this.word));
      const ts = JSON.parse(this.app.trace.meta.meta.timesteps || '[]');
      this.stepInfo.textContent = ` (steps ${this.s0}..${this.s1 - 1}, t = ${ts[this.s0]}..${ts[this.s1 - 1]})`;
      if (!layers.length) {
        this.map = null;
        this.caption.textContent = 'no layer selected';
        this.drawImage(this.mapCanvas, null);
        return;
      }
      const heads = this.head >= 0 ? [this.head] : [...Array(d.heads).keys()];
      this.headPick.value = String(this.head);
      this.map = AV.daamMap(d, this.raw, words, this.s0, this.s1, layers, heads);
      this.drawImage(this.mapCanvas, this.map);
      const hs = this.head >= 0 ? `head ${this.head}` : `all ${d.heads} heads`;
      this.caption.textContent = `"${this.word}": cross-attention summed over steps [${this.s0}, ${this.s1}), layers ${layers.join(', ')}, ${hs}`;
    }
  }
  AV.DaamView = DaamView;
})();
