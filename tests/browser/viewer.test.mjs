// Browser tests of the standalone HTML viewer: Playwright (playwright-core) driving Debian's chromium headless.
// Prints one "PASS name" / "FAIL name: why" / "SKIP name: why" line per test (tests/run.sh counts them).
//
//   node viewer.test.mjs FIXDIR SHOTDIR
// FIXDIR holds the pages made by tests/cli/test_viewer.sh (story.html optional, bert.html, cross.html,
// vit.html, big.html, roles.html, induction.html, gen.html, api.html, diff.html) and their traces (*.safetensors); expected weights are
// computed from the trace files by expect.py and expect_analysis.py (numpy), independently of the viewer.
// The analysis views (head roles, rollout, norm-based) are tested in analysis.test.mjs.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { analysisTests } from './analysis.test.mjs';
import { everydayTests } from './everyday.test.mjs';
import { stepsTests } from './steps.test.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const [fixdir, shotdir] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
let failed = 0;

function report(name, ok, why) {
  if (ok === 'skip') console.log(`SKIP ${name}: ${why}`);
  else if (ok) console.log(`PASS ${name}`);
  else { console.log(`FAIL ${name}: ${why}`); failed++; }
}

async function test(name, fn) {
  try {
    const r = await fn();
    if (typeof r === 'string' && r.startsWith('skip:')) report(name, 'skip', r.slice(5).trim());
    else report(name, true);
  } catch (e) {
    report(name, false, (e && e.message ? e.message : String(e)).split('\n')[0]);
  }
}

function check(cond, msg) { if (!cond) throw new Error(msg); }

function expected(trace, kind, layer, head, q, k, exclude) {
  const args = [path.join(here, 'expect.py'), trace, kind, String(layer), String(head), String(q), String(k)];
  if (exclude) args.push('exclude');
  return JSON.parse(execFileSync('/usr/bin/python3', args, { encoding: 'utf8' }));
}

const fix = (name) => path.join(fixdir, name);
const have = (name) => fs.existsSync(fix(name));

/* Opens a page and records console errors, page errors and every request other than the page itself. */
async function open(ctx, name) {
  const page = await ctx.newPage();
  const url = pathToFileURL(fix(name)).href;
  const errors = [], requests = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => { if (r.url() !== url) requests.push(r.url()); });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => window.attnviz && window.attnviz.lastPaint);
  return { page, errors, requests };
}

const canvasData = (page, id) => page.evaluate((i) => document.getElementById(i).toDataURL(), id);

/* Center of heatmap cell (query q, key k) in page coordinates. */
async function cellCenter(page, q, k) {
  return page.evaluate(([qq, kk]) => {
    const v = window.attnviz.app.views.heatmap, g = v.geo, r = v.canvas.getBoundingClientRect();
    const row = g.M.rows.indexOf(qq), col = g.M.cols.indexOf(kk);
    if (row < 0 || col < 0) return null;
    return { x: r.left + g.x0 + (col + 0.5) * g.cs, y: r.top + g.y0 + (row + 0.5) * g.cs };
  }, [q, k]);
}

/* Hovers cell (q, k) and returns the tooltip text and the number after "weight". */
async function hoverWeight(page, q, k) {
  const c = await cellCenter(page, q, k);
  check(c, `cell (${q}, ${k}) is not on the heatmap`);
  await page.mouse.move(c.x, c.y);
  const text = await page.textContent('#tooltip');
  const m = /weight (-?[0-9.e+-]+)/.exec(text);
  check(m, `no weight in tooltip "${text}"`);
  return { text, value: parseFloat(m[1]) };
}

/* Paint time of a view in ms, including decoding (cache cleared) and the raster flush (getImageData). */
async function paintMs(page, patch, canvasId) {
  return page.evaluate(([p, id]) => {
    window.attnviz.trace.cache.clear();
    const t0 = performance.now();
    window.attnviz.set(p);
    document.getElementById(id).getContext('2d').getImageData(0, 0, 1, 1);
    void document.body.offsetHeight; /* and the layout of views built from elements */
    return performance.now() - t0;
  }, [patch, canvasId]);
}

