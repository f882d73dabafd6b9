// Browser tests of the step view (web/steps.js) and of pages without attention or of differences, called by
// viewer.test.mjs with its harness. Pages made by tests/cli/test_viewer.sh: gen.html (a numpy-written
// generation trace), api.html (`attnviz import` of an OpenAI response), diff.html (`attnviz diff` of two numpy
// traces); expected numbers in gen_expect.json / diff_expect.json, computed by make_steps_fixtures.py (numpy).
import fs from 'node:fs';

const close = (a, b, tol) => Math.abs(a - b) <= tol;

export async function stepsTests(h) {
  const { test, check, pages, fix, shot } = h;

  if (pages.gen) {
    const P = pages.gen.page, want = JSON.parse(fs.readFileSync(fix('gen_expect.json'), 'utf8'));
    await test('steps_view_opens_generation', async () => {
      const st = await P.evaluate(() => window.attnviz.state);
      check(st.view === 'steps', `first view is ${st.view}, not steps`);
      const lines = await P.$$eval('#steps-strip .strip-line', (ls) => ls.map((l) => [l.firstChild.textContent, l.querySelectorAll('.tok').length]));
      check(JSON.stringify(lines) === JSON.stringify([['prompt', 3], ['output', 5]]), `strip lines ${JSON.stringify(lines)}`);
      check((await P.textContent('#steps-header')).includes('3 prompt tokens · 5 produced'), 'header');
      await shot(P, 'steps-generation');
    });
    await test('steps_token_hover_probability_matches_numpy', async () => {
      const box = await (await P.$('#steps-strip .tok[data-t="5"]')).boundingBox();
      await P.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      const text = await P.textContent('#tooltip'), m = /p ([0-9.]+)%/.exec(text);
      check(m && close(parseFloat(m[1]) / 100, want.steps[5].p, 5e-4 * Math.max(1, want.steps[5].p * 100)), `tooltip "${text}" vs p ${want.steps[5].p}`);
      check(text.includes('alternatives: “' + want.steps[5].alts[0][0] + '”'), `alternatives in "${text}"`);
    });
    await test('steps_selected_token_attention_matches_numpy', async () => {
      await P.click('#steps-strip .tok[data-t="6"]');
      check((await P.evaluate(() => window.attnviz.state.step)) === 6, 'clicking token 6 did not select it');
      const cap = await P.textContent('#steps-attn .caption');
      check(cap.includes('producing token 6 (query row 5'), `caption "${cap}"`);
      const read = () => P.$$eval('#steps-attn-strip .tok', (s) => s.map((x) => +x.dataset.w));
      const cases = [[{ layer: 1, head: 'mean' }, want.steps[6].head_mean[1]], [{ layer: 0, head: 2 }, want.steps[6].rows[0][2]]];
      for (const [patch, row] of cases) {
        await P.evaluate((p) => window.attnviz.set(p), patch);
        const got = await read();
        check(got.length === 6, `${got.length} keys shown for token 6 (keys 0..5)`);
        got.forEach((w, k) => check(close(w, row[k], 1e-3), `${JSON.stringify(patch)} key ${k}: ${w} vs ${row[k]}`));
      }
      await P.evaluate(() => window.attnviz.set({ head: 'mean' }));
      await P.selectOption('#steps-layers', 'mean');
      const got = await read(), row = want.steps[6].layer_mean_head_mean;
      got.forEach((w, k) => check(close(w, row[k], 1e-3), `mean over layers, key ${k}: ${w} vs ${row[k]}`));
      await P.selectOption('#steps-layers', 'layer');
      const alts = await P.$$eval('#steps-alts tr td:first-child', (c) => c.map((x) => x.textContent));
      check(alts[0] === '“' + want.steps[6].alts[0][0] + '”', `alternatives ${alts}`);
    });
    await test('steps_target_by_source_matrix', async () => {
      await P.evaluate(() => window.attnviz.set({ layer: 1, head: 'mean', step: 4 }));
      const c = await P.evaluate(() => {
        const v = window.attnviz.app.views.steps, g = v.geo, r = v.canvas.getBoundingClientRect();
        const row = g.M.rows.indexOf(6), col = 2; /* the row of token 7 (query 6), source 2 */
        return { x: r.left + g.x0 + (col + 0.5) * g.cs, y: r.top + g.y0 + (row + 0.5) * g.cs, label: g.M.rows.length };
      });
      check(c.label === 5, `${c.label} rows in the matrix, expected the 5 produced tokens`);
      await P.mouse.move(c.x, c.y);
      const text = await P.textContent('#tooltip'), m = /weight (-?[0-9.e+-]+)/.exec(text);
      const w = want.steps[7].head_mean[1][2];
      check(text.includes('producing token 7') && m && close(parseFloat(m[1]), w, 1e-3), `tooltip "${text.replace(/\n/g, ' | ')}" vs ${w}`);
      await P.mouse.click(c.x, c.y);
      check((await P.evaluate(() => window.attnviz.state.step)) === 7, 'clicking a matrix row did not select its token');
      const before = await P.$eval('#steps-strip .tok[data-t="4"]', (x) => x.style.background);
      await P.selectOption('#steps-color', 'entropy');
      const after = await P.$eval('#steps-strip .tok[data-t="4"]', (x) => x.style.background);
      check(before !== after, 'coloring by entropy did not change the strip');
      await shot(P, 'steps-matrix');
    });
  }

  if (pages.api) {
    const A = pages.api.page;
    await test('steps_view_without_attention', async () => {
      check((await A.evaluate(() => window.attnviz.state.view)) === 'steps', 'an API trace does not open on its steps');
      const notes = await A.textContent('#steps-notes');
      check(notes.includes('this provider returns no attention weights'), `notes: ${notes}`);
      check(notes.includes('OpenAI returns at most 20 alternatives'), `cap note missing: ${notes}`);
      check((await A.textContent('#steps-header')).includes('openai-chat response'), 'provider not named');
      check((await A.textContent('#steps-attn')).includes('this provider returns no attention weights'), 'attention panel');
      await A.click('#steps-strip .tok[data-t="0"]');
      const alts = await A.$$eval('#steps-alts tr td:first-child', (c) => c.map((x) => x.textContent));
      check(JSON.stringify(alts) === JSON.stringify(['“Paris”', '“Lyon”']), `alternatives ${alts}`);
      await shot(A, 'steps-api');
      for (const v of ['heatmap', 'model', 'head', 'summary', 'rollout', 'norm']) {
        await A.evaluate((x) => window.attnviz.set({ view: x }), v);
        const t = await A.textContent('#view-' + v);
        check(t.includes('this provider returns no attention weights'), `${v} view says "${t.slice(0, 80)}"`);
      }
      check(!(await A.isVisible('#layer')), 'the layer control is shown for a trace without attention');
    });
  }

  if (pages.diff) {
    const D = pages.diff.page, want = JSON.parse(fs.readFileSync(fix('diff_expect.json'), 'utf8'));
    await test('diff_page_heatmap_is_a_minus_b', async () => {
      await D.evaluate(() => window.attnviz.set({ view: 'heatmap', layer: 1, head: 'mean' }));
      check((await D.evaluate(() => window.attnviz.state.cmap)) === 'diverging', 'the diff page is not on the diverging map');
      for (const [q, k] of [[3, 1], [5, 0], [4, 4]]) {
        const c = await D.evaluate(([qq, kk]) => {
          const v = window.attnviz.app.views.heatmap, g = v.geo, r = v.canvas.getBoundingClientRect();
          return { x: r.left + g.x0 + (g.M.cols.indexOf(kk) + 0.5) * g.cs, y: r.top + g.y0 + (g.M.rows.indexOf(qq) + 0.5) * g.cs };
        }, [q, k]);
        await D.mouse.move(c.x, c.y);
        const text = await D.textContent('#tooltip'), m = /A − B mean weight (-?[0-9.e+-]+)/.exec(text);
        const w = want.layer1_head_mean[q][k];
        check(m && close(parseFloat(m[1]), w, 1e-3), `(${q}, ${k}): "${text}" vs ${w}`);
      }
      await shot(D, 'diff-heatmap');
      await D.evaluate(() => window.attnviz.set({ view: 'steps' }));
      const deltas = await D.$$eval('#steps-strip .tok', (s) => s.map((x) => (x.dataset.delta === '' ? null : +x.dataset.delta)));
      check(deltas.length === want.delta.length, `${deltas.length} tokens`);
      deltas.forEach((d, i) => check(d === null ? want.delta[i] === null : close(d, want.delta[i], 1e-5), `Δ ${i}: ${d} vs ${want.delta[i]}`));
      await D.evaluate(() => window.attnviz.set({ view: 'rollout' }));
      check((await D.textContent('#view-rollout')).includes('not defined for a difference'), 'rollout of a difference');
    });
  }
}
