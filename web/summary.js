/* attnviz viewer: the head-summary grid. One cell per (layer, head) of the chosen attention kind, colored by
 * the head's detected role (legend below the note), opaque in proportion to the role's score, which the cell
 * prints. Hover a cell for every statistic of the head; click it to open the head's heatmap. Roles come from
 * the trace's own statistics (previous-token, first-token, self, broad), or from the model probes of
 * `attnviz roles` when the page was built with --roles (adds duplicate-token and induction). */
(function () {
  'use strict';
  const AV = (window.AV = window.AV || {});

  const hexRGB = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  /* cell opacity for a role score: faint at 0, opaque at 1 */
  AV.roleAlpha = (score) => 0.2 + 0.8 * Math.max(0, Math.min(1, Number.isFinite(score) ? score : 0));

  class SummaryView {
    constructor(el, app) {
      this.el = el;
      this.app = app;
      this.useProbes = true;
      this.note = document.createElement('div');
      this.note.className = 'note';
      this.source = document.createElement('div');
      this.source.className = 'note';
      const sel = (this.sourceSel = document.createElement('select'));
      sel.id = 'roles-source';
      sel.add(new Option('model probes (attnviz roles)', 'probes'));
      sel.add(new Option('this trace’s attention', 'trace'));
      sel.addEventListener('change', () => { this.useProbes = sel.value === 'probes'; this.paint(); });
      const lab = document.createElement('label');
      lab.append('roles from ', sel);
      this.sourceInfo = document.createElement('span');
      this.source.append(lab, this.sourceInfo);
      this.legend = document.createElement('div');
      this.legend.className = 'legend';
      this.legend.id = 'roles-legend';
      this.grid = document.createElement('div');
      this.grid.className = 'sgrid';
      this.grid.id = 'summary-grid';
      this.hint = document.createElement('div');
      this.hint.className = 'note';
      el.append(this.note, this.source, this.legend, this.grid, this.hint);
      this.grid.addEventListener('mousemove', (e) => this.hover(e));
      this.grid.addEventListener('mouseleave', () => app.tooltip(null));
      this.grid.addEventListener('click', (e) => {
        const c = e.target.closest('.scell');
        if (c) app.set({ view: 'heatmap', layer: +c.dataset.layer, head: +c.dataset.head });
      });
    }

    paint() {
      const app = this.app, st = app.state, tr = app.trace, an = app.analysis, kind = st.kind;
      const stats = an.stats(kind), probes = kind === 'self' ? an.probeRoles() : null;
      const probesOn = !!probes && this.useProbes;
      this.source.hidden = !probes;
      this.sourceSel.value = probesOn ? 'probes' : 'trace';
      this.grid.textContent = '';
      this.legend.textContent = '';
      this.hint.textContent = '';
      if (!an.present || !stats || stats.error) {
        this.note.textContent = !an.present ? an.missing() + ': no head roles.'
          : 'No head statistics for ' + kind + ' attention' + (stats && stats.error ? ': ' + stats.error : '.');
        return;
      }
      const L = tr.layers(kind);
      let H = 0;
      for (let l = 0; l < L; l++) H = Math.max(H, tr.set(kind, l).heads);
      const min = (probesOn ? probes.min_role_score : stats.min_role_score) || 0.3;
      this.note.textContent = 'Head roles of ' + (kind !== 'self' ? kind + ' attention, ' : '') + L + ' layers × ' + H + ' heads · color = role, ' +
        'opacity and number = the role’s score in [0, 1]; a head whose best score is under ' + min + ' is “other” · hover a head for all its ' +
        'statistics, click it to open its heatmap';
      if (probes) {
        const pr = probes.probe || {};
        this.sourceInfo.textContent = probesOn ? '  ' + (probes.file || 'roles.json') + ': model ' + (probes.model || '?') + ', natural text (' +
          (pr.text_tokens || '?') + ' tokens) and ' + (pr.samples || '?') + ' × [BOS + ' + (pr.seq_len || '?') + ' random tokens repeated twice]'
          : '  the statistics of this trace’s attention (no duplicate-token / induction scores)';
      }
      /* legend with counts */
      const counts = {};
      const cells = [];
      for (let l = 0; l < L; l++) {
        for (let h = 0; h < tr.set(kind, l).heads; h++) {
          const r = an.headRole(kind, l, h, probesOn);
          if (!r) continue;
          counts[r.role] = (counts[r.role] || 0) + 1;
          cells.push([l, h, r]);
        }
      }
      const scored = new Set(['none']); /* roles some head has a score for (cross-attention: no self / previous) */
      for (const [, , r] of cells) for (const k of Object.keys(r.scores || {})) if (r.scores[k] !== null) scored.add(k);
      for (const role of AV.ROLES) {
        if (!scored.has(role.id) && !counts[role.id]) continue;
        const item = document.createElement('span');
        item.className = 'lg';
        item.dataset.role = role.id;
        const sw = document.createElement('span');
        sw.className = 'swatch';
        sw.style.background = role.color;
        const n = document.createElement('span');
        n.className = 'muted';
        n.textContent = ' ' + (counts[role.id] || 0);
        item.append(sw, ' ' + (role.id === 'none' ? 'other (best score < ' + min + ')' : role.name), n);
        this.legend.append(item);
      }
      if (!probesOn && kind === 'self')
        this.hint.textContent = 'Duplicate-token and induction heads need the repeated-random-sequence probes: attnviz roles --model MODEL --json > roles.json, ' +
          'then attnviz html TRACE --roles roles.json.';
      else if (kind === 'cross') this.hint.textContent = 'Cross-attention has no self / previous-token scores (queries and keys are different sequences).';
      /* the grid */
      const cw = Math.max(38, Math.min(64, Math.floor((this.el.clientWidth - 70) / Math.max(1, H)) - 3));
      this.grid.style.gridTemplateColumns = '40px repeat(' + H + ', ' + cw + 'px)';
      const bg = hexRGB(toHex(AV.cssVar('--bg') || '#ffffff'));
      const frag = document.createDocumentFragment();
      frag.append(document.createElement('span'));
      for (let h = 0; h < H; h++) frag.append(label('H' + h, 'shead'));
      let next = 0;
      for (let l = 0; l < L; l++) {
        frag.append(label('L' + l, 'slayer'));
        for (let h = 0; h < H; h++) {
          const c = cells[next] && cells[next][0] === l && cells[next][1] === h ? cells[next++][2] : null;
          const d = document.createElement('div');
          d.className = 'scell';
          if (!c) { d.classList.add('empty'); frag.append(d); continue; }
          const info = AV.roleInfo(c.role), a = AV.roleAlpha(c.score), rgb = hexRGB(info.color);
          const eff = rgb.map((x, i) => a * x + (1 - a) * bg[i]);
          d.style.backgroundColor = 'rgba(' + rgb.join(',') + ',' + a.toFixed(3) + ')';
          d.style.color = 0.2126 * eff[0] + 0.7152 * eff[1] + 0.0722 * eff[2] > 150 ? '#111' : '#fff';
          Object.assign(d.dataset, { layer: l, head: h, role: c.role, score: c.score === null ? '' : c.score });
          d.textContent = AV.fmtStat(c.score, 2);
          if (app.state.layer === l && app.state.head === h) d.classList.add('current');
          frag.append(d);
        }
      }
      this.grid.append(frag);
    }

    hover(e) {
      const c = e.target.closest ? e.target.closest('.scell') : null;
      if (!c || c.classList.contains('empty')) { this.app.tooltip(null); return; }
      const an = this.app.analysis, kind = this.app.state.kind, l = +c.dataset.layer, h = +c.dataset.head;
      const r = an.headRole(kind, l, h, this.useProbes && kind === 'self' && !!an.probeRoles());
      if (!r) return;
      const name = (id) => (id === 'none' ? 'other' : AV.roleInfo(id).name);
      const lines = ['layer ' + l + ', head ' + h + ' · ' + name(r.role) + ' (score ' + AV.fmtStat(r.score, 3) + ')'];
      const pairs = (items) => { for (let i = 0; i < items.length; i += 2) lines.push('  ' + items.slice(i, i + 2).join(' · ')); };
      lines.push(r.source === 'probes' ? 'role scores of the model probes (attnviz roles)' : 'role scores');
      pairs(Object.entries(r.scores || {}).map(([k, v]) => name(k) + ' ' + AV.fmtStat(v, 3)));
      const s = r.stats;
      if (s) {
        lines.push('statistics of this trace (means over ' + s.rows + ' query rows)');
        pairs(AV.STAT_FIELDS.map(([k, lab, dg, unit]) => lab + ' ' + AV.fmtStat(s[k], dg) + (s[k] === null ? '' : unit)));
        if (s.role !== r.role) lines.push('  role from these statistics: ' + name(s.role) + ' (' + AV.fmtStat(s.role_score, 3) + ')');
      }
      lines.push('click to open the heatmap');
      this.app.tooltip(lines.join('\n'), e.clientX, e.clientY, { q: l, k: h, value: r.score });
    }
  }

  function label(text, cls) {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }

  /* '#abc', '#aabbcc' or 'rgb(r, g, b)' -> '#aabbcc' */
  function toHex(c) {
    const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(c);
    if (m) return '#' + [m[1], m[2], m[3]].map((x) => (+x).toString(16).padStart(2, '0')).join('');
    if (/^#[0-9a-f]{3}$/i.test(c)) return '#' + c[1] + c[1] + c[2] + c[2] + c[3] + c[3];
    return /^#[0-9a-f]{6}$/i.test(c) ? c : '#ffffff';
  }

  AV.SummaryView = SummaryView;
})();
