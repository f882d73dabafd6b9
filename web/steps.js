/* attnviz viewer: the step view of a generation (as inseq and Ecco show it). The produced tokens in a strip
 * colored by their probability or by the entropy of the distribution they came from; hover or click a token
 * for its alternatives; for the selected token the attention its step paid to every earlier token (row t − 1:
 * the query that produced token t), and the target-by-source matrix of all steps. Data: meta.steps
 * (src/trace/steps_json.c); traces from model APIs have no attention and say so. */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const pct = (lp) => (lp === null ? '–' : (Math.exp(lp) * 100).toPrecision(3) + '%');

  class StepsView {
    constructor(elm, app) {
      this.el = elm;
      this.app = app;
      this.data = app.trace.meta.steps || null;
      this.colorBy = 'prob';
      this.layerAgg = 'layer'; /* 'layer': the toolbar's layer; 'mean': mean over layers */
      this.head = el('div', 'note');
      this.head.id = 'steps-header';
      this.notes = el('div');
      this.notes.id = 'steps-notes';
      const bar = (this.bar = el('div', 'note'));
      const by = (this.bySel = el('select'));
      by.id = 'steps-color';
      by.add(new Option('probability', 'prob'));
      by.add(new Option('entropy', 'entropy'));
      by.addEventListener('change', () => { this.colorBy = by.value; this.paint(); });
      const agg = (this.aggSel = el('select'));
      agg.id = 'steps-layers';
      agg.add(new Option('the layer chosen above', 'layer'));
      agg.add(new Option('mean over layers', 'mean'));
      agg.addEventListener('change', () => { this.layerAgg = agg.value; this.paint(); });
      const l1 = el('label'), l2 = el('label');
      l1.append('color tokens by ', by);
      l2.append('   attention of ', agg);
      this.legend = el('span', 'muted');
      bar.append(l1, ' ', this.legend, l2);
      this.strip = el('div', 'strip');
      this.strip.id = 'steps-strip';
      this.detail = el('div', 'row');
      this.alts = el('div');
      this.alts.id = 'steps-alts';
      this.attn = el('div');
      this.attn.id = 'steps-attn';
      this.detail.append(this.alts, this.attn);
      this.matNote = el('div', 'note');
      this.canvas = el('canvas');
      this.canvas.id = 'steps-matrix';
      elm.append(this.head, this.notes, bar, this.strip, this.detail, this.matNote, this.canvas);
      this.strip.addEventListener('mousemove', (e) => this.hoverToken(e));
      this.strip.addEventListener('mouseleave', () => app.tooltip(null));
      this.strip.addEventListener('click', (e) => {
        const t = e.target.closest('.tok');
        if (t) app.set({ step: +t.dataset.t });
      });
      this.canvas.addEventListener('mousemove', (e) => this.hoverMatrix(e));
      this.canvas.addEventListener('mouseleave', () => app.tooltip(null));
      this.canvas.addEventListener('click', (e) => {
        const c = AV.matrixCell(this.canvas, this.geo, e);
        if (c) app.set({ step: c.q + 1 });
      });
    }

    /* The first token a step produced (the prompt is given), and the selected one. */
    first() { const p = this.data.prompt_len; return p === null ? 1 : p; }
    selected() {
      const n = this.data.steps.length, s = this.app.state.step;
      return typeof s === 'number' && s >= 0 && s < n ? s : Math.min(this.first(), n - 1);
    }

    /* Color of token t: viridis(p) or magma(entropy / max entropy); null when unknown. */
    color(t) {
      const s = this.data.steps[t], lut = this.app.trace.meta.cmaps[this.colorBy === 'prob' ? 'viridis' : 'magma'];
      const x = this.colorBy === 'prob' ? (s.logprob === null ? null : Math.exp(s.logprob)) : s.entropy === null ? null : s.entropy / (this.hmax || 1);
      if (x === null) return null;
      const i = Math.max(0, Math.min(255, Math.floor(x * 256)));
      return [lut[3 * i], lut[3 * i + 1], lut[3 * i + 2]];
    }

    paint() {
      const d = this.data;
      if (this.app.diff && this.app.diff.logprobs) { this.paintDiff(); return; }
      if (!d) { this.head.textContent = 'This trace holds no log-probabilities (attnviz generate, attnviz import of an API response, or attnviz run --logits make them).'; return; }
      this.hmax = 0;
      for (const s of d.steps) if (s.entropy !== null && s.entropy > this.hmax) this.hmax = s.entropy;
      this.paintHeader();
      this.paintStrip();
      const t = this.selected();
      this.paintAlternatives(t);
      this.paintAttention(t);
      this.paintMatrix(t);
    }

    /* attnviz diff: log p(A) − log p(B) per token on the diverging map, and the table of both. */
    paintDiff() {
      const app = this.app, diff = app.diff, lp = diff.logprobs, lab = app.trace.labels(app.state.kind || 'self').q;
      const delta = lp.a.map((x, i) => (x === null || lp.b[i] === null ? null : x - lp.b[i]));
      let m = 0;
      for (const v of delta) if (v !== null && Math.abs(v) > m) m = Math.abs(v);
      this.bar.hidden = true;
      this.head.textContent = 'log p(A) − log p(B) per token · A = ' + diff.a + ' · B = ' + diff.b + ' · red: A gives the token more probability, blue: B does';
      this.notes.textContent = '';
      this.legend.textContent = '(diverging, ±' + AV.fmt(m) + ' nats)';
      this.strip.textContent = '';
      this.alts.textContent = '';
      this.attn.textContent = '';
      this.geo = null;
      this.canvas.width = this.canvas.height = 0;
      this.matNote.textContent = '';
      const line = el('div', 'strip-line'), lut = app.trace.meta.cmaps.diverging, table = el('table', 'alts');
      table.id = 'steps-diff-table';
      line.append(el('span', 'strip-label', 'tokens'));
      delta.forEach((v, t) => {
        const span = el('span', 'tok', lab[t] !== undefined ? lab[t] : String(t));
        span.dataset.t = t;
        span.dataset.delta = v === null ? '' : v;
        if (v === null) span.classList.add('unknown');
        else {
          const i = Math.max(0, Math.min(255, Math.floor((0.5 + v / (2 * (m || 1))) * 256)));
          span.style.background = 'rgb(' + lut[3 * i] + ',' + lut[3 * i + 1] + ',' + lut[3 * i + 2] + ')';
          span.style.color = 0.299 * lut[3 * i] + 0.587 * lut[3 * i + 1] + 0.114 * lut[3 * i + 2] > 140 ? '#000' : '#fff';
        }
        span.title = 'token ' + t + ': log p(A) ' + (lp.a[t] === null ? '–' : lp.a[t].toPrecision(4)) + ', log p(B) ' +
          (lp.b[t] === null ? '–' : lp.b[t].toPrecision(4)) + (v === null ? '' : ', A − B ' + v.toPrecision(4));
        line.append(span);
        const tr = el('tr');
        tr.append(el('td', 'num', String(t)), el('td', '', '“' + (lab[t] || '') + '”'), el('td', 'num', lp.a[t] === null ? '–' : lp.a[t].toFixed(4)),
          el('td', 'num', lp.b[t] === null ? '–' : lp.b[t].toFixed(4)), el('td', 'num', v === null ? '–' : (v > 0 ? '+' : '') + v.toFixed(4)));
        table.append(tr);
      });
      this.strip.append(line);
      this.alts.append(el('div', 'caption', 't · token · log p(A) · log p(B) · A − B'), table);
    }

    paintHeader() {
      const d = this.data, g = d.generation || {}, m = this.app.trace.meta.meta || {}, n = d.steps.length;
      const parts = [m.model || this.app.trace.meta.title];
      const noPrompt = g.missing && g.missing.includes('prompt');
      if (d.prompt_len !== null) parts.push(noPrompt ? 'prompt not in the response' : d.prompt_len + ' prompt tokens', (n - d.prompt_len) + ' produced');
      else parts.push(n + ' tokens');
      if (g.provider) parts.push(g.provider + ' response');
      if (g.source === 'logits' || (!g.source && d.prompt_len === null)) parts.push('log-probabilities from the trace’s logits');
      if (g.sampling) parts.push(g.sampling.temperature > 0 ? 'sampling ' + JSON.stringify(g.sampling).replace(/[{}"]/g, '').replace(/,/g, ', ') : 'greedy');
      if (g.stop_reason) parts.push('stop: ' + g.stop_reason + (g.stop !== undefined ? ' (' + JSON.stringify(g.stop) + ')' : ''));
      this.head.textContent = parts.join(' · ');
      this.notes.textContent = '';
      const notes = (g.notes || []).slice();
      if (!d.has_attention) notes.unshift('this provider returns no attention weights: the step view shows what the response holds (tokens, log-probabilities, alternatives)');
      if (g.missing && g.missing.includes('entropy')) notes.push('no entropy: the response lists only the top alternatives, not the whole distribution');
      for (const t of notes) this.notes.append(el('div', 'caveat', t));
    }

    paintStrip() {
      const d = this.data, p = d.prompt_len, sel = this.selected();
      this.strip.textContent = '';
      this.legend.textContent = this.colorBy === 'prob' ? '(viridis: dark = unlikely, yellow = certain)' : '(magma, 0 .. ' + AV.fmt(this.hmax) + ' nats)';
      let line = null;
      for (let t = 0; t < d.steps.length; t++) {
        if (t === 0 || t === p) {
          line = el('div', 'strip-line');
          line.append(el('span', 'strip-label', p === null ? 'tokens' : t < p ? 'prompt' : 'output'));
          this.strip.append(line);
        }
        const s = d.steps[t], span = el('span', 'tok' + (t === sel ? ' sel' : '') + (p !== null && t < p ? ' prompt' : ''), s.token);
        span.dataset.t = t;
        const c = this.color(t);
        if (c) {
          span.style.background = 'rgb(' + c.join(',') + ')';
          span.style.color = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 140 ? '#000' : '#fff';
        } else span.classList.add('unknown');
        line.append(span);
      }
    }

    tokenText(t) {
      const s = this.data.steps[t];
      let text = 'token ' + t + '  “' + s.token + '”' + (s.id !== null ? '  id ' + s.id : '') + '\n';
      text += 'p ' + pct(s.logprob) + (s.logprob !== null ? '  (log-prob ' + s.logprob.toPrecision(4) + ')' : '  (unknown)');
      if (s.entropy !== null) text += '\nentropy ' + s.entropy.toPrecision(4) + ' nats';
      if (s.alts.length) text += '\nalternatives: ' + s.alts.slice(0, 5).map((a) => '“' + a[1] + '” ' + pct(a[2])).join(', ');
      return text;
    }

    hoverToken(e) {
      const tok = e.target.closest('.tok');
      if (!tok) { this.app.tooltip(null); return; }
      const t = +tok.dataset.t, s = this.data.steps[t];
      this.app.tooltip(this.tokenText(t), e.clientX, e.clientY, { q: t, k: -1, value: s.logprob === null ? '' : Math.exp(s.logprob) });
    }

    paintAlternatives(t) {
      const s = this.data.steps[t], g = this.data.generation || {};
      this.alts.textContent = '';
      this.alts.append(el('div', 'caption', 'token ' + t + ' “' + s.token + '”: p ' + pct(s.logprob) +
        (s.entropy !== null ? ', entropy ' + s.entropy.toPrecision(3) + ' nats' : '')));
      if (!s.alts.length) { this.alts.append(el('div', 'muted', t === 0 ? 'the first token has no prediction' : 'no alternatives stored')); return; }
      const table = el('table', 'alts');
      for (const [id, piece, lp] of s.alts) {
        const tr = el('tr', piece === s.token ? 'chosen' : ''), bar = el('span', 'pbar');
        bar.style.width = (lp === null ? 0 : Math.exp(lp) * 120).toFixed(1) + 'px';
        const cell = el('td');
        cell.append(bar);
        tr.append(el('td', '', '“' + piece + '”'), cell, el('td', 'num', pct(lp)), el('td', 'num muted', id === null ? '' : '#' + id));
        table.append(tr);
      }
      this.alts.append(table);
      if (g.alternatives_cap && s.alts.length >= g.alternatives_cap) this.alts.append(el('div', 'muted', 'the provider returns at most ' + g.alternatives_cap + ' alternatives'));
    }

    /* Attention rows qs (query q = the step that produced token q + 1) over every key, for the toolbar's kind
     * and head, at its layer or averaged over layers: Float32Array (qs.length x C), or null without attention. */
    stepRows(qs) {
      const app = this.app, st = app.state, tr = app.trace;
      if (!this.data.has_attention || !st.kind) return null;
      const layers = this.layerAgg === 'mean' ? [...Array(tr.layers(st.kind)).keys()] : [st.layer];
      let out = null;
      for (const l of layers) {
        const M = AV.matrix(tr, st.kind, l, { head: st.head, exclude: false, qsel: qs, ksel: null });
        if (!out) out = { data: new Float32Array(M.data.length), C: M.cols.length };
        for (let i = 0; i < M.data.length; i++) out.data[i] += M.data[i] / layers.length;
      }
      return out;
    }

    which() {
      const st = this.app.state;
      return (st.kind !== 'self' ? st.kind + ' attention, ' : '') + (this.layerAgg === 'mean' ? 'mean over layers' : 'layer ' + st.layer) + ', ' +
        (typeof st.head === 'number' ? 'head ' + st.head : st.head + ' over heads');
    }

    paintAttention(t) {
      this.attn.textContent = '';
      if (!this.data.has_attention) { this.attn.append(el('div', 'caveat', 'this provider returns no attention weights')); return; }
      if (t < 1) { this.attn.append(el('div', 'muted', 'the first token is given, not produced')); return; }
      const row = this.stepRows([t - 1]).data, lab = this.app.trace.labels(this.app.state.kind).k, lut = this.app.lut();
      this.attn.append(el('div', 'caption', 'attention while producing token ' + t + ' (query row ' + (t - 1) + '; ' + this.which() + ')'));
      const strip = el('div', 'strip attn-strip');
      strip.id = 'steps-attn-strip';
      let max = 0;
      for (let k = 0; k < row.length; k++) if (row[k] > max) max = row[k];
      for (let k = 0; k < row.length; k++) {
        if (this.app.state.kind !== 'cross' && k >= t) break; /* causal: later keys are 0 */
        const span = el('span', 'tok', lab[k] || String(k)), i = Math.min(255, Math.floor((max > 0 ? row[k] / max : 0) * 256));
        span.dataset.k = k;
        span.dataset.w = row[k];
        span.title = 'key ' + k + ': ' + AV.fmt(row[k]);
        span.style.background = 'rgb(' + lut[3 * i] + ',' + lut[3 * i + 1] + ',' + lut[3 * i + 2] + ')';
        span.style.color = 0.299 * lut[3 * i] + 0.587 * lut[3 * i + 1] + 0.114 * lut[3 * i + 2] > 140 ? '#000' : '#fff';
        strip.append(span);
      }
      this.attn.append(strip, el('div', 'muted', 'colors scaled to this step’s largest weight (' + AV.fmt(max) + ')'));
    }

    /* Target-by-source: row r = produced token t (attention row t − 1), column = source token. */
    paintMatrix(t) {
      if (!this.data.has_attention) { this.geo = null; this.canvas.width = this.canvas.height = 0; this.matNote.textContent = ''; return; }
      const app = this.app, st = app.state, tr = app.trace, n = this.data.steps.length, first = this.first();
      const rows = [], qlab = [], lab = tr.labels(st.kind);
      for (let q = Math.max(1, first); q < n; q++) {
        rows.push(q - 1);
        qlab[q - 1] = q + ' ' + this.data.steps[q].token;
      }
      if (!rows.length) { this.geo = null; this.matNote.textContent = 'no produced tokens'; return; }
      const { data, C } = this.stepRows(rows);
      let max = 0;
      for (const v of data) if (v > max) max = v;
      const M = { rows, cols: [...Array(C).keys()], data, max, min: 0 };
      const scale = AV.makeScale(app.lut(), max, st.log, st.contrast);
      const availW = Math.max(200, this.el.clientWidth - 40), availH = Math.max(240, window.innerHeight - 260);
      this.geo = AV.drawMatrix(this.canvas, M, { q: qlab, k: lab.k }, scale, availW, availH,
        { q: 'produced token ↓', k: (st.kind === 'cross' ? 'source' : 'earlier') + ' token →' });
      this.matNote.textContent = 'Target × source: row “t token” = attention while producing token t (query row t − 1), ' + this.which() +
        ' · click a row to select its token · selected: ' + t;
    }

    hoverMatrix(e) {
      const c = AV.matrixCell(this.canvas, this.geo, e);
      if (!c) { this.app.tooltip(null); return; }
      const lab = this.app.trace.labels(this.app.state.kind).k, t = c.q + 1;
      const text = 'producing token ' + t + ' “' + this.data.steps[t].token + '” (query ' + c.q + ')\nsource ' + c.k + ' “' + (lab[c.k] || '') + '”\nweight ' +
        this.app.fmtWeight(c.v, 0) + '\n' + this.which();
      this.app.tooltip(text, e.clientX, e.clientY, { q: c.q, k: c.k, value: c.v });
    }
  }
  AV.StepsView = StepsView;
})();
