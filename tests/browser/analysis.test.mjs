// Browser tests of the viewer's analysis views (head-summary grid, rollout, norm-based attention), run by
// viewer.test.mjs in the same browser. Expected values come from the trace files through expect_analysis.py
// (numpy, from the definitions in docs/ANALYSIS.md), never from the page's own numbers:
//   roles.html      synthetic causal trace with known roles and value norms (make_fixtures.py), float16 page
//   induction.html  models/induction on a repeated string, built with --roles (attnviz roles --json)
//   bert.html       the BERT-base-shaped page (8-bit data, no value norms)
//   cross.html      encoder-decoder trace (encoder-decoder rollout)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function py(...args) {
  return JSON.parse(execFileSync('/usr/bin/python3', [path.join(here, 'expect_analysis.py'), ...args.map(String)],
    { encoding: 'utf8', maxBuffer: 64 << 20 }));
}

const rgbOf = (css) => { const m = /rgba?\((\d+), (\d+), (\d+)(?:, ([0-9.]+))?\)/.exec(css); return m ? { rgb: [+m[1], +m[2], +m[3]], a: m[4] === undefined ? 1 : +m[4] } : null; };

/* Every summary cell (layer, head, rgb, alpha, text) and the legend's swatch color per role. */
async function gridState(page) {
  return page.evaluate(() => {
    const cells = [...document.querySelectorAll('#summary-grid .scell:not(.empty)')].map((d) => ({
      layer: +d.dataset.layer, head: +d.dataset.head, bg: getComputedStyle(d).backgroundColor, text: d.textContent,
    }));
    const legend = {};
    for (const s of document.querySelectorAll('#roles-legend .lg')) legend[s.dataset.role] = getComputedStyle(s.querySelector('.swatch')).backgroundColor;
    return { cells, legend };
  });
}

/* Checks that each cell has the legend color of the expected role and an opacity / number matching its score. */
function checkGrid(state, want, check, what) {
  check(state.cells.length === want.length, `${what}: ${state.cells.length} cells, want ${want.length}`);
  for (const w of want) {
    const c = state.cells.find((x) => x.layer === w.layer && x.head === w.head);
    check(c, `${what}: no cell for head ${w.layer}.${w.head}`);
    const leg = state.legend[w.role];
    check(leg, `${what}: the legend has no entry for role ${w.role}`);
    const got = rgbOf(c.bg), lg = rgbOf(leg);
    check(got.rgb.join() === lg.rgb.join(), `${what}: head ${w.layer}.${w.head} is colored ${got.rgb} but its role ${w.role} is ${lg.rgb} in the legend`);
    const alpha = 0.2 + 0.8 * Math.max(0, Math.min(1, w.score));
    check(Math.abs(got.a - alpha) < 0.01, `${what}: head ${w.layer}.${w.head} opacity ${got.a}, score ${w.score} wants ${alpha.toFixed(3)}`);
    check(Math.abs(parseFloat(c.text) - w.score) <= 0.0051, `${what}: head ${w.layer}.${w.head} shows ${c.text}, score is ${w.score}`);
  }
}

/* Page coordinates of cell (q, k) of a matrix drawn by AV.drawMatrix; which: 'rollout' or 'norm' / 'raw'. */
async function matrixCell(page, which, q, k) {
  return page.evaluate(([w, qq, kk]) => {
    const app = window.attnviz.app;
    const p = w === 'rollout' ? app.views.rollout : app.views.norm.panels.find((x) => x.kind === w);
    const g = p.geo, r = p.canvas.getBoundingClientRect();
    if (!g) return null;
    const row = g.M.rows.indexOf(qq), col = g.M.cols.indexOf(kk);
    if (row < 0 || col < 0) return null;
    return { x: r.left + g.x0 + (col + 0.5) * g.cs, y: r.top + g.y0 + (row + 0.5) * g.cs };
  }, [which, q, k]);
}

async function hoverValue(page, which, q, k, label, check) {
  const c = await matrixCell(page, which, q, k);
  check(c, `cell (${q}, ${k}) is not on the ${which} view`);
  await page.mouse.move(c.x, c.y);
  const text = await page.textContent('#tooltip');
  const m = new RegExp(label + ' (-?[0-9.e+-]+)( ±([0-9.e+-]+))?').exec(text);
  check(m, `no "${label}" value in tooltip "${text}"`);
  return { text, value: parseFloat(m[1]), step: m[3] ? parseFloat(m[3]) : 0 };
}

