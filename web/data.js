/* attnviz viewer: the embedded trace (decoding, matrices, colors) and small helpers shared by the views.
 * The page carries <script id="av-meta"> (JSON) and <script id="av-data"> (base64 of the binary blob);
 * see docs/VIEWER.md for the layout. Nothing here touches the network. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  function b64ToBytes(s) {
    const bin = atob(s.replace(/\s+/g, ''));
    const n = bin.length, out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  AV.b64ToBytes = b64ToBytes;

  /* IEEE half -> float for all 65536 codes, built once */
  let halfTable = null;
  function halfLUT() {
    if (halfTable) return halfTable;
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, f = h & 1023;
      halfTable[h] = e === 0 ? s * f * Math.pow(2, -24) : e === 31 ? (f ? NaN : s * Infinity)
        : s * (1 + f / 1024) * Math.pow(2, e - 15);
    }
    return halfTable;
  }

  /* u8cbrt: code c of a row with scale s stands for (c / 255)^3 s (cube-root companding) */
  const CUBE = new Float32Array(256);
  for (let c = 0; c < 256; c++) CUBE[c] = Math.pow(c / 255, 3);

  /* Plane h (nq x nk) of an encoded block as a Float32Array: f16 halves, or u8cbrt codes with a scale per row. */
  function decodePlane(encoding, vals, scales, h, nq, nk) {
    const n = nq * nk, base = h * n, m = new Float32Array(n);
    if (encoding === 'f16') {
      const lut = halfLUT();
      for (let i = 0; i < n; i++) m[i] = lut[vals[base + i]];
    } else {
      for (let q = 0; q < nq; q++) {
        const f = scales[h * nq + q], o = q * nk;
        for (let k = 0; k < nk; k++) m[o + k] = CUBE[vals[base + o + k]] * f;
      }
    }
    return m;
  }
  AV.decodePlane = decodePlane;

  /* Half the quantization step of value v in a u8cbrt row of scale s (0 for f16): the "±" of tooltips. */
  AV.quantStep = function (encoding, scale, v) {
    if (encoding === 'f16' || !(scale > 0)) return 0;
    const c = Math.round(255 * Math.cbrt(Math.max(0, v) / scale));
    return scale * (Math.pow((c + 0.5) / 255, 3) - Math.pow(c / 255, 3));
  };

  /* How the page's numbers are stored, for the status line and the image view. */
  AV.precisionText = function (encoding) {
    return encoding === 'f16' ? 'float16 (3 significant digits)' : '8-bit cube-root companded per row';
  };

  class Trace {
    constructor(meta, bytes) {
      this.meta = meta;
      this.bytes = bytes;
      this.encoding = meta.encoding;
      /* the kinds this trace holds, in the engine's order, with their menu labels (meta.kinds) */
      this.kinds = meta.kinds.map((k) => k.kind);
      this.kindLabels = Object.fromEntries(meta.kinds.map((k) => [k.kind, k.label]));
      this.byKind = {};
      for (const s of meta.sets) {
        (this.byKind[s.kind] = this.byKind[s.kind] || [])[s.layer] = s;
        Object.assign(s, this.block(s, s.heads * s.nq, s.nk));
      }
      this.cache = new Map(); /* decoded heads, small LRU */
    }
    /* Typed views on an encoded block d {off, soff} of rows x cols values: {vals, scales (u8 only)}. */
    block(d, rows, cols) {
      const b = this.bytes, o = b.byteOffset;
      if (this.encoding === 'f16') return { vals: new Uint16Array(b.buffer, o + d.off, rows * cols) };
      if (this.encoding !== 'u8cbrt') throw new Error('unknown data encoding ' + this.encoding);
      return { vals: new Uint8Array(b.buffer, o + d.off, rows * cols), scales: new Float32Array(b.buffer, o + d.soff, rows) };
    }
    layers(kind) { return (this.byKind[kind] || []).length; }
    set(kind, layer) {
      const s = (this.byKind[kind] || [])[layer];
      if (!s) throw new Error('no ' + kind + ' attention for layer ' + layer);
      return s;
    }
    labels(kind) { return this.meta.labels[kind] || { q: [], k: [] }; }
    /* One head as Float32Array (nq * nk), decoded. */
    head(kind, layer, h) {
      const key = kind + '.' + layer + '.' + h;
      let m = this.cache.get(key);
      if (m) { this.cache.delete(key); this.cache.set(key, m); return m; }
      const s = this.set(kind, layer);
      m = decodePlane(this.encoding, s.vals, s.scales, h, s.nq, s.nk);
      this.cache.set(key, m);
      let budget = 0;
      for (const x of this.cache.values()) budget += x.length;
      while (budget > 24e6 && this.cache.size > 1) {
        const first = this.cache.keys().next().value;
        budget -= this.cache.get(first).length;
        this.cache.delete(first);
      }
      return m;
    }
    /* Quantization error bound of weight v (for "±" in tooltips): 0 for f16 (relative 2^-11). */
    step(kind, layer, h, q, v) {
      if (this.encoding === 'f16' || h < 0) return 0;
      const s = this.set(kind, layer);
      return AV.quantStep(this.encoding, s.scales[h * s.nq + q], v);
    }
    /* Pooled pages (long traces): {rows, cols, n_query, n_key, pool} of kind, or null. */
    pooled(kind) { return (this.meta.pooled && this.meta.pooled[kind]) || null; }
    /* The exact rows embedded for the Rows view: the entries of kind, layer. */
    rowsOf(kind, layer) { return (this.meta.rows || []).filter((r) => r.kind === kind && r.layer === layer); }
  }
  AV.Trace = Trace;

  /* "1-10, 15, 20-" -> sorted unique indices in [0, n); null for empty; throws on malformed input */
  AV.parseSubset = function (text, n) {
    text = (text || '').trim();
    if (!text) return null;
    const out = new Set();
    for (const part of text.split(',')) {
      const p = part.trim();
      if (!p) continue;
      const m = /^(\d*)\s*(-?)\s*(\d*)$/.exec(p);
      if (!m || (!m[1] && !m[3])) throw new Error('bad range "' + p + '"');
      const a = m[1] ? +m[1] : 0, b = m[2] ? (m[3] ? +m[3] : n - 1) : a;
      for (let i = a; i <= Math.min(b, n - 1); i++) out.add(i);
    }
    return Array.from(out).sort((x, y) => x - y);
  };

  /* The matrix a view shows. opt: {head: int|'mean'|'max', exclude: bool, qsel, ksel (index arrays or null)}.
   * Returns {rows, cols (token indices), data Float32Array(rows*cols), max, min}. Excluding the first token
   * drops query 0 and key 0 and renormalizes every row over the remaining keys (as attnviz render does). */
  AV.matrix = function (trace, kind, layer, opt) {
    const s = trace.set(kind, layer), off = opt.exclude ? 1 : 0;
    const all = (n) => { const a = []; for (let i = off; i < n; i++) a.push(i); return a; };
    const rows = (opt.qsel || all(s.nq)).filter((i) => i >= off && i < s.nq);
    const cols = (opt.ksel || all(s.nk)).filter((i) => i >= off && i < s.nk);
    const R = rows.length, C = cols.length;
    const heads = opt.head === 'mean' || opt.head === 'max' ? [...Array(s.heads).keys()] : [opt.head];
    const isMax = opt.head === 'max', c0 = C ? cols[0] : 0, contiguous = C > 0 && cols[C - 1] - c0 === C - 1;
    let data;
    if (heads.length === 1 && !off && R === s.nq && C === s.nk && contiguous && rows[R - 1] === R - 1) {
      data = trace.head(kind, layer, heads[0]); /* the whole head: shared with the cache, read-only */
    } else {
      data = new Float32Array(R * C);
      for (let hi = 0; hi < heads.length; hi++) {
        const m = trace.head(kind, layer, heads[hi]);
        for (let r = 0; r < R; r++) {
          const o = rows[r] * s.nk, d = r * C;
          let norm = 1;
          if (off) {
            let sum = 0;
            for (let k = 1; k < s.nk; k++) sum += m[o + k];
            norm = sum > 0 ? 1 / sum : 1;
          }
          if (heads.length === 1 && contiguous && norm === 1) data.set(m.subarray(o + c0, o + c0 + C), d);
          else if (isMax) for (let c = 0; c < C; c++) { const v = m[o + cols[c]] * norm; if (hi === 0 || v > data[d + c]) data[d + c] = v; }
          else if (contiguous) for (let c = 0; c < C; c++) data[d + c] += m[o + c0 + c] * norm;
          else for (let c = 0; c < C; c++) data[d + c] += m[o + cols[c]] * norm;
        }
      }
    }
    if (opt.head === 'mean') for (let i = 0; i < data.length; i++) data[i] /= heads.length;
    let max = 0, min = Infinity;
    for (let i = 0; i < data.length; i++) { const v = data[i]; if (v > max) max = v; if (v < min) min = v; }
    return { rows, cols, data, max, min: min === Infinity ? 0 : min };
  };

  /* Color scale: linear over [0, vmax] or log10 over [log10(vmax) - 4, log10(vmax)]; contrast c saturates at
   * max / c. lut: 256 RGB triples from the page (the same tables as attnviz render). */
  AV.makeScale = function (lut, max, log, contrast, signed) {
    const vmax = (max > 0 ? max : 1) / (contrast || 1);
    const hi = Math.log10(vmax), lo = hi - 4;
    log = log && !signed; /* signed values (differences): linear over [-vmax, vmax], 0 in the middle */
    const t = signed ? (v) => 0.5 + v / (2 * vmax) : log ? (v) => (v > 0 ? (Math.log10(v) - lo) / (hi - lo) : 0) : (v) => v / vmax;
    const index = (v) => { const x = t(v); return x >= 1 ? 255 : x > 0 ? Math.floor(x * 256) : 0; };
    /* 32-bit RGBA little-endian words for ImageData */
    const words = new Uint32Array(256);
    for (let i = 0; i < 256; i++) words[i] = 0xff000000 | (lut[3 * i + 2] << 16) | (lut[3 * i + 1] << 8) | lut[3 * i];
    const css = (v) => { const i = index(v); return 'rgb(' + lut[3 * i] + ',' + lut[3 * i + 1] + ',' + lut[3 * i + 2] + ')'; };
    return { vmax, log, lo, hi, t, index, words, css, lut, signed: !!signed };
  };

  /* Paints matrix data (R x C) into an offscreen canvas at one pixel per cell. */
  AV.matrixCanvas = function (data, R, C, scale) {
    const cv = document.createElement('canvas');
    cv.width = Math.max(1, C);
    cv.height = Math.max(1, R);
    const ctx = cv.getContext('2d');
    const img = ctx.createImageData(cv.width, cv.height);
    const px = new Uint32Array(img.data.buffer), w = scale.words, n = R * C;
    if (scale.log || scale.signed) for (let i = 0; i < n; i++) px[i] = w[scale.index(data[i])];
    else {
      const f = 256 / scale.vmax;
      for (let i = 0; i < n; i++) { const x = (data[i] * f) | 0; px[i] = w[x > 255 ? 255 : x < 0 ? 0 : x]; }
    }
    ctx.putImageData(img, 0, 0);
    return cv;
  };

  /* Vertical colorbar with tick values drawn at (x, y), size (w, h). */
  AV.drawColorbar = function (ctx, scale, x, y, w, h, fg) {
    for (let i = 0; i < h; i++) {
      const k = Math.min(255, Math.floor(((h - 1 - i) / h) * 256 + 0.5));
      ctx.fillStyle = 'rgb(' + scale.lut[3 * k] + ',' + scale.lut[3 * k + 1] + ',' + scale.lut[3 * k + 2] + ')';
      ctx.fillRect(x, y + i, w, 1);
    }
    let ticks = [];
    if (scale.ticks) ticks = scale.ticks.slice(); /* signed scales (attribution.js) bring their own */
    else if (scale.log) for (let e = Math.ceil(scale.lo - 1e-9); e <= scale.hi + 1e-9; e++) ticks.push(Math.pow(10, e));
    else {
      const raw = scale.vmax / 5, mag = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = raw / mag > 5 ? 10 * mag : raw / mag > 2 ? 5 * mag : raw / mag > 1 ? 2 * mag : mag;
      for (let v = scale.signed ? -Math.floor(scale.vmax / step) * step : 0; v <= scale.vmax * (1 + 1e-6); v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    ctx.fillStyle = fg;
    ctx.strokeStyle = fg;
    ctx.font = '11px "DejaVu Sans", sans-serif';
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'left';
    for (const v of ticks) {
      const ty = y + h * (1 - Math.min(1, Math.max(0, scale.t(v))));
      ctx.fillRect(x + w, Math.round(ty), 4, 1);
      ctx.fillText(AV.fmt(v), x + w + 6, ty);
    }
  };

  AV.fmt = function (v) {
    if (v === 0) return '0';
    const a = Math.abs(v);
    return a >= 0.001 && a < 1e4 ? String(+v.toPrecision(3)) : v.toExponential(1);
  };

  /* Device-pixel-ratio aware canvas sizing; returns the 2d context scaled to CSS px. */
  AV.sizeCanvas = function (cv, w, h) {
    const dpr = window.devicePixelRatio || 1;
    cv.width = Math.max(1, Math.round(w * dpr));
    cv.height = Math.max(1, Math.round(h * dpr));
    cv.style.width = w + 'px';
    cv.style.height = h + 'px';
    const ctx = cv.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  };

  AV.cssVar = (name) => getComputedStyle(document.body).getPropertyValue(name).trim();

  /* A "query" select for a view: {label, select}; choosing an option sets view.query and repaints. */
  AV.querySelect = function (view, id) {
    const select = document.createElement('select'), label = document.createElement('label');
    select.id = id;
    select.addEventListener('change', () => { view.query = +select.value; view.paint(); });
    label.append('query ', select);
    return { label, select };
  };

  /* Label cut to n characters with an ellipsis. */
  AV.cut = (s, n) => (s.length > n ? s.slice(0, n - 1) + '…' : s);
})();