async function shot(page, name) {
  fs.mkdirSync(shotdir, { recursive: true });
  await page.screenshot({ path: path.join(shotdir, name + '.png'), fullPage: false });
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'attnviz-chromium-'));
  let ctx;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 860 },
    });
  } catch (e) {
    report('viewer_browser', 'skip', 'chromium does not start: ' + String(e.message || e).split('\n')[0]);
    return;
  }
  const main = have('story.html') ? 'story' : 'cross';
  const pages = {};
  try {
    for (const name of ['story', 'bert', 'cross', 'vit', 'big', 'roles', 'induction', 'gen', 'api', 'diff']) {
      if (!have(name + '.html')) continue;
      await test(`viewer_offline_${name}`, async () => {
        const p = await open(ctx, name + '.html');
        pages[name] = p;
        await p.page.waitForTimeout(150);
        check(p.errors.length === 0, `${p.errors.length} console errors: ${p.errors[0]}`);
        check(p.requests.length === 0, `${p.requests.length} network requests: ${p.requests[0]}`);
      });
    }
    const S = pages[main] && pages[main].page;
    const mainKind = main === 'story' ? 'self' : 'cross';

    await test('viewer_layer_head_change_repaints', async () => {
      if (main === 'cross') await S.selectOption('#kind', 'cross');
      const a = await canvasData(S, 'heatmap-canvas');
      await S.selectOption('#layer', '1');
      const b = await canvasData(S, 'heatmap-canvas');
      check(a !== b, 'canvas unchanged after choosing layer 1');
      await S.selectOption('#head', '2');
      const c = await canvasData(S, 'heatmap-canvas');
      check(b !== c, 'canvas unchanged after choosing head 2');
      const st = await S.evaluate(() => window.attnviz.state);
      check(st.layer === 1 && st.head === 2, `state is layer ${st.layer} head ${st.head}`);
      await shot(S, 'heatmap');
    });

    await test('viewer_tooltip_matches_trace_f16', async () => {
      const [q, k] = main === 'story' ? [5, 3] : [3, 4];
      const { text, value } = await hoverWeight(S, q, k);
      const e = expected(fix(main + '.safetensors'), mainKind, 1, 2, q, k);
      check(Math.abs(value - e.value) <= 1e-3 * Math.abs(e.value) + 2e-4, `tooltip says ${value}, trace has ${e.value}`);
      check(text.includes(`query ${q}`) && text.includes(`key ${k}`), `tooltip lacks query/key: ${text}`);
      await shot(S, 'heatmap-tooltip');
    });

    await test('viewer_tooltip_mean_exclude_first', async () => {
      await S.selectOption('#head', 'mean');
      await S.check('#exclude');
      const q = 4, k = 2;
      const { value } = await hoverWeight(S, q, k);
      const e = expected(fix(main + '.safetensors'), mainKind, 1, 'mean', q, k, true);
      check(Math.abs(value - e.value) <= 2e-3 * Math.abs(e.value) + 5e-4, `tooltip says ${value}, numpy says ${e.value}`);
      const first = await cellCenter(S, 0, 0);
      check(first === null, 'token 0 still shown with exclude first token');
      await S.uncheck('#exclude');
    });

    await test('viewer_views_of_main_trace', async () => {
      for (const view of ['model', 'head']) {
        await S.click(`#tabs button[data-view=${view}]`);
        check((await S.evaluate(() => window.attnviz.state.view)) === view, `tab ${view} not active`);
        await shot(S, `${view}-${main}`);
      }
      await S.click('#theme');
      await shot(S, `head-${main}-dark`);
      await S.click('#theme');
      await S.click('#tabs button[data-view=heatmap]');
    });

    if (pages.bert) {
      const B = pages.bert.page;
      await test('viewer_tooltip_matches_trace_u8', async () => {
        await B.selectOption('#layer', '3');
        await B.selectOption('#head', '5');
        const q = 10, k = 7;
        const { text, value } = await hoverWeight(B, q, k);
        const e = expected(fix('bert.safetensors'), 'self', 3, 5, q, k);
        const tol = e.row_max / 510 + 1e-6;
        check(Math.abs(value - e.value) <= tol + 1e-4 * Math.abs(e.value), `tooltip says ${value}, trace has ${e.value} (±${tol})`);
        check(text.includes('±'), 'u8 tooltip does not state its precision');
      });
      await test('viewer_model_view_click_opens_head', async () => {
        await B.click('#tabs button[data-view=model]');
        const pos = await B.evaluate(() => {
          const v = window.attnviz.app.views.model, g = v.geo, r = v.canvas.getBoundingClientRect();
          return { x: r.left + g.lw + 3 * (g.tw + g.gap) + g.tw / 2, y: r.top + g.top + 2 * (g.th + g.gap) + g.th / 2 };
        });
        await shot(B, 'model');
        await B.mouse.click(pos.x, pos.y);
        const st = await B.evaluate(() => window.attnviz.state);
        check(st.view === 'heatmap' && st.layer === 2 && st.head === 3, `after click: ${st.view} layer ${st.layer} head ${st.head}`);
        check((await B.inputValue('#layer')) === '2' && (await B.inputValue('#head')) === '3', 'toolbar not updated');
      });
      await test('viewer_model_view_paint_under_1s', async () => {
        const times = [];
        for (let i = 0; i < 3; i++) {
          await paintMs(B, { view: 'heatmap' }, 'heatmap-canvas');
          times.push(await paintMs(B, { view: 'model' }, 'model-canvas'));
        }
        const best = Math.min(...times);
        console.log(`# model view (12 layers x 12 heads x 128 tokens) paint: ${times.map((t) => t.toFixed(1)).join(', ')} ms`);
        check(best < 1000, `model view took ${best.toFixed(0)} ms`);
      });
      await test('viewer_bert_controls', async () => {
        await B.evaluate(() => window.attnviz.set({ view: 'heatmap', layer: 0, head: 0 }));
        const base = await canvasData(B, 'heatmap-canvas');
        await B.selectOption('#scale', 'log');
        check((await canvasData(B, 'heatmap-canvas')) !== base, 'log scale did not change the canvas');
        await B.selectOption('#scale', 'linear');
        await B.selectOption('#cmap', 'magma');
        check((await canvasData(B, 'heatmap-canvas')) !== base, 'magma did not change the canvas');
        await B.selectOption('#cmap', 'viridis');
        await B.fill('#qsel', '1-5');
        await B.press('#qsel', 'Enter');
        await B.fill('#ksel', '0-3, 9');
        await B.press('#ksel', 'Enter');
        const g = await B.evaluate(() => { const m = window.attnviz.app.views.heatmap.geo.M; return [m.rows, m.cols]; });
        check(JSON.stringify(g[0]) === '[1,2,3,4,5]' && JSON.stringify(g[1]) === '[0,1,2,3,9]', `subset gave ${JSON.stringify(g)}`);
        await shot(B, 'heatmap-subset');
        await B.fill('#qsel', 'x-');
        await B.press('#qsel', 'Enter');
        check(await B.evaluate(() => document.getElementById('qsel').classList.contains('bad')), 'bad subset not flagged');
        await B.fill('#qsel', '');
        await B.press('#qsel', 'Enter');
        await B.fill('#ksel', '');
        await B.press('#ksel', 'Enter');
        const bg = () => B.evaluate(() => getComputedStyle(document.body).backgroundColor);
        const light = await bg();
        await B.click('#theme');
        check((await B.evaluate(() => document.body.className)) === 'dark' && (await bg()) !== light, 'theme did not switch');
        await shot(B, 'heatmap-dark');
        await B.click('#theme');
      });
      await test('viewer_head_view', async () => {
        await B.evaluate(() => window.attnviz.set({ view: 'head', layer: 0, head: 'mean' }));
        const n = await B.locator('#view-head .heads input').count();
        check(n === 12, `${n} head checkboxes, want 12`);
        await B.evaluate(() => window.attnviz.set({ qsel: [...Array(24).keys()], ksel: [...Array(24).keys()], qtext: '0-23', ktext: '0-23' }));
        await shot(B, 'head-view');
        const all = await canvasData(B, 'head-canvas');
        const pos = await B.evaluate(() => {
          const v = window.attnviz.app.views.head, g = v.geo, r = v.canvas.getBoundingClientRect();
          return { x: r.left + g.xl - 20, y: r.top + g.yq(5) };
        });
        await B.mouse.move(pos.x, pos.y);
        const focus = await B.evaluate(() => window.attnviz.app.views.head.focus);
        check(focus && focus.side === 'q' && focus.index === 5, `hover focus ${JSON.stringify(focus)}`);
        check((await canvasData(B, 'head-canvas')) !== all, 'hovering a token did not isolate its row');
        await shot(B, 'head-view-hover');
        await B.mouse.move(1, 1);
        await B.uncheck('#view-head .heads input[data-head="0"]');
        check((await canvasData(B, 'head-canvas')) !== all, 'unchecking head 0 changed nothing');
        await B.evaluate(() => window.attnviz.set({ qsel: null, ksel: null, qtext: '', ktext: '' }));
      });
    }

    if (pages.cross) {
      const C = pages.cross.page;
      await test('viewer_cross_attention', async () => {
        const kinds = await C.evaluate(() => [...document.getElementById('kind').options].map((o) => o.value));
        check(JSON.stringify(kinds) === '["enc","dec","cross"]', `kinds ${JSON.stringify(kinds)}`);
        check(await C.isVisible('#kind'), 'kind selector hidden');
        await C.evaluate(() => window.attnviz.set({ view: 'heatmap' }));
        await C.selectOption('#kind', 'cross');
        const M = await C.evaluate(() => { const g = window.attnviz.app.views.heatmap.geo.M; return [g.rows.length, g.cols.length]; });
        check(M[0] === 5 && M[1] === 7, `cross heatmap is ${M[0]} x ${M[1]}, want 5 target x 7 source`);
        const { text, value } = await hoverWeight(C, 2, 4);
        check(text.includes('“cat”') && text.includes('“sur”'), `cross tooltip labels: ${text}`);
        const e = expected(fix('cross.safetensors'), 'cross', 0, 'mean', 2, 4);
        check(Math.abs(value - e.value) <= 1e-3 * e.value + 2e-4, `tooltip ${value} vs ${e.value}`);
        await shot(C, 'cross-heatmap');
        await C.evaluate(() => window.attnviz.set({ view: 'head' }));
        await shot(C, 'cross-head-view');
      });
    }

    if (pages.vit) {
      const V = pages.vit.page;
      await test('viewer_image_view', async () => {
        const st = await V.evaluate(() => window.attnviz.state.view);
        check(st === 'image', `initial view ${st}, want image`);
        await V.waitForFunction(() => window.attnviz.app.views.image.bitmap, null, { timeout: 5000 });
        await V.evaluate(() => window.attnviz.set({ layer: 1, head: 0 }));
        check(await V.isVisible('#image-canvas'), 'image canvas hidden although the trace embeds an image');
        const pos = await V.evaluate(() => {
          const v = window.attnviz.app.views.image, r = v.gridCanvas.getBoundingClientRect();
          return { x: r.left + (2.5 * v.geo.cw) / 4, y: r.top + (1.5 * v.geo.ch) / 4 };
        });
        await V.mouse.move(pos.x, pos.y);
        const text = await V.textContent('#tooltip');
        const m = /weight (-?[0-9.e+-]+)/.exec(text);
        check(m && text.includes('patch (1, 2)'), `tooltip: ${text}`);
        const e = expected(fix('vit.safetensors'), 'self', 1, 0, 0, 7);
        check(Math.abs(parseFloat(m[1]) - e.value) <= 1e-3 * e.value + 2e-4, `patch weight ${m[1]} vs ${e.value}`);
        check(e.value === e.row_max, 'fixture: patch (1, 2) should be the strongest key of CLS');
        await shot(V, 'image-view');
        await V.mouse.click(pos.x, pos.y);
        check((await V.evaluate(() => window.attnviz.app.views.image.query)) === 7, 'clicking a patch did not make it the query');
      });
    }

    if (pages.big) {
      const G = pages.big.page;
      await test('viewer_2048_head_paint_under_300ms', async () => {
        const times = [];
        for (let i = 0; i < 5; i++) {
          await G.evaluate(() => window.attnviz.set({ view: 'model' }));
          times.push(await paintMs(G, { view: 'heatmap' }, 'heatmap-canvas'));
        }
        const best = Math.min(...times);
        console.log(`# 2048 x 2048 head paint: ${times.map((t) => t.toFixed(1)).join(', ')} ms`);
        check(best < 300, `2048 x 2048 head took ${best.toFixed(0)} ms`);
        await shot(G, 'heatmap-2048');
      });
    }

    await analysisTests({ test, check, pages, fix, shot, paintMs });
    await everydayTests({ test, check, pages, fix, have, shot, open: (name) => open(ctx, name) });
    await stepsTests({ test, check, pages, fix, shot });

    for (const [name, p] of Object.entries(pages)) {
      await test(`viewer_no_errors_after_interaction_${name}`, async () => {
        check(p.errors.length === 0, `${p.errors.length} console errors: ${p.errors[0]}`);
        check(p.requests.length === 0, `${p.requests.length} network requests: ${p.requests[0]}`);
      });
    }
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(() => process.exit(failed ? 1 : 0), (e) => { console.log(`FAIL viewer_browser: ${e.message}`); process.exit(1); });
