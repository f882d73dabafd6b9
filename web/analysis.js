/* attnviz viewer: the page's analysis section (meta "analysis", computed by `attnviz html` with
 * src/analysis/): per-head statistics and roles, attention rollout, value norms for norm-based attention.
 * See docs/VIEWER.md ("Analysis views") for the layout and docs/ANALYSIS.md for the definitions. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  /* Role colors (Okabe-Ito, distinguishable with the common color-vision deficiencies) and legend names. */
  AV.ROLES = [
    { id: 'previous_token', name: 'previous token', color: '#0072b2' },
    { id: 'first_token', name: 'first token (sink)', color: '#d55e00' },
    { id: 'self', name: 'self', color: '#009e73' },
    { id: 'broad', name: 'broad / uniform', color: '#e69f00' },
    { id: 'duplicate_token', name: 'duplicate token', color: '#cc79a7' },
    { id: 'induction', name: 'induction', color: '#7b3fa0' },
    { id: 'none', name: 'other (best score < min)', color: '#8d949e' },
  ];
  AV.roleInfo = (id) => AV.ROLES.find((r) => r.id === id) || AV.ROLES[AV.ROLES.length - 1];

  /* Statistics of docs/ANALYSIS.md, in the order the hover shows them: [key, label, digits, unit]. */
  AV.STAT_FIELDS = [
    ['entropy', 'entropy', 3, ' nats'], ['entropy_norm', 'entropy / max', 3, ''], ['distance', 'mean distance', 2, ' tokens'],
    ['first', 'first token (sink)', 3, ''], ['self', 'self', 3, ''], ['prev', 'previous token', 3, ''],
    ['special', 'special tokens', 3, ''], ['punct', 'punctuation', 3, ''], ['uniformity', 'uniformity (broad)', 3, ''],
    ['first_norm', 'first token, norm-based', 3, ''],
  ];

  class Analysis {
    constructor(trace) {
      this.trace = trace;
      this.a = trace.meta.analysis || null;
      this.cache = new Map();
    }

    get present() { return !!this.a; }

    /* Why the page has no analysis. */
    missing() {
      return this.trace.meta.pooled ? 'a pooled page of a long trace carries no analysis: attnviz stats TRACE computes it from the trace'
        : 'this page was made without the analysis (attnviz html --no-analysis)';
    }

    /* attnviz-stats JSON of a kind ({heads: [...], ...}), or {error} / null when absent. */
    stats(kind) { return (this.a && this.a.stats && this.a.stats[kind]) || null; }

    /* Probe roles (attnviz roles --json given to attnviz html --roles) for the self-attention, or null. */
    probeRoles() { return (this.a && this.a.probe_roles) || null; }

    /* The role of one head: from the probes when asked and available, else from the trace's statistics.
     * Returns {role, score, scores, stats, source} or null. */
    headRole(kind, layer, head, useProbes) {
      const s = this.stats(kind), pr = kind === 'self' && useProbes ? this.probeRoles() : null;
      const st = s && s.heads ? s.heads.find((h) => h.layer === layer && h.head === head) : null;
      const p = pr ? pr.heads.find((h) => h.layer === layer && h.head === head) : null;
      if (p) return { role: p.role, score: p.score, scores: p.scores, stats: st, source: 'probes' };
      if (st) return { role: st.role, score: st.role_score, scores: st.scores, stats: st, source: 'trace' };
      return null;
    }

    /* Rollout of a kind: {desc, data Float32Array(rows*cols), step(row)} or {error: message}. */
    rollout(kind) {
      const key = 'rollout.' + kind;
      if (this.cache.has(key)) return this.cache.get(key);
      const d = this.a && this.a.rollout ? this.a.rollout[kind] : null;
      let r;
      if (!this.a) r = { error: this.missing() };
      else if (!d) r = { error: 'no rollout for ' + kind + ' attention' };
      else if (d.error || d.skipped) r = { error: d.error || d.skipped };
      else {
        const tr = this.trace, b = tr.block(d, d.rows, d.cols);
        const data = AV.decodePlane(tr.encoding, b.vals, b.scales, 0, d.rows, d.cols);
        r = { desc: d, data, step: (row, v) => (b.scales ? AV.quantStep(tr.encoding, b.scales[row], v) : 0) };
      }
      this.cache.set(key, r);
      return r;
    }

    /* Value norms ||v_j W_o^h|| of a self-attention layer: Float32Array(heads * tokens), or null. */
    vnorm(layer) {
      const d = this.a && this.a.vnorm;
      if (!d || !d.offs || d.offs[layer] === null || d.offs[layer] === undefined) return null;
      const b = this.trace.bytes;
      return new Float32Array(b.buffer, b.byteOffset + d.offs[layer], d.heads * d.tokens);
    }

    /* Why the norm-based view cannot be shown for (kind, layer), or null when it can. */
    vnormMissing(kind, layer) {
      if (!this.a) return this.missing();
      if (kind !== 'self') return 'they belong to self-attention layers, and this is ' + kind + ' attention (choose another kind)';
      if (!this.a.vnorm) return this.a.vnorm_note || 'this trace has none (vnorm.<layer>)';
      if (!this.vnorm(layer)) return 'this trace has none for layer ' + layer + ' (vnorm.' + layer + ')';
      return null;
    }
  }
  AV.Analysis = Analysis;

  /* Norm-based attention (Kobayashi et al. 2020) of a self-attention layer: ||alpha_ij v_j W_o^h|| =
   * alpha_ij * vnorm[h][j] for one head, or the mean / max over heads of those matrices. opt: {head, exclude,
   * qsel, ksel, normalize}; exclude hides token 0 (query and key); normalize then rescales each row to sum 1
   * over the keys not hidden (a distribution comparable to attention). Returns AV.matrix's shape. */
  AV.normMatrix = function (trace, analysis, layer, opt) {
    const s = trace.set('self', layer), vn = analysis.vnorm(layer), off = opt.exclude ? 1 : 0, nk = s.nk;
    const rows = AV.indices(opt.qsel, s.nq, off), cols = AV.indices(opt.ksel, nk, off), R = rows.length, C = cols.length;
    const heads = typeof opt.head === 'number' ? [opt.head] : [...Array(s.heads).keys()];
    const mats = heads.map((h) => trace.head('self', layer, h)), isMax = opt.head === 'max';
    const data = new Float32Array(R * C), row = new Float64Array(nk);
    for (let r = 0; r < R; r++) {
      const o = rows[r] * nk;
      row.fill(0);
      for (let hi = 0; hi < heads.length; hi++) {
        const m = mats[hi], vo = heads[hi] * nk;
        for (let k = 0; k < nk; k++) {
          const x = m[o + k] * vn[vo + k];
          if (isMax) { if (hi === 0 || x > row[k]) row[k] = x; } else row[k] += x;
        }
      }
      let f = isMax ? 1 : 1 / heads.length;
      if (opt.normalize) {
        let sum = 0;
        for (let k = off; k < nk; k++) sum += row[k];
        f = sum > 0 ? 1 / sum : 1;
      }
      for (let c = 0; c < C; c++) data[r * C + c] = row[cols[c]] * f;
    }
    let max = 0, min = Infinity;
    for (let i = 0; i < data.length; i++) { const x = data[i]; if (x > max) max = x; if (x < min) min = x; }
    return { rows, cols, data, max, min: min === Infinity ? 0 : min };
  };

  /* A statistic for display: '–' when it does not apply (null). */
  AV.fmtStat = (v, digits) => (v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toFixed(digits));
})();