export async function analysisTests(h) {
  const { test, check, pages, fix, shot, paintMs } = h;

  if (pages.roles) {
    const P = pages.roles.page, trace = fix('roles.safetensors');
    await test('viewer_summary_grid_roles_match_python', async () => {
      await P.evaluate(() => window.attnviz.set({ view: 'summary' }));
      const want = py('roles', trace, 'self');
      const designed = JSON.parse(fs.readFileSync(fix('roles_designed.json'), 'utf8'));
      for (const d of designed) { /* the fixture is what it says (python's roles, not the viewer's) */
        const w = want.find((x) => x.layer === d.layer && x.head === d.head);
        check(w && w.role === d.role, `fixture head ${d.layer}.${d.head} (${d.pattern}) has python role ${w && w.role}, designed ${d.role}`);
      }
      const state = await gridState(P);
      checkGrid(state, want, check, 'roles.html');
      const roles = Object.keys(state.legend);
      for (const r of ['previous_token', 'first_token', 'self', 'broad', 'none'])
        check(roles.includes(r), `legend lacks ${r}: ${roles}`);
      await shot(P, 'summary-grid');
    });
    await test('viewer_summary_hover_and_click', async () => {
      const pos = await P.evaluate(() => {
        const r = document.querySelector('#summary-grid .scell[data-layer="0"][data-head="1"]').getBoundingClientRect();
        return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
      });
      await P.mouse.move(pos.x, pos.y);
      const text = await P.textContent('#tooltip');
      const w = py('roles', trace, 'self').find((x) => x.layer === 0 && x.head === 1);
      check(text.includes('previous token (score ' + w.score.toFixed(3) + ')'), `tooltip: ${text.split('\n')[0]}`);
      for (const f of ['entropy', 'mean distance', 'first token (sink)', 'special tokens', 'punctuation', 'uniformity', 'norm-based'])
        check(text.includes(f), `tooltip lacks ${f}`);
      const m = /entropy (-?[0-9.]+)/.exec(text);
      check(m && Math.abs(parseFloat(m[1]) - w.entropy) < 0.0011, `entropy ${m && m[1]} vs numpy ${w.entropy}`);
      await shot(P, 'summary-grid-hover');
      await P.mouse.click(pos.x, pos.y);
      const st = await P.evaluate(() => window.attnviz.state);
      check(st.view === 'heatmap' && st.layer === 0 && st.head === 1, `after click: ${st.view} layer ${st.layer} head ${st.head}`);
    });
    await test('viewer_rollout_matches_numpy', async () => {
      await P.evaluate(() => window.attnviz.set({ view: 'rollout', qsel: null, ksel: null, qtext: '', ktext: '', exclude: false }));
      const R = py('rollout', trace, 'self');
      for (const [q, k] of [[5, 3], [11, 0], [7, 7], [2, 1]]) {
        const { value } = await hoverValue(P, 'rollout', q, k, 'rollout', check);
        check(Math.abs(value - R[q][k]) <= 1e-3 * Math.abs(R[q][k]) + 2e-4, `rollout (${q}, ${k}): tooltip ${value}, numpy ${R[q][k]}`);
      }
      const note = await P.textContent('#view-rollout .caveat');
      check(note.includes('(A + I)/2') && note.includes('I/2') && note.includes('not an explanation'), `caveat: ${note}`);
      await shot(P, 'rollout');
    });
    await test('viewer_norm_based_matches_alpha_times_vnorm', async () => {
      await P.evaluate(() => window.attnviz.set({ view: 'norm', layer: 1, head: 2 }));
      for (const [q, k] of [[5, 3], [9, 0], [11, 10]]) {
        const { value } = await hoverValue(P, 'norm', q, k, 'norm-based', check);
        const e = py('norm', trace, 1, 2, q, k);
        check(Math.abs(value - e.value) <= 1e-3 * Math.abs(e.value) + 1e-4, `norm-based (${q}, ${k}): tooltip ${value}, alpha * vnorm = ${e.value}`);
        const raw = await hoverValue(P, 'raw', q, k, 'α \\(weight\\)', check);
        check(Math.abs(raw.value - e.alpha) <= 1e-3 * e.alpha + 1e-4, `raw panel α ${raw.value} vs ${e.alpha}`);
      }
      await shot(P, 'norm-based');
      await P.evaluate(() => window.attnviz.set({ head: 'mean' }));
      const { value } = await hoverValue(P, 'norm', 7, 2, 'norm-based', check);
      const e = py('norm', trace, 1, 'mean', 7, 2);
      check(Math.abs(value - e.value) <= 1e-3 * e.value + 1e-4, `mean norm-based: tooltip ${value}, numpy ${e.value}`);
      await P.selectOption('#norm-mode', 'norm');
      check(await P.evaluate(() => document.getElementById('norm-raw-canvas').parentElement.hidden), 'raw panel still shown in "norm-based" mode');
      await P.selectOption('#norm-mode', 'raw');
      check(await P.evaluate(() => document.getElementById('norm-canvas').parentElement.hidden), 'norm panel still shown in "raw" mode');
      await P.selectOption('#norm-mode', 'both');
    });
  }

  if (pages.induction) {
    const I = pages.induction.page;
    await test('viewer_summary_probe_roles', async () => {
      await I.evaluate(() => window.attnviz.set({ view: 'summary' }));
      const roles = JSON.parse(fs.readFileSync(fix('induction_roles.json'), 'utf8'));
      const want = roles.heads.map((x) => ({ layer: x.layer, head: x.head, role: x.role, score: x.score }));
      checkGrid(await gridState(I), want, check, 'induction.html (probes)');
      check(want.filter((x) => x.role === 'induction').length >= 2, 'fixture: the probes find no induction heads');
      await shot(I, 'summary-induction-probes');
      await I.selectOption('#roles-source', 'trace');
      const fromTrace = py('roles', fix('induction.safetensors'), 'self');
      const st = await gridState(I);
      checkGrid(st, fromTrace, check, 'induction.html (trace)');
      check(!('induction' in st.legend), 'the legend shows induction without the probes');
      await I.selectOption('#roles-source', 'probes');
    });
  }

  if (pages.bert) {
    const B = pages.bert.page;
    await test('viewer_rollout_u8_bert_matches_numpy', async () => {
      await B.evaluate(() => window.attnviz.set({ view: 'rollout', qsel: null, ksel: null, qtext: '', ktext: '', exclude: false, log: false }));
      const R = py('rollout', fix('bert.safetensors'), 'self');
      for (const [q, k] of [[10, 7], [100, 0], [64, 64], [127, 126]]) {
        const { value, step } = await hoverValue(B, 'rollout', q, k, 'rollout', check);
        const tol = Math.max(...R[q]) / 510 + 1e-6;
        check(step > 0, 'u8 rollout tooltip does not state its precision');
        check(Math.abs(value - R[q][k]) <= tol + 1e-3 * R[q][k], `bert rollout (${q}, ${k}): tooltip ${value}, numpy ${R[q][k]} (±${tol})`);
      }
      await shot(B, 'rollout-bert');
    });
    await test('viewer_analysis_views_paint_times', async () => {
      const times = { summary: [], rollout: [] };
      for (let i = 0; i < 3; i++) {
        for (const v of ['summary', 'rollout']) {
          await paintMs(B, { view: 'heatmap' }, 'heatmap-canvas');
          times[v].push(await paintMs(B, { view: v }, v === 'rollout' ? 'rollout-canvas' : 'heatmap-canvas'));
        }
      }
      const best = (a) => Math.min(...a);
      console.log(`# bert-base-shaped page: head-summary grid ${times.summary.map((t) => t.toFixed(1)).join(', ')} ms, ` +
        `rollout ${times.rollout.map((t) => t.toFixed(1)).join(', ')} ms`);
      check(best(times.summary) < 300 && best(times.rollout) < 300, `summary ${best(times.summary)} ms, rollout ${best(times.rollout)} ms (limit 300)`);
      check((await B.locator('#summary-grid .scell').count()) === 144, 'bert grid is not 12 x 12');
    });
    await test('viewer_norm_based_without_vnorm_says_so', async () => {
      await B.evaluate(() => window.attnviz.set({ view: 'norm' }));
      const note = await B.textContent('#view-norm .note');
      check(/needs these value norms\. They cannot be shown here: this trace has none \(vnorm\.<layer>\)/.test(note), `norm view without vnorm: ${note}`);
      check(await B.evaluate(() => document.getElementById('norm-canvas').closest('.row').hidden), 'norm panels shown without vnorm');
      await shot(B, 'norm-based-absent');
      await B.evaluate(() => window.attnviz.set({ view: 'summary', theme: 'dark' }));
      await shot(B, 'summary-grid-bert-dark');
      await B.evaluate(() => window.attnviz.set({ view: 'heatmap', theme: 'light' }));
    });
  }

  if (pages.cross) {
    const C = pages.cross.page;
    await test('viewer_rollout_encoder_decoder_matches_numpy', async () => {
      await C.evaluate(() => window.attnviz.set({ view: 'rollout', kind: 'cross', layer: 0 }));
      const R = py('rollout', fix('cross.safetensors'), 'cross');
      for (const [q, k] of [[2, 4], [4, 1], [0, 0]]) {
        const { value } = await hoverValue(C, 'rollout', q, k, 'rollout', check);
        check(Math.abs(value - R[q][k]) <= 1e-3 * R[q][k] + 2e-4, `cross rollout (${q}, ${k}): tooltip ${value}, numpy ${R[q][k]}`);
      }
      const text = await C.textContent('#tooltip');
      check(text.includes('target') && text.includes('source'), `cross rollout tooltip: ${text}`);
      await shot(C, 'rollout-cross');
      await C.evaluate(() => window.attnviz.set({ view: 'summary' }));
      const st = await gridState(C);
      checkGrid(st, py('roles', fix('cross.safetensors'), 'cross'), check, 'cross.html (cross)');
      check(!('self' in st.legend) && !('previous_token' in st.legend), 'cross-attention legend lists self / previous token');
      await C.evaluate(() => window.attnviz.set({ view: 'heatmap' }));
    });
  }
}
