/* attnviz zoomable attention map (used by serve.js; inert elsewhere).
 *
 * Shows one head (or the mean/max over heads) of an n_query x n_key attention matrix on a canvas and lets the
 * user pan and zoom like a map, from the whole sequence down to single cells with exact values. Nothing is
 * computed here: the picture is made of tiles the server computes on demand (GET .../tile, pooled with max
 * or mean), requested asynchronously, at most a few at a time, with stale requests cancelled
 * (AbortController) as soon as the view moves on.
 *
 * Levels: the overview is one tile of the whole matrix pooled to at most OVERVIEW cells a side; when the
 * view is zoomed past it, tiles of TILE x TILE cells are used, each cell pooling f x f entries (f a power of
 * two, f = 1: exact values). Missing tiles show the overview (stretched) until they arrive. */
(function () {
'use strict';

class AvZoomMap {
  constructor(container, opts) {
    this.el = container;
    this.opts = opts; /* {tileUrl(p) -> url, rowUrl(q) -> url, tooltip: element, onView(info), overview} */
    this.overview = opts.overview > 0 ? opts.overview : AvZoomMap.OVERVIEW;
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'sv-map-canvas';
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('aria-label', 'zoomable attention map: wheel or +/- to zoom, drag or arrows to pan');
    container.appendChild(this.canvas);
    this.ctx = this.canvas.getContext('2d');
    this.src = null; /* {key, nq, nk, qLabels, kLabels} */
    this.tiles = new Map(); /* key -> tile, in LRU order (oldest first) */
    this.rows = new Map(); /* source key + ':' + q -> Float32Array (exact rows for the tooltip) */
    this.inflight = new Map(); /* tile key -> AbortController */
    this.cmap = null;
    this.scaleMode = 'linear';
    this.vmax = 1;
    this.colorVersion = 0;
    this.view = {k: 0, q: 0, s: 1};
    this.minS = 1;
    this.hover = null;
    this.dirty = false;
    this.stats = {requested: 0, cancelled: 0, loaded: 0};
    this.bindEvents();
    new ResizeObserver(() => this.resize()).observe(container);
    this.resize();
  }

  /* ---- source, colors ---- */

  setSource(src) {
    for (const [key, ctl] of this.inflight) if (!key.startsWith(src.key + '|')) this.abort(key, ctl);
    const same = this.src && this.src.nq === src.nq && this.src.nk === src.nk;
    this.src = src;
    this.rowTimer && clearTimeout(this.rowTimer);
    if (!same) this.fit();
    this.requestOverview();
    this.redraw();
  }

  setColors(table, scaleMode) {
    this.cmap = table;
    this.scaleMode = scaleMode || 'linear';
    this.colorVersion++;
    this.redraw();
  }

  color(v) {
    let t = this.vmax > 0 ? v / this.vmax : 0;
    if (this.scaleMode === 'sqrt') t = Math.sqrt(Math.max(t, 0));
    else if (this.scaleMode === 'log') t = t > 0 ? Math.max(0, 1 + Math.log10(t) / 4) : 0; /* 1e-4 .. 1 */
    const i = Math.max(0, Math.min(255, Math.floor(t * 256))) * 3;
    return this.cmap ? [this.cmap[i], this.cmap[i + 1], this.cmap[i + 2]] : [i / 3, i / 3, i / 3];
  }

  /* ---- geometry ---- */

  static get MARGIN_LEFT() { return 128; }
  static get MARGIN_TOP() { return 112; }
  static get TILE() { return 256; }
  static get OVERVIEW() { return 1024; }
  static get MAX_SCALE() { return 64; }

  plotRect() {
    const w = this.cssW - AvZoomMap.MARGIN_LEFT - 8, h = this.cssH - AvZoomMap.MARGIN_TOP - 8;
    return {x: AvZoomMap.MARGIN_LEFT, y: AvZoomMap.MARGIN_TOP, w: Math.max(w, 16), h: Math.max(h, 16)};
  }

  resize() {
    const r = this.el.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    this.cssW = Math.max(200, Math.floor(r.width));
    this.cssH = Math.max(200, Math.floor(r.height));
    this.canvas.width = Math.floor(this.cssW * dpr);
    this.canvas.height = Math.floor(this.cssH * dpr);
    this.canvas.style.width = this.cssW + 'px';
    this.canvas.style.height = this.cssH + 'px';
    this.dpr = dpr;
    if (this.src && this.atFit) this.fit();
    else if (this.src) this.clampView();
    this.redraw();
  }

  fit() {
    if (!this.src) return;
    const p = this.plotRect();
    this.minS = Math.min(p.w / this.src.nk, p.h / this.src.nq);
    this.view = {k: 0, q: 0, s: this.minS};
    this.atFit = true; /* stays fitted when the page is resized, until the user zooms or pans */
    this.redraw();
  }

  clampView() {
    const p = this.plotRect(), v = this.view, src = this.src;
    this.minS = Math.min(p.w / src.nk, p.h / src.nq);
    v.s = Math.max(this.minS, Math.min(AvZoomMap.MAX_SCALE, v.s));
    const visK = p.w / v.s, visQ = p.h / v.s;
    v.k = visK >= src.nk ? 0 : Math.max(0, Math.min(src.nk - visK, v.k));
    v.q = visQ >= src.nq ? 0 : Math.max(0, Math.min(src.nq - visQ, v.q));
  }

  /* zooms by factor keeping the data point under (x, y) (CSS pixels in the canvas) in place */
  zoomAt(factor, x, y) {
    if (!this.src) return;
    const p = this.plotRect(), v = this.view;
    if (x === undefined) { x = p.x + p.w / 2; y = p.y + p.h / 2; }
    const k = v.k + (x - p.x) / v.s, q = v.q + (y - p.y) / v.s;
    this.atFit = false;
    v.s = Math.max(this.minS, Math.min(AvZoomMap.MAX_SCALE, v.s * factor));
    v.k = k - (x - p.x) / v.s;
    v.q = q - (y - p.y) / v.s;
    this.clampView();
    this.redraw();
  }

  panBy(dx, dy) {
    this.atFit = false;
    this.view.k -= dx / this.view.s;
    this.view.q -= dy / this.view.s;
    this.clampView();
    this.redraw();
  }

  /* centers cell (q, k) at the largest zoom */
  zoomToCell(q, k, s) {
    const p = this.plotRect();
    this.atFit = false;
    this.view.s = s || AvZoomMap.MAX_SCALE;
    this.view.k = k + 0.5 - p.w / 2 / this.view.s;
    this.view.q = q + 0.5 - p.h / 2 / this.view.s;
    this.clampView();
    this.redraw();
  }

  /* screen position (CSS px) of the center of cell (q, k) */
  cellCenter(q, k) {
    const p = this.plotRect(), v = this.view;
    return {x: p.x + (k + 0.5 - v.k) * v.s, y: p.y + (q + 0.5 - v.q) * v.s};
  }

  /* entries per overview cell along the longer axis (1: the overview holds exact values) */
  ovFactor() {
    const src = this.src;
    return Math.max(src.nq / Math.min(src.nq, this.overview), src.nk / Math.min(src.nk, this.overview));
  }

  /* pooling factor of the tiles for the current zoom (0: the overview is enough) */
  level() {
    const ovF = this.ovFactor(), s = this.view.s;
    if (ovF <= 1 || ovF * s <= 1.5) return 0; /* overview cells are at most 1.5 screen pixels */
    let f = 1;
    while (f * 2 * s <= 1 && f * 2 < ovF) f *= 2;
    return f;
  }

  /* whether level f shows exact values */
  isExact(f) { return f === 1 || (f === 0 && this.ovFactor() <= 1); }

  /* ---- tiles ---- */

  tileKey(f, tq, tk) { return this.src.key + '|' + f + ':' + tq + ':' + tk; }

  overviewKey() { return this.src.key + '|ov'; }

  tileSpec(f, tq, tk) {
    const span = AvZoomMap.TILE * f, src = this.src;
    const q0 = tq * span, k0 = tk * span, q1 = Math.min(src.nq, q0 + span), k1 = Math.min(src.nk, k0 + span);
    return {q0, q1, k0, k1, rows: Math.ceil((q1 - q0) / f), cols: Math.ceil((k1 - k0) / f)};
  }

  requestOverview() {
    const src = this.src, key = this.overviewKey();
    if (this.tiles.has(key) || this.inflight.has(key)) return;
    const spec = {q0: 0, q1: src.nq, k0: 0, k1: src.nk, rows: Math.min(src.nq, this.overview),
                  cols: Math.min(src.nk, this.overview)};
    this.fetchTile(key, spec, true);
  }

  fetchTile(key, spec, overview) {
    const ctl = new AbortController();
    this.inflight.set(key, ctl);
    this.stats.requested++;
    const srcKey = this.src.key;
    fetch(this.opts.tileUrl(spec), {signal: ctl.signal})
      .then(async (resp) => {
        if (!resp.ok) {
          let msg = resp.status + '';
          try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
          throw new Error(msg);
        }
        return resp.arrayBuffer();
      })
      .then((buf) => {
        if (this.inflight.get(key) !== ctl) return;
        this.inflight.delete(key);
        const values = new Float32Array(buf);
        if (values.length !== spec.rows * spec.cols) throw new Error('tile has ' + values.length + ' values');
        let max = 0;
        for (let i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
        const tile = {key, spec, values, max, bitmap: null, version: -1, overview};
        this.tiles.set(key, tile);
        this.stats.loaded++;
        if (overview && srcKey === this.src.key) this.vmax = this.opts.autoScale ? Math.max(max, 1e-9) : 1;
        this.evictTiles();
        this.redraw();
      })
      .catch((e) => {
        if (this.inflight.get(key) === ctl) this.inflight.delete(key);
        if (e.name === 'AbortError') return;
        if (this.opts.onError) this.opts.onError('tile: ' + e.message);
      });
  }

  abort(key, ctl) {
    ctl.abort();
    this.inflight.delete(key);
    this.stats.cancelled++;
  }

  /* keeps at most 128 tiles (least recently drawn go first; the current overview stays): about 64 MB */
  evictTiles() {
    const max = 128, keep = this.src ? this.overviewKey() : '';
    if (this.tiles.size <= max) return;
    for (const key of this.tiles.keys()) {
      if (this.tiles.size <= max) break;
      if (key !== keep) this.tiles.delete(key);
    }
  }

  touch(tile) { /* LRU: re-insert at the end */
    this.tiles.delete(tile.key);
    this.tiles.set(tile.key, tile);
  }

  bitmap(tile) {
    if (tile.bitmap && tile.version === this.colorVersion && tile.vmax === this.vmax) return tile.bitmap;
    const {rows, cols} = tile.spec;
    if (!tile.bitmap) {
      tile.bitmap = document.createElement('canvas');
      tile.bitmap.width = cols;
      tile.bitmap.height = rows;
    }
    const bctx = tile.bitmap.getContext('2d'), img = bctx.createImageData(cols, rows), d = img.data;
    for (let i = 0; i < rows * cols; i++) {
      const c = this.color(tile.values[i]);
      d[4 * i] = c[0]; d[4 * i + 1] = c[1]; d[4 * i + 2] = c[2]; d[4 * i + 3] = 255;
    }
    bctx.putImageData(img, 0, 0);
    tile.version = this.colorVersion;
    tile.vmax = this.vmax;
    return tile.bitmap;
  }

  /* visible tile indices of level f */
  visibleTiles(f) {
    const p = this.plotRect(), v = this.view, span = AvZoomMap.TILE * f, src = this.src;
    const qa = Math.max(0, Math.floor(v.q / span)), qb = Math.min(Math.ceil(src.nq / span), Math.ceil((v.q + p.h / v.s) / span));
    const ka = Math.max(0, Math.floor(v.k / span)), kb = Math.min(Math.ceil(src.nk / span), Math.ceil((v.k + p.w / v.s) / span));
    const out = [];
    const cq = (v.q + p.h / v.s / 2) / span, ck = (v.k + p.w / v.s / 2) / span;
    for (let tq = qa; tq < qb; tq++) for (let tk = ka; tk < kb; tk++) out.push({tq, tk, d: Math.hypot(tq + 0.5 - cq, tk + 0.5 - ck)});
    out.sort((a, b) => a.d - b.d); /* the center first */
    return out;
  }

  schedule(f, vis) {
    const want = new Set(vis.map((t) => this.tileKey(f, t.tq, t.tk)));
    want.add(this.overviewKey());
    for (const [key, ctl] of this.inflight) if (!want.has(key)) this.abort(key, ctl); /* stale */
    for (const t of vis) {
      if (this.inflight.size >= 4) break;
      const key = this.tileKey(f, t.tq, t.tk);
      if (this.tiles.has(key) || this.inflight.has(key)) continue;
      this.fetchTile(key, this.tileSpec(f, t.tq, t.tk), false);
    }
  }

  /* ---- drawing ---- */

  redraw() {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => { this.dirty = false; this.draw(); });
  }

  drawTile(tile, p) {
    const v = this.view, s = tile.spec;
    const x = p.x + (s.k0 - v.k) * v.s, y = p.y + (s.q0 - v.q) * v.s;
    this.ctx.drawImage(this.bitmap(tile), x, y, (s.k1 - s.k0) * v.s, (s.q1 - s.q0) * v.s);
  }

  draw() {
    const ctx = this.ctx, dpr = this.dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const style = getComputedStyle(this.el);
    ctx.fillStyle = style.getPropertyValue('--sv-bg').trim() || '#fff';
    ctx.fillRect(0, 0, this.cssW, this.cssH);
    if (!this.src) return;
    this.clampView();
    const p = this.plotRect(), v = this.view, src = this.src;
    ctx.save();
    ctx.beginPath();
    ctx.rect(p.x, p.y, Math.min(p.w, src.nk * v.s), Math.min(p.h, src.nq * v.s));
    ctx.clip();
    ctx.imageSmoothingEnabled = false;
    ctx.fillStyle = '#888';
    ctx.fillRect(p.x, p.y, p.w, p.h);
    const ov = this.tiles.get(this.overviewKey());
    if (ov) { this.touch(ov); this.drawTile(ov, p); }
    const f = this.level();
    let vis = [];
    if (f > 0) {
      vis = this.visibleTiles(f);
      for (const t of vis) {
        const tile = this.tiles.get(this.tileKey(f, t.tq, t.tk));
        if (tile) { this.touch(tile); this.drawTile(tile, p); }
      }
    }
    this.schedule(f, f > 0 ? vis : []);
    if (this.isExact(f) && v.s >= 30) this.drawValues(p);
    this.drawHover(p);
    ctx.restore();
    this.drawAxes(p);
    if (this.opts.onView) this.opts.onView(this.info(f));
  }

  /* exact values printed in the cells when they are large enough */
  drawValues(p) {
    const ctx = this.ctx, v = this.view, src = this.src;
    ctx.font = Math.min(12, Math.floor(v.s / 3.2)) + 'px sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    const q0 = Math.floor(v.q), q1 = Math.min(src.nq, Math.ceil(v.q + p.h / v.s));
    const k0 = Math.floor(v.k), k1 = Math.min(src.nk, Math.ceil(v.k + p.w / v.s));
    for (let q = q0; q < q1; q++) for (let k = k0; k < k1; k++) {
      const val = this.exactValue(q, k), pt0 = this.cellCenter(q, k);
      if (val === null || pt0.x < p.x || pt0.y < p.y) continue; /* only cells whose center is visible */
      const c = this.color(val), light = c[0] * 0.3 + c[1] * 0.59 + c[2] * 0.11 > 140;
      ctx.fillStyle = light ? '#000' : '#fff';
      const pt = pt0;
      ctx.fillText(val === 0 ? '0' : val.toPrecision(2), pt.x, pt.y);
    }
  }

  drawHover(p) {
    const h = this.hover;
    if (!h) return;
    const v = this.view, ctx = this.ctx;
    ctx.strokeStyle = '#ff3b30';
    ctx.lineWidth = 1.5;
    ctx.strokeRect(p.x + (h.k0 - v.k) * v.s, p.y + (h.q0 - v.q) * v.s, Math.max(2, (h.k1 - h.k0) * v.s), Math.max(2, (h.q1 - h.q0) * v.s));
  }

  drawAxes(p) {
    const ctx = this.ctx, v = this.view, src = this.src, style = getComputedStyle(this.el);
    const fg = style.getPropertyValue('--sv-fg').trim() || '#222';
    ctx.fillStyle = fg;
    ctx.strokeStyle = fg;
    const q0 = Math.max(0, Math.floor(v.q)), q1 = Math.min(src.nq, Math.ceil(v.q + p.h / v.s));
    const k0 = Math.max(0, Math.floor(v.k)), k1 = Math.min(src.nk, Math.ceil(v.k + p.w / v.s));
    const readable = v.s >= 11;
    ctx.font = (readable ? Math.min(13, Math.floor(v.s * 0.8)) : 11) + 'px sans-serif';
    /* query axis (left), clipped to the plot's rows */
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, p.y, p.x, p.h);
    ctx.clip();
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    const stepQ = readable ? 1 : niceStep(50 / v.s);
    for (let q = Math.ceil(q0 / stepQ) * stepQ; q < q1; q += stepQ) {
      const y = p.y + (q + 0.5 - v.q) * v.s;
      const text = readable ? clip(label(src.qLabels, q), 16) : String(q);
      ctx.fillText(text, p.x - 6, y);
    }
    ctx.restore();
    /* key axis (top, rotated), clipped to the plot's columns */
    ctx.save();
    ctx.beginPath();
    ctx.rect(p.x, 0, this.cssW - p.x, p.y);
    ctx.clip();
    const stepK = readable ? 1 : niceStep(50 / v.s);
    ctx.textAlign = 'left';
    for (let k = Math.ceil(k0 / stepK) * stepK; k < k1; k += stepK) {
      const x = p.x + (k + 0.5 - v.k) * v.s;
      ctx.save();
      ctx.translate(x, p.y - 6);
      ctx.rotate(-Math.PI / 3);
      ctx.fillText(readable ? clip(label(src.kLabels, k), 14) : String(k), 0, 0);
      ctx.restore();
    }
    ctx.restore();
    ctx.font = '11px sans-serif';
    ctx.textAlign = 'left';
    ctx.fillText('queries ↓', 4, p.y - 12);
    ctx.fillText('keys →', 4, 14);
  }

  info(f) {
    const p = this.plotRect(), v = this.view;
    return {
      level: f, zoom: v.s, q0: Math.floor(v.q), q1: Math.min(this.src.nq, Math.ceil(v.q + p.h / v.s)),
      k0: Math.floor(v.k), k1: Math.min(this.src.nk, Math.ceil(v.k + p.w / v.s)), inflight: this.inflight.size,
      exact: this.isExact(f),
    };
  }

  /* ---- values under the pointer ---- */

  /* value of cell (q, k) from a loaded exact tile (f = 1), an exact row, or null */
  exactValue(q, k) {
    const span = AvZoomMap.TILE;
    let tile = this.tiles.get(this.tileKey(1, Math.floor(q / span), Math.floor(k / span)));
    if (!tile && this.ovFactor() <= 1) tile = this.tiles.get(this.overviewKey());
    if (tile) return tile.values[(q - tile.spec.q0) * tile.spec.cols + (k - tile.spec.k0)];
    const row = this.rows.get(this.src.key + ':' + q);
    return row ? row[k] : null;
  }

  /* the pooled cell under (q, k) at level f: its block and value */
  pooledCell(f, q, k) {
    let tile;
    if (f > 0) tile = this.tiles.get(this.tileKey(f, Math.floor(q / (AvZoomMap.TILE * f)), Math.floor(k / (AvZoomMap.TILE * f))));
    if (!tile) tile = this.tiles.get(this.overviewKey());
    if (!tile) return null;
    const s = tile.spec, r = cellIndex(q - s.q0, s.q1 - s.q0, s.rows), c = cellIndex(k - s.k0, s.k1 - s.k0, s.cols);
    return {
      q0: s.q0 + Math.floor(r * (s.q1 - s.q0) / s.rows), q1: s.q0 + Math.floor((r + 1) * (s.q1 - s.q0) / s.rows),
      k0: s.k0 + Math.floor(c * (s.k1 - s.k0) / s.cols), k1: s.k0 + Math.floor((c + 1) * (s.k1 - s.k0) / s.cols),
      value: tile.values[r * s.cols + c],
    };
  }

  fetchRow(q) {
    const key = this.src.key + ':' + q;
    if (this.rows.has(key) || this.rowCtl) { if (this.rowCtl && this.rowCtl.q !== key) { this.rowCtl.abort(); this.rowCtl = null; } else return; }
    const ctl = new AbortController();
    ctl.q = key;
    this.rowCtl = ctl;
    fetch(this.opts.rowUrl(q), {signal: ctl.signal})
      .then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error('row: HTTP ' + r.status))))
      .then((buf) => {
        if (this.rowCtl === ctl) this.rowCtl = null;
        this.rows.set(key, new Float32Array(buf));
        if (this.rows.size > 64) this.rows.delete(this.rows.keys().next().value);
        this.updateTooltip();
        this.redraw();
      })
      .catch((e) => { if (this.rowCtl === ctl) this.rowCtl = null; if (e.name !== 'AbortError' && this.opts.onError) this.opts.onError(e.message); });
  }

  pointerCell(x, y) {
    const p = this.plotRect(), v = this.view;
    if (x < p.x || y < p.y || x >= p.x + p.w || y >= p.y + p.h) return null;
    const k = Math.floor(v.k + (x - p.x) / v.s), q = Math.floor(v.q + (y - p.y) / v.s);
    if (q < 0 || k < 0 || q >= this.src.nq || k >= this.src.nk) return null;
    return {q, k, x, y};
  }

  setHover(cell) {
    this.hoverCell = cell;
    if (!cell) {
      this.hover = null;
      this.opts.tooltip.hidden = true;
      this.redraw();
      return;
    }
    const f = this.level(), pc = this.isExact(f) ? null : this.pooledCell(f, cell.q, cell.k);
    this.hover = pc && (pc.q1 - pc.q0 > 1 || pc.k1 - pc.k0 > 1) ? pc : {q0: cell.q, q1: cell.q + 1, k0: cell.k, k1: cell.k + 1};
    clearTimeout(this.rowTimer);
    if (this.exactValue(cell.q, cell.k) === null) this.rowTimer = setTimeout(() => this.fetchRow(cell.q), 60);
    this.updateTooltip();
    this.redraw();
  }

  updateTooltip() {
    const cell = this.hoverCell, tip = this.opts.tooltip;
    if (!cell || !this.src) return;
    const exact = this.exactValue(cell.q, cell.k), f = this.level(), src = this.src;
    const pc = this.isExact(f) ? null : this.pooledCell(f, cell.q, cell.k);
    tip.textContent = '';
    const line = (cls, text) => { const d = document.createElement('div'); d.className = cls; d.textContent = text; tip.appendChild(d); };
    line('sv-tip-tokens', 'q ' + cell.q + ' ' + JSON.stringify(label(src.qLabels, cell.q)) + '  →  k ' + cell.k + ' ' + JSON.stringify(label(src.kLabels, cell.k)));
    if (exact !== null) line('sv-tip-value', 'weight ' + fmt(exact));
    else line('sv-tip-value sv-pending', 'weight …');
    if (pc && (pc.q1 - pc.q0 > 1 || pc.k1 - pc.k0 > 1))
      line('sv-tip-block', src.pool + ' of q ' + pc.q0 + '–' + (pc.q1 - 1) + ' × k ' + pc.k0 + '–' + (pc.k1 - 1) + ': ' + fmt(pc.value));
    tip.dataset.q = cell.q;
    tip.dataset.k = cell.k;
    tip.dataset.value = exact === null ? '' : String(exact);
    tip.dataset.exact = exact === null ? '0' : '1';
    tip.hidden = false;
    const rect = this.canvas.getBoundingClientRect();
    tip.style.left = Math.round(rect.left + window.scrollX + cell.x + 14) + 'px';
    tip.style.top = Math.round(rect.top + window.scrollY + cell.y + 14) + 'px';
  }

  /* ---- input ---- */

  bindEvents() {
    const c = this.canvas;
    const pos = (e) => { const r = c.getBoundingClientRect(); return {x: e.clientX - r.left, y: e.clientY - r.top}; };
    c.addEventListener('wheel', (e) => {
      if (!this.src) return;
      e.preventDefault();
      const pt = pos(e), dy = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
      this.zoomAt(Math.exp(-dy * 0.0025), pt.x, pt.y);
      this.setHover(this.pointerCell(pt.x, pt.y));
    }, {passive: false});
    let drag = null;
    c.addEventListener('pointerdown', (e) => {
      drag = pos(e);
      c.setPointerCapture(e.pointerId);
      c.focus();
    });
    c.addEventListener('pointermove', (e) => {
      if (!this.src) return;
      const pt = pos(e);
      if (drag) {
        this.panBy(pt.x - drag.x, pt.y - drag.y);
        drag = pt;
      }
      this.setHover(this.pointerCell(pt.x, pt.y));
    });
    c.addEventListener('pointerup', () => { drag = null; });
    c.addEventListener('pointerleave', () => { if (!drag) this.setHover(null); });
    c.addEventListener('dblclick', (e) => { const pt = pos(e); this.zoomAt(e.shiftKey ? 0.5 : 2, pt.x, pt.y); });
    c.addEventListener('keydown', (e) => {
      const step = 60;
      const keys = {'+': () => this.zoomAt(1.5), '=': () => this.zoomAt(1.5), '-': () => this.zoomAt(1 / 1.5),
        '0': () => this.fit(), ArrowLeft: () => this.panBy(step, 0), ArrowRight: () => this.panBy(-step, 0),
        ArrowUp: () => this.panBy(0, step), ArrowDown: () => this.panBy(0, -step)};
      if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
    });
  }
}

function niceStep(x) {
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(x, 1))));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function label(labels, i) { return labels && i < labels.length ? labels[i] : '#' + i; }

function clip(s, n) { return s.length > n ? s.slice(0, n - 1) + '…' : s; }

function fmt(v) { return v === 0 ? '0' : Math.abs(v) >= 1e-3 ? v.toFixed(6) : v.toExponential(4); }

/* index of the pooled cell holding offset i of a span split into n cells (cell r covers
 * [floor(r*span/n), floor((r+1)*span/n)), as the server pools) */
function cellIndex(i, span, n) {
  let r = Math.min(n - 1, Math.floor(i * n / span));
  while (r > 0 && Math.floor(r * span / n) > i) r--;
  while (r < n - 1 && Math.floor((r + 1) * span / n) <= i) r++;
  return r;
}

window.AvZoomMap = AvZoomMap;
})();
