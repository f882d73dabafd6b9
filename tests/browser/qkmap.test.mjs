// Browser tests of the viewer's Q/K map (web/qkmap.js), Playwright (playwright-core) driving Debian's chromium
// headless. The projections themselves are checked against numpy by tests/cli/test_qkmap.sh
// (expect_qkmap.py check); here: the view draws its points, hovering one shows its token (the page's own
// token labels, not the map's), clicking a query rings the keys numpy ranks strongest in the trace's matrix,
// and pages without queries and keys hide the tab.
//   node qkmap.test.mjs DIR SHOTDIR   (DIR: qk.html + qk.safetensors opened on --view qkmap --layer 1
//                                      --head 2; cross.html: lazy encoder-decoder; plain.html: no q/k)
// Prints one "PASS name" / "FAIL name: why" line per test.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { FLAGS, check, failures, openPage, test } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const [dir, shotdir] = process.argv.slice(2);
const open = (ctx, name) => openPage(ctx, pathToFileURL(path.join(dir, name)).href);
const numpyTop = (...args) => JSON.parse(execFileSync('/usr/bin/python3', [path.join(here, 'expect_qkmap.py'), 'top',
  path.join(dir, 'qk.safetensors'), ...args.map(String)], { encoding: 'utf8' }));

/* Screen position of map point i (its center). */
const pointAt = (page, i) => page.evaluate((ii) => {
  const v = window.attnviz.app.views.qkmap, p = v.geo.pts[ii], b = v.canvas.getBoundingClientRect();
  return { x: b.left + p.px, y: b.top + p.py, side: p.side, pos: p.pos };
}, i);

/* Pixels of the canvas in color rgb (exact), counted. */
const countColor = (page, rgb) => page.evaluate((c) => {
  const cv = window.attnviz.app.views.qkmap.canvas, d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] === c[0] && d[i + 1] === c[1] && d[i + 2] === c[2] && d[i + 3] === 255) n++;
  return n;
}, rgb);

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: FLAGS });
const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const qk = await open(ctx, 'qk.html');
const P = qk.page;

await test('viewer_qkmap_draws_points', async () => {
  const st = await P.evaluate(() => window.attnviz.state);
  check(st.view === 'qkmap' && st.layer === 1 && st.head === 2, `page starts on ${JSON.stringify(st)}`);
  check(!(await P.isHidden('#tabs button[data-view=qkmap]')), 'no Q/K map tab');
  const last = await P.evaluate(() => window.attnviz.app.views.qkmap.last);
  const K = await P.evaluate(() => window.attnviz.trace.meta.qkmap.kinds.self);
  const T = await P.evaluate(() => window.attnviz.trace.set('self', 1).nq);
  check(K.qpos.length === T && K.kpos.length === T, `sampled ${K.qpos.length} + ${K.kpos.length} of ${T} tokens`);
  check(last && last.n === 2 * T && last.layer === 1 && last.head === 2, `last ${JSON.stringify(last)}`);
  check((await countColor(P, [31, 119, 180])) > 20, 'no query (blue) points drawn');
  check((await countColor(P, [255, 127, 14])) > 20, 'no key (orange) points drawn');
  await P.selectOption('#qkmap-side', 'q');
  check((await countColor(P, [255, 127, 14])) === 0, '"show: queries" still draws keys');
  await P.selectOption('#qkmap-side', 'both');
  await P.selectOption('#qkmap-color', 'position');
  check((await countColor(P, [31, 119, 180])) < 20, 'coloring by position kept the side colors');
  await P.selectOption('#qkmap-color', 'type');
  await P.screenshot({ path: path.join(shotdir, 'qkmap.png') });
});

await test('viewer_qkmap_hover_shows_token', async () => {
  const n = await P.evaluate(() => window.attnviz.app.views.qkmap.geo.pts.length);
  let checked = 0;
  for (const i of [3, Math.floor(n / 2) + 5, n - 1]) {
    const p = await pointAt(P, i);
    const hit = await P.evaluate(([x, y]) => window.attnviz.app.views.qkmap.nearest({ clientX: x, clientY: y }), [p.x, p.y]);
    if (hit !== i) continue; /* another point lies on top of this one */
    await P.mouse.move(p.x, p.y);
    const tip = await P.evaluate(() => { const t = document.getElementById('tooltip'); return t.hidden ? null : t.textContent; });
    const tok = await P.evaluate(([side, pos]) => window.attnviz.trace.labels('self')[side ? 'k' : 'q'][pos], [p.side, p.pos]);
    check(tip && tip.includes('“' + tok + '”') && tip.includes((p.side ? 'key' : 'query') + ' at position ' + p.pos),
      `point ${i} (${p.side ? 'key' : 'query'} ${p.pos}, token "${tok}"): tooltip ${JSON.stringify(tip)}`);
    checked++;
  }
  check(checked >= 2, `only ${checked} points could be hovered alone`);
  await P.screenshot({ path: path.join(shotdir, 'qkmap-tooltip.png') });
});

