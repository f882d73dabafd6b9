/* attnviz corpus report page: reads the report (corpus.json plus colormap tables) from #corpus-data and draws
 * the role grid, statistic grids with per-head distributions, relative-position profiles, one head's details
 * with its top examples, the query/key map and the skipped lines. No network, no framework. */
'use strict';
(function () {
  const D = JSON.parse(document.getElementById('corpus-data').textContent);
  const $ = (id) => document.getElementById(id);
  const ROLE_RGB = { previous_token: [31, 119, 180], first_token: [255, 127, 14], self: [44, 160, 44],
    broad: [148, 103, 189], duplicate_token: [140, 86, 75], induction: [214, 39, 40], none: [199, 199, 199] };
  const ROLE_SHORT = { previous_token: 'prev', first_token: 'sink', self: 'self', broad: 'broad',
    duplicate_token: 'dup', induction: 'ind', none: '-' };
  const texts = new Map(D.examples_text.map((e) => [e.line, e]));
  const tip = $('tooltip');
  const fmt = (x, d = 3) => (x === null || x === undefined ? '–' : Math.abs(x) >= 1000 ? x.toFixed(0) : x.toFixed(d));
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
  const state = { view: 'roles', group: 0, metric: 'entropy_norm', layer: 0, head: 0 };

  function cmap(name, t) {
    const tab = D.colormaps[name];
    if (t === null || t === undefined || isNaN(t)) return 'rgb(200,200,200)';
    const i = Math.max(0, Math.min(255, Math.floor(t * 256))) * 3;
    return `rgb(${tab[i]},${tab[i + 1]},${tab[i + 2]})`;
  }
  function groupOffset(g) {
    let off = 0;
    for (let k = 0; k < g; k++) off += D.groups[k].n_layers * D.groups[k].n_heads;
    return off;
  }
  function headAt(g, layer, head) { return D.heads[groupOffset(g) + layer * D.groups[g].n_heads + head]; }
  function showTip(ev, html) {
    tip.innerHTML = html;
    tip.hidden = false;
    tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - 300) + 'px';
    tip.style.top = ev.clientY + 14 + 'px';
  }
  function hideTip() { tip.hidden = true; }
  function canvas(id, w, h) {
    const c = $(id), r = window.devicePixelRatio || 1;
    c.width = w * r;
    c.height = h * r;
    c.style.width = w + 'px';
    c.style.height = h + 'px';
    const ctx = c.getContext('2d');
    ctx.setTransform(r, 0, 0, r, 0, 0);
    ctx.font = '11px sans-serif';
    return ctx;
  }

  /* A layers x heads grid: cell(g, l, h) -> {fill, text}; onHover(l, h) -> tooltip html; onClick(l, h). */
  function drawGrid(id, cell, onHover, onClick) {
    const g = D.groups[state.group], cs = Math.max(14, Math.min(56, Math.floor(760 / Math.max(g.n_heads, g.n_layers))));
    const x0 = 50, y0 = 24, ctx = canvas(id, x0 + cs * g.n_heads + 20, y0 + cs * g.n_layers + 30);
    ctx.fillStyle = '#666';
    ctx.textAlign = 'center';
    for (let h = 0; h < g.n_heads; h++) ctx.fillText(h, x0 + cs * (h + 0.5), y0 - 6);
    ctx.textAlign = 'right';
    for (let l = 0; l < g.n_layers; l++) ctx.fillText(l, x0 - 6, y0 + cs * (l + 0.5) + 4);
    ctx.fillText('layer', x0 - 6, y0 - 6);
    ctx.textAlign = 'center';
    for (let l = 0; l < g.n_layers; l++)
      for (let h = 0; h < g.n_heads; h++) {
        const c = cell(l, h);
        ctx.fillStyle = c.fill;
        ctx.fillRect(x0 + cs * h + 1, y0 + cs * l + 1, cs - 2, cs - 2);
        if (c.text && cs >= 34) { /* one or two lines */
          const lines = c.text.split('\n');
          ctx.fillStyle = c.light ? '#fff' : '#111';
          lines.forEach((t, k) => ctx.fillText(t, x0 + cs * (h + 0.5), y0 + cs * (l + 0.5) + 4 + (k - (lines.length - 1) / 2) * 12));
        }
      }
    const el = $(id);
    const at = (ev) => {
      const r = el.getBoundingClientRect(), h = Math.floor((ev.clientX - r.left - x0) / cs),
        l = Math.floor((ev.clientY - r.top - y0) / cs);
      return h >= 0 && h < g.n_heads && l >= 0 && l < g.n_layers ? [l, h] : null;
    };
    el.onmousemove = (ev) => { const p = at(ev); p ? showTip(ev, onHover(p[0], p[1])) : hideTip(); };
    el.onmouseleave = hideTip;
    el.onclick = (ev) => { const p = at(ev); if (p && onClick) onClick(p[0], p[1]); };
  }

  function openHead(l, h) {
    state.layer = l;
    state.head = h;
    setView('head');
  }

  function drawRoles() {
    $('role-legend').innerHTML = Object.keys(ROLE_RGB).map((r) =>
      `<span><span class="swatch" style="background:rgb(${ROLE_RGB[r]})"></span>${r.replace('_', ' ')}</span>`).join('');
    drawGrid('roles-canvas', (l, h) => {
      const d = headAt(state.group, l, h), c = ROLE_RGB[d.role], s = d.confidence === null ? 0.25 : 0.25 + 0.75 * d.confidence;
      const mix = c.map((v) => Math.round(255 + (v - 255) * s));
      return { fill: `rgb(${mix})`, text: ROLE_SHORT[d.role] + (d.confidence === null ? '' : '\n' + d.confidence.toFixed(2)) };
    }, (l, h) => {
      const d = headAt(state.group, l, h);
      const scores = D.roles.map((r) => `${r}: ${fmt(d.scores[r])}`).join('\n');
      return `<b>head ${l}.${h}</b>: ${d.role} (score ${fmt(d.role_score)} ± ${fmt(d.ci95)}, confidence ${fmt(d.confidence, 2)})\n${scores}`;
    }, openHead);
  }

  function metricRange(m) {
    let lo = 0, hi = 0;
    const off = groupOffset(state.group), g = D.groups[state.group];
    for (let i = 0; i < g.n_layers * g.n_heads; i++) {
      const v = D.heads[off + i].metrics[m].mean;
      if (v !== null) { hi = Math.max(hi, v); lo = Math.min(lo, v); }
    }
    return [lo, hi > lo ? hi : lo + 1];
  }

  function drawStats() {
    const m = state.metric, [lo, hi] = metricRange(m);
    drawGrid('stats-canvas', (l, h) => {
      const v = headAt(state.group, l, h).metrics[m].mean;
      const t = v === null ? null : (v - lo) / (hi - lo);
      return { fill: cmap('viridis', t), text: v === null ? '' : fmt(v, 2), light: t !== null && t < 0.4 };
    }, (l, h) => {
      const s = headAt(state.group, l, h).metrics[m], q = s.quantiles;
      return `<b>head ${l}.${h}</b> ${m}\nmean ${fmt(s.mean)} sd ${fmt(s.sd)} over ${s.n} inputs\n` +
        `5% ${fmt(q[1])}  median ${fmt(q[10])}  95% ${fmt(q[19])}`;
    }, openHead);
    drawDistributions(m);
  }

  /* Box plots of one metric for every head of the chosen layer, on one shared axis. */
  function drawDistributions(m) {
    const g = D.groups[state.group], L = Math.min(state.distLayer || 0, g.n_layers - 1);
    const rows = [];
    let hi = 0;
    for (let h = 0; h < g.n_heads; h++) {
      const q = headAt(state.group, L, h).metrics[m].quantiles;
      rows.push(q);
      for (const v of q) if (v !== null) hi = Math.max(hi, v);
    }
    hi = hi > 0 ? hi : 1;
    const x0 = 60, w = 520, rh = 16, ctx = canvas('dist-canvas', x0 + w + 60, rows.length * rh + 40);
    const X = (v) => x0 + (v / hi) * w;
    ctx.fillStyle = '#666';
    ctx.fillText(`${m}, layer ${L}`, x0, 12);
    ctx.fillText('0', x0 - 3, rows.length * rh + 34);
    ctx.fillText(fmt(hi), x0 + w - 10, rows.length * rh + 34);
    rows.forEach((q, h) => {
      const y = 22 + h * rh;
      ctx.fillStyle = '#666';
      ctx.fillText('head ' + h, 4, y + 10);
      if (q[10] === null) return;
      ctx.strokeStyle = '#2563eb';
      ctx.beginPath();
      ctx.moveTo(X(q[1]), y + 6);
      ctx.lineTo(X(q[19]), y + 6);
      ctx.stroke();
      ctx.fillStyle = 'rgba(37,99,235,.25)';
      ctx.fillRect(X(q[5]), y, Math.max(1, X(q[15]) - X(q[5])), 12);
      ctx.fillStyle = '#1e3a8a';
      ctx.fillRect(X(q[10]) - 1, y - 1, 2, 14);
    });
  }

  function drawPositions() {
    const g = D.groups[state.group], off = groupOffset(state.group), bins = D.position_bins;
    if (!g.positional) {
      canvas('pos-canvas', 400, 30).fillText('cross-attention has no relative positions', 4, 16);
      return;
    }
    const n = g.n_layers * g.n_heads, cw = Math.max(6, Math.min(28, Math.floor(760 / bins.length))), rh = Math.max(6, Math.min(16, Math.floor(700 / n)));
    const x0 = 56, y0 = 60, ctx = canvas('pos-canvas', x0 + cw * bins.length + 20, y0 + rh * n + 10);
    let hi = 0;
    for (let i = 0; i < n; i++) for (const v of D.heads[off + i].positions || []) if (v !== null) hi = Math.max(hi, v);
    hi = hi || 1;
    const label = (b) => (b.lo === b.hi ? String(b.lo) : b.hi === null ? b.lo + '+' : b.lo === null ? '≤' + b.hi : b.lo + '..' + b.hi);
    ctx.save();
    ctx.fillStyle = '#666';
    bins.forEach((b, k) => {
      ctx.save();
      ctx.translate(x0 + cw * (k + 0.5) + 4, y0 - 4);
      ctx.rotate(-Math.PI / 2);
      ctx.fillText(label(b), 0, 0);
      ctx.restore();
    });
    ctx.restore();
    for (let i = 0; i < n; i++) {
      const p = D.heads[off + i].positions || [];
      if (rh >= 10 || i % Math.ceil(10 / rh) === 0) {
        ctx.fillStyle = '#666';
        ctx.fillText(`${Math.floor(i / g.n_heads)}.${i % g.n_heads}`, 4, y0 + rh * i + rh - 2);
      }
      bins.forEach((b, k) => {
        ctx.fillStyle = cmap('magma', p[k] === null || p[k] === undefined ? null : p[k] / hi);
        ctx.fillRect(x0 + cw * k, y0 + rh * i, cw, rh);
      });
    }
    const el = $('pos-canvas');
    el.onmousemove = (ev) => {
      const r = el.getBoundingClientRect(), k = Math.floor((ev.clientX - r.left - x0) / cw), i = Math.floor((ev.clientY - r.top - y0) / rh);
      if (k < 0 || k >= bins.length || i < 0 || i >= n) return hideTip();
      const v = (D.heads[off + i].positions || [])[k];
      showTip(ev, `<b>head ${Math.floor(i / g.n_heads)}.${i % g.n_heads}</b> offset ${label(bins[k])}: mass ${fmt(v)}`);
    };
    el.onmouseleave = hideTip;
    el.onclick = (ev) => {
      const r = el.getBoundingClientRect(), i = Math.floor((ev.clientY - r.top - y0) / rh);
      if (i >= 0 && i < n) openHead(Math.floor(i / g.n_heads), i % g.n_heads);
    };
  }

  function exampleRows(list) {
    return list.map((e) => {
      const t = texts.get(e.line) || {}, link = t.trace ? ` <a href="${esc(t.trace)}">trace</a>` : '';
      return `<tr><td>${e.line}</td><td>${fmt(e.score)}</td><td class="t">${esc(t.text || '')}${link}</td></tr>`;
    }).join('');
  }

  function drawHead() {
    const g = D.groups[state.group];
    state.layer = Math.min(state.layer, g.n_layers - 1);
    state.head = Math.min(state.head, g.n_heads - 1);
    $('head-layer').value = state.layer;
    $('head-head').value = state.head;
    const d = headAt(state.group, state.layer, state.head), idx = groupOffset(state.group) + state.layer * g.n_heads + state.head;
    let html = `<h3>${g.kind} head ${state.layer}.${state.head}: ${d.role}</h3><p class="note">score ${fmt(d.role_score)} ± ${fmt(d.ci95)} (95% interval of the mean),
      confidence ${fmt(d.confidence, 2)} (share of inputs whose own best role is ${d.role})</p>`;
    html += '<table><tr><th class="t">role</th><th>mean score</th><th>inputs voting</th></tr>' +
      D.roles.map((r) => `<tr><td class="t">${r}</td><td>${fmt(d.scores[r])}</td><td>${d.votes[r]}</td></tr>`).join('') +
      `<tr><td class="t">none</td><td></td><td>${d.votes.none}</td></tr></table>`;
    html += '<h3>statistics over inputs</h3><table><tr><th class="t">statistic</th><th>n</th><th>mean</th><th>sd</th><th>5%</th><th>25%</th><th>median</th><th>75%</th><th>95%</th></tr>' +
      D.metrics.map((m) => {
        const s = d.metrics[m], q = s.quantiles;
        return `<tr><td class="t">${m}</td><td>${s.n}</td><td>${fmt(s.mean)}</td><td>${fmt(s.sd)}</td><td>${fmt(q[1])}</td><td>${fmt(q[5])}</td><td>${fmt(q[10])}</td><td>${fmt(q[15])}</td><td>${fmt(q[19])}</td></tr>`;
      }).join('') + '</table>';
    const sp = D.special_tokens.filter((s) => s.n[idx] > 0);
    if (sp.length)
      html += '<h3>attention to special tokens</h3><table><tr><th class="t">token</th><th>inputs with it</th><th>mean mass</th></tr>' +
        sp.map((s) => `<tr><td class="t">${esc(s.label)}</td><td>${s.n[idx]}</td><td>${fmt(s.mean[idx])}</td></tr>`).join('') + '</table>';
    for (const r of [d.role === 'none' ? null : d.role, ...D.roles.filter((x) => x !== d.role)]) {
      if (!r || !d.top[r].length) continue;
      html += `<h3>top inputs by ${r} score</h3><table><tr><th>line</th><th>score</th><th class="t">text</th></tr>${exampleRows(d.top[r])}</table>`;
    }
    $('head-info').innerHTML = html;
  }

  function qkColor(p, mode, tokenColors) {
    if (mode === 'type') return p.type === 'query' ? 'rgb(31,119,180)' : 'rgb(255,127,14)';
    if (mode === 'position') return cmap('viridis', p.n_tokens > 1 ? p.pos / (p.n_tokens - 1) : 0);
    return tokenColors.get(p.token);
  }

  function drawQk() {
    const qk = D.qk;
    if (!qk) return;
    const proj = $('qk-proj').value === 'tsne' && qk.tsne ? 'tsne' : 'pca', mode = $('qk-color').value;
    const pts = qk.points, S = 560, pad = 12, ctx = canvas('qk-canvas', S + 2 * pad, S + 2 * pad);
    $('qk-note').textContent = `${qk.kind} layer ${qk.layer} head ${qk.head}: ${pts.length} vectors (up to ${qk.samples_per_side} queries and keys, seed ${qk.seed}), ` +
      `keys translated and both sides scaled as in AttentionViz; PCA explains ${fmt(100 * qk.pca_variance_ratio[0], 1)}% + ${fmt(100 * qk.pca_variance_ratio[1], 1)}%` +
      (qk.tsne ? `; t-SNE perplexity ${qk.tsne.perplexity}, ${qk.tsne.iterations} iterations, theta ${qk.tsne.theta}` : '; no t-SNE');
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const p of pts) {
      const [x, y] = p[proj];
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    }
    const span = Math.max(x1 - x0, y1 - y0) || 1, cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    const X = (p) => pad + S / 2 + ((p[proj][0] - cx) / span) * S * 0.98, Y = (p) => pad + S / 2 - ((p[proj][1] - cy) / span) * S * 0.98;
    const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
    const tokenColors = new Map();
    for (const p of pts) if (!tokenColors.has(p.token)) tokenColors.set(p.token, palette[tokenColors.size % palette.length]);
    ctx.strokeStyle = '#ccc';
    ctx.strokeRect(pad, pad, S, S);
    for (const p of pts) {
      ctx.fillStyle = qkColor(p, mode, tokenColors);
      ctx.beginPath();
      ctx.arc(X(p), Y(p), 2.6, 0, 2 * Math.PI);
      ctx.fill();
    }
    const el = $('qk-canvas');
    el.onmousemove = (ev) => {
      const r = el.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top;
      let best = null, bd = 64;
      for (const p of pts) {
        const d = (X(p) - mx) ** 2 + (Y(p) - my) ** 2;
        if (d < bd) { bd = d; best = p; }
      }
      if (!best) return hideTip();
      const t = texts.get(best.line);
      showTip(ev, `<b>${esc(best.token)}</b> (${best.type})\nline ${best.line}, position ${best.pos} of ${best.n_tokens}` +
        (t ? `\n${esc(t.text.slice(0, 160))}` : ''));
    };
    el.onmouseleave = hideTip;
  }

  function drawSkipped() {
    const s = D.skipped;
    let html = `<p>${s.total} of ${D.input.lines} lines skipped.</p><table><tr><th class="t">reason</th><th>lines</th><th class="t">line numbers</th></tr>`;
    for (const [k, v] of Object.entries(s)) {
      if (typeof v !== 'object' || v === null || !('count' in v)) continue;
      html += `<tr><td class="t">${k.replace(/_/g, ' ')}</td><td>${v.count}</td><td class="t">${v.lines.join(', ')}${v.lines_truncated ? ', …' : ''}</td></tr>`;
    }
    html += '</table>';
    if (s.first_error) html += `<p>First model error (line ${s.first_error.line}): ${esc(s.first_error.message)}</p>`;
    $('skipped-info').innerHTML = html;
  }

  const draw = { roles: drawRoles, stats: drawStats, positions: drawPositions, head: drawHead, qk: drawQk, skipped: drawSkipped };

  function setView(v) {
    state.view = v;
    document.querySelectorAll('#tabs button').forEach((b) => b.classList.toggle('active', b.dataset.view === v));
    document.querySelectorAll('.view').forEach((s) => s.classList.toggle('active', s.id === 'view-' + v));
    if (D.heads.length || v === 'skipped') draw[v]();
  }

  function fillSelect(el, items, value) {
    el.innerHTML = items.map((x) => `<option value="${esc(x[0])}">${esc(x[1])}</option>`).join('');
    el.value = value;
  }

  function fillGroupControls() {
    const g = D.groups[state.group] || { n_layers: 0, n_heads: 0 };
    const range = (n) => Array.from({ length: n }, (_, i) => [i, i]);
    fillSelect($('head-layer'), range(g.n_layers), Math.min(state.layer, g.n_layers - 1));
    fillSelect($('head-head'), range(g.n_heads), Math.min(state.head, g.n_heads - 1));
    fillSelect($('dist-layer'), range(g.n_layers), 0);
  }

  function init() {
    const sk = D.skipped.total;
    $('summary').textContent = `${D.model.name} (${D.model.family}) · ${D.examples} inputs, ${D.tokens} tokens (longest ${D.max_tokens}) · ` +
      `${sk} of ${D.input.lines} lines skipped · ${D.input.path}`;
    fillSelect($('kind'), D.groups.map((g, i) => [i, g.kind]), 0);
    $('kind-box').hidden = D.groups.length < 2;
    fillSelect($('metric'), D.metrics.map((m) => [m, m]), state.metric);
    fillGroupControls();
    $('kind').onchange = () => { state.group = +$('kind').value; fillGroupControls(); setView(state.view); };
    $('metric').onchange = () => { state.metric = $('metric').value; drawStats(); };
    $('dist-layer').onchange = () => { state.distLayer = +$('dist-layer').value; drawDistributions(state.metric); };
    $('head-layer').onchange = () => { state.layer = +$('head-layer').value; drawHead(); };
    $('head-head').onchange = () => { state.head = +$('head-head').value; drawHead(); };
    $('qk-proj').onchange = drawQk;
    $('qk-color').onchange = drawQk;
    document.querySelectorAll('#tabs button').forEach((b) => { b.onclick = () => setView(b.dataset.view); });
    const qkTab = document.querySelector('#tabs button[data-view="qk"]');
    qkTab.disabled = !D.qk;
    if (!D.qk) qkTab.title = 'no query/key sample: run attnviz corpus with --qk-layer L --qk-head H';
    const first = location.hash.slice(1); /* #qk, #head... open that view */
    setView(draw[first] && (D.heads.length || first === 'skipped') && !(first === 'qk' && !D.qk) ? first : D.heads.length ? 'roles' : 'skipped');
  }
  init();
})();
