/* attnviz viewer: image traces. Metadata patch_grid ("14x14") and prefix_tokens (1 for CLS) say which
 * key tokens are image patches; the chosen query's attention (CLS by default) is drawn as the patch grid,
 * and over the image itself when the trace carries one (metadata image_png_base64, decoded in memory
 * through a Blob: no URL is fetched). Click a patch to make it the query. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  AV.patchGrid = function (meta) {
    const m = /^(\d+)x(\d+)$/.exec((meta && meta.patch_grid) || '');
    if (!m) return null;
    return { gh: +m[1], gw: +m[2], prefix: Math.max(0, parseInt(meta.prefix_tokens || '0', 10) || 0) };
  };

  /* The patch colors with opacity growing with the weight, so the picture shows through where the query
   * does not look: alpha = opacity * t (t = the weight's position on the color scale). */
  function overlay(vals, gh, gw, scale, opacity) {
    const cv = document.createElement('canvas');
    cv.width = gw;
    cv.height = gh;
    const ctx = cv.getContext('2d'), img = ctx.createImageData(gw, gh), d = img.data, lut = scale.lut;
    for (let i = 0; i < gh * gw; i++) {
      const t = Math.max(0, Math.min(1, scale.t(vals[i]))), k = scale.index(vals[i]);
      d[4 * i] = lut[3 * k];
      d[4 * i + 1] = lut[3 * k + 1];
      d[4 * i + 2] = lut[3 * k + 2];
      d[4 * i + 3] = Math.round(255 * opacity * Math.sqrt(t));
    }
    ctx.putImageData(img, 0, 0);
    return cv;
  }

  class ImageView {
    constructor(el, app) {
      this.el = el;
      this.app = app;
      this.grid = AV.patchGrid(app.trace.meta.meta);
      this.query = 0;
      this.alpha = 0.85;
      const bar = document.createElement('div');
      bar.className = 'note';
      this.qselect = document.createElement('select');
      this.qselect.id = 'image-query';
      this.qselect.addEventListener('change', () => { this.query = +this.qselect.value; this.paint(); });
      const alpha = document.createElement('input');
      Object.assign(alpha, { type: 'range', min: 0, max: 1, step: 0.05, value: this.alpha, id: 'image-alpha' });
      alpha.addEventListener('input', () => { this.alpha = +alpha.value; this.paint(); });
      this.source = document.createElement('select');
      this.source.id = 'image-source';
      this.source.add(new Option('attention (layer, head)', 'attention'));
      this.source.add(new Option('rollout (all layers)', 'rollout'));
      this.source.addEventListener('change', () => this.paint());
      const ql = document.createElement('label'), al = document.createElement('label'), sl = document.createElement('label');
      ql.append('query ', this.qselect);
      sl.append(' show ', this.source);
      al.append(' overlay opacity ', alpha);
      this.info = document.createElement('span');
      bar.append(ql, sl, al, this.info);
      this.row = document.createElement('div');
      this.row.className = 'row';
      this.imgCanvas = document.createElement('canvas');
      this.imgCanvas.id = 'image-canvas';
      this.gridCanvas = document.createElement('canvas');
      this.gridCanvas.id = 'patch-canvas';
      this.row.append(this.imgCanvas, this.gridCanvas);
      el.append(bar, this.row);
      for (const cv of [this.imgCanvas, this.gridCanvas]) {
        cv.style.cursor = 'crosshair';
        cv.addEventListener('mousemove', (e) => this.hover(e, cv));
        cv.addEventListener('mouseleave', () => app.tooltip(null));
        cv.addEventListener('click', (e) => {
          const p = this.patchAt(e, cv);
          if (p) { this.query = this.grid.prefix + p.i; this.paint(); }
        });
      }
      this.bitmap = null;
      const b64 = app.trace.meta.meta && app.trace.meta.meta.image_png_base64;
      if (b64 && window.createImageBitmap) {
        createImageBitmap(new Blob([AV.b64ToBytes(b64)], { type: 'image/png' }))
          .then((bmp) => { this.bitmap = bmp; if (app.state.view === 'image') this.paint(); })
          .catch(() => { this.info.textContent = ' · the embedded image could not be decoded'; });
      }
    }

    /* The query's row of the attention rollout (tokens after the last layer x input tokens), or a message. */
    rolloutRow() {
      const r = this.app.analysis.rollout('self');
      if (r.error) return r.error;
      const n = r.desc.cols, q = Math.min(this.query, r.desc.rows - 1), row = r.data.slice(q * n, (q + 1) * n);
      if (this.app.state.exclude) row[0] = 0;
      return row;
    }

    /* The query row over all keys: head, mean or max; renormalized without key 0 when excluding. */
    queryRow() {
      const st = this.app.state, tr = this.app.trace, s = tr.set(st.kind, st.layer);
      const heads = typeof st.head === 'number' ? [st.head] : [...Array(s.heads).keys()];
      const row = new Float32Array(s.nk), q = Math.min(this.query, s.nq - 1);
      heads.forEach((h, hi) => {
        const m = tr.head(st.kind, st.layer, h), o = q * s.nk;
        let norm = 1;
        if (st.exclude) { let sum = 0; for (let k = 1; k < s.nk; k++) sum += m[o + k]; norm = sum > 0 ? 1 / sum : 1; }
        for (let k = 0; k < s.nk; k++) {
          const v = m[o + k] * norm;
          if (st.head === 'max') row[k] = hi === 0 ? v : Math.max(row[k], v); else row[k] += v;
        }
      });
      if (st.head === 'mean') for (let k = 0; k < s.nk; k++) row[k] /= heads.length;
      if (st.exclude) row[0] = 0;
      return row;
    }

    fillQueries() {
      const tr = this.app.trace, s = tr.set(this.app.state.kind, 0), lab = tr.labels(this.app.state.kind), g = this.grid;
      if (this.qselect.options.length === s.nq) { this.qselect.value = String(this.query); return; }
      this.qselect.textContent = '';
      for (let q = 0; q < s.nq; q++) {
        const o = document.createElement('option'), i = q - g.prefix;
        o.value = q;
        o.textContent = i >= 0 && i < g.gh * g.gw ? q + ': patch (' + Math.floor(i / g.gw) + ', ' + (i % g.gw) + ')'
          : q + ': ' + (lab.q[q] || 'token');
        this.qselect.append(o);
      }
      this.qselect.value = String(this.query);
    }

    paint() {
      const g = this.grid, app = this.app, st = app.state;
      if (!g) { this.info.textContent = 'this trace has no patch_grid metadata'; return; }
      this.fillQueries();
      const rollout = this.source.value === 'rollout', row = rollout ? this.rolloutRow() : this.queryRow();
      if (typeof row === 'string') { this.info.textContent = ' · ' + row; return; }
      const n = g.gh * g.gw, vals = new Float32Array(n);
      let max = 0;
      for (let i = 0; i < n; i++) { vals[i] = row[g.prefix + i] || 0; if (vals[i] > max) max = vals[i]; }
      const scale = AV.makeScale(app.lut(), max, st.log, st.contrast);
      const size = Math.max(224, Math.min(448, Math.floor((this.el.clientWidth - 140) / 2)));
      const cw = size, ch = Math.round((size * g.gh) / g.gw), fg = AV.cssVar('--fg') || '#222';
      const patches = AV.matrixCanvas(vals, g.gh, g.gw, scale);
      this.geo = { cw, ch, vals };
      /* left: the image with the attention over it */
      this.imgCanvas.hidden = !this.bitmap;
      if (this.bitmap) {
        const ctx = AV.sizeCanvas(this.imgCanvas, cw, ch), box = this.cropBox();
        if (box) ctx.drawImage(this.bitmap, box[0], box[1], box[2] - box[0], box[3] - box[1], 0, 0, cw, ch);
        else ctx.drawImage(this.bitmap, 0, 0, cw, ch);
        ctx.imageSmoothingEnabled = true;
        ctx.drawImage(overlay(vals, g.gh, g.gw, scale, this.alpha), 0, 0, cw, ch);
        this.marker(ctx, cw, ch);
      }
      /* right: the patch grid itself, with a colorbar */
      const ctx = AV.sizeCanvas(this.gridCanvas, cw + 80, ch + 8);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(patches, 0, 0, cw, ch);
      this.marker(ctx, cw, ch);
      AV.drawColorbar(ctx, scale, cw + 14, 0, 14, ch, fg);
      const lab = app.trace.labels(st.kind), qi = this.query - g.prefix;
      const qname = qi >= 0 && qi < n ? 'patch (' + Math.floor(qi / g.gw) + ', ' + (qi % g.gw) + ')' : '“' + (lab.q[this.query] || '') + '”';
      let prefixMass = 0;
      for (let k = 0; k < g.prefix; k++) prefixMass += row[k];
      const crop = this.crop();
      this.info.textContent = ' · ' + (rollout ? 'rollout over ' + app.analysis.rollout('self').desc.layers + ' layers'
        : 'layer ' + st.layer + ' · ' + (typeof st.head === 'number' ? 'head ' + st.head : st.head + ' over heads')) +
        ' · query ' + this.query + ' ' + qname + ' · ' + g.gh + '×' + g.gw + ' patches' +
        (g.prefix ? ' · weight on the ' + g.prefix + ' prefix token(s): ' + AV.fmt(prefixMass) : '') +
        (!this.bitmap ? ' · no embedded image (metadata image_png_base64)'
          : crop ? ' · the model’s input: the ' + Math.round(crop.box[2] - crop.box[0]) + '×' + Math.round(crop.box[3] - crop.box[1]) +
            ' crop at (' + Math.round(crop.box[0]) + ', ' + Math.round(crop.box[1]) + ') of the ' + crop.width + '×' + crop.height + ' photo' : '') +
        ' · data ' + AV.precisionText(app.trace.encoding) + ' · click a patch to make it the query';
      this.shown = { vals, rollout, query: this.query };
    }

    /* Metadata image_crop {box: [x0, y0, x1, y1], width, height}: where the model's input lies in the photo. */
    crop() {
      try { return JSON.parse(this.app.trace.meta.meta.image_crop || 'null'); } catch (e) { return null; }
    }

    /* The part of the embedded picture the patches cover: the crop box when the picture is the original photo
     * (attnviz html --image photo.png), else all of it (the model's input). */
    cropBox() {
      const c = this.crop(), b = this.bitmap;
      return c && b && b.width === c.width && b.height === c.height ? c.box : null;
    }

    marker(ctx, cw, ch) {
      const g = this.grid, i = this.query - g.prefix;
      if (i < 0 || i >= g.gh * g.gw) return;
      const pw = cw / g.gw, ph = ch / g.gh;
      ctx.strokeStyle = '#ff2d55';
      ctx.lineWidth = 2;
      ctx.strokeRect((i % g.gw) * pw + 1, Math.floor(i / g.gw) * ph + 1, pw - 2, ph - 2);
    }

    patchAt(e, cv) {
      const g = this.grid, geo = this.geo;
      if (!g || !geo) return null;
      const rect = cv.getBoundingClientRect();
      const x = e.clientX - rect.left, y = e.clientY - rect.top;
      if (x < 0 || y < 0 || x >= geo.cw || y >= geo.ch) return null;
      const c = Math.floor((x * g.gw) / geo.cw), r = Math.floor((y * g.gh) / geo.ch);
      return { r, c, i: r * g.gw + c };
    }

    hover(e, cv) {
      const p = this.patchAt(e, cv);
      if (!p) { this.app.tooltip(null); return; }
      const v = this.geo.vals[p.i];
      this.app.tooltip('patch (' + p.r + ', ' + p.c + ') = key ' + (this.grid.prefix + p.i) + '\nweight ' +
        this.app.fmtWeight(v, 0) + ' from query ' + this.query, e.clientX, e.clientY, { q: this.query, k: this.grid.prefix + p.i, value: v });
    }
  }
  AV.ImageView = ImageView;
})();