await test('viewer_qkmap_click_rings_strongest_keys', async () => {
  const T = await P.evaluate(() => window.attnviz.trace.set('self', 1).nq);
  let done = false;
  for (let q = T - 1; q > 0 && !done; q--) { /* the last query that lies alone under the mouse */
    const p = await pointAt(P, q);
    const hit = await P.evaluate(([x, y]) => window.attnviz.app.views.qkmap.nearest({ clientX: x, clientY: y }), [p.x, p.y]);
    if (hit !== q) continue;
    await P.mouse.click(p.x, p.y);
    const last = await P.evaluate(() => window.attnviz.app.views.qkmap.last);
    check(last.selected === q && last.top && last.top.length === 5, `clicking query ${q}: ${JSON.stringify(last)}`);
    const want = numpyTop('self', 1, 2, p.pos, 5), fifth = want[4][1];
    const row = new Map(want.map(([j, w]) => [j, w]));
    check(last.top[0].pos === want[0][0], `strongest key ${last.top[0].pos}, numpy ${want[0][0]}`);
    for (const t of last.top) {
      check(t.inMap, `key ${t.pos} is missing from an unsampled map`);
      check(t.weight >= fifth - 2e-3, `key ${t.pos} (${t.weight}) is weaker than numpy's 5th (${fifth})`);
      if (row.has(t.pos)) check(Math.abs(t.weight - row.get(t.pos)) < 2e-3, `key ${t.pos}: ${t.weight} vs numpy ${row.get(t.pos)}`);
    }
    const info = await P.textContent('#qkmap-info');
    check(info.includes('attends most to') && info.includes(String(want[0][0])), `info: ${info}`);
    await P.screenshot({ path: path.join(shotdir, 'qkmap-selected.png') });
    done = true;
  }
  check(done, 'no query point lies alone under the mouse');
});

await test('viewer_qkmap_cross_attention', async () => {
  const { page, errors } = await open(ctx, 'cross.html');
  await page.evaluate(() => window.attnviz.set({ view: 'qkmap', kind: 'cross', layer: 0, head: 1 }));
  const r = await page.evaluate(() => {
    const tr = window.attnviz.trace, K = tr.meta.qkmap.kinds.cross, s = tr.set('cross', 0);
    return { last: window.attnviz.app.views.qkmap.last, nq: K.qpos.length, nk: K.kpos.length, tq: s.nq, tk: s.nk };
  });
  check(r.last && r.last.kind === 'cross' && r.last.n === r.nq + r.nk, `last ${JSON.stringify(r.last)}`);
  check(r.nq === r.tq && r.nk === r.tk, `cross map ${r.nq} x ${r.nk}, attention ${r.tq} x ${r.tk}`);
  const note = await page.textContent('#view-qkmap .note');
  check(note.includes('cross layer 0') && note.includes('PCA'), `note: ${note}`);
  check(errors.length === 0, 'console errors: ' + errors.join('; '));
});

await test('viewer_qkmap_hidden_without_qk', async () => {
  const { page } = await open(ctx, 'plain.html');
  check(await page.isHidden('#tabs button[data-view=qkmap]'), 'a Q/K map tab on a page without queries and keys');
  await page.evaluate(() => window.attnviz.set({ view: 'qkmap' }));
  check((await page.evaluate(() => window.attnviz.state.view)) === 'heatmap', 'the qkmap view opened without data');
});

await test('viewer_qkmap_no_errors', async () => {
  check(qk.errors.length === 0, 'console errors: ' + qk.errors.join('; '));
  check(qk.requests.length === 0, 'network requests: ' + qk.requests.join(', '));
});

await ctx.close();
await browser.close();
process.exit(failures() ? 1 : 0);
