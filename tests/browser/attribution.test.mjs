// Browser tests of the viewer's Attribution and Logit lens tabs (web/attribution.js, web/lens.js), Playwright
// (playwright-core) driving Debian's chromium headless. Expected numbers come from the trace files read by numpy
// (scripts/safetensors_np.py), never from the page's own data:
//   node attribution.test.mjs DIR SHOTDIR   (DIR: attr.html + attr.safetensors, lens.html + lens.safetensors)
// Prints one "PASS name" / "FAIL name: why" line per test.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { FLAGS, check, failures, openPage, test } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const [dir, shotdir] = process.argv.slice(2);

/* Every tensor of a trace file as nested arrays (numpy through safetensors_np). */
function tensors(file) {
  const code = 'import json, sys; sys.path.insert(0, sys.argv[1]); import safetensors_np as st; ' +
    't, m = st.read(sys.argv[2]); print(json.dumps({"t": {k: v.tolist() for k, v in t.items() if k.startswith(("attr.", "lens."))}, "m": m}).replace("NaN", "null"))';
  return JSON.parse(execFileSync('/usr/bin/python3', ['-c', code, path.join(here, '../../scripts'), file],
    { encoding: 'utf8', maxBuffer: 64 << 20 }));
}

const open = (ctx, name) => openPage(ctx, pathToFileURL(path.join(dir, name)).href);

/* Hovers cell (row r, column c) of the attribution matrix; the tooltip's data-value. */
async function hoverAttr(page, r, c) {
  const p = await page.evaluate(([rr, cc]) => {
    const v = window.attnviz.app.views.attribution, g = v.geo, b = v.canvas.getBoundingClientRect();
    return { x: b.left + g.x0 + (cc + 0.5) * g.cs, y: b.top + g.y0 + (rr + 0.5) * g.cs };
  }, [r, c]);
  await page.mouse.move(p.x, p.y);
  return page.evaluate(() => { const t = document.getElementById('tooltip'); return t.hidden ? null : { text: t.textContent, v: +t.dataset.value }; });
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: FLAGS });
const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const attr = tensors(path.join(dir, 'attr.safetensors')), lens = tensors(path.join(dir, 'lens.safetensors'));

await test('viewer_attribution_tab', async () => {
  const { page, errors, requests } = await open(ctx, 'attr.html');
  check(await page.evaluate(() => !document.querySelector('#tabs button[data-view=attribution]').hidden), 'no Attribution tab');
  check(await page.evaluate(() => document.querySelector('#tabs button[data-view=lens]').hidden), 'a Logit lens tab without a lens');
  await page.evaluate(() => window.attnviz.set({ view: 'attribution' }));
  const S = +attr.m.source_len, occ = attr.t['attr.occlusion'], N = occ.length;
  const strip = await page.evaluate(() => [...document.querySelectorAll('#attr-strip .tok:not(.target)')].map((s) => +s.dataset.value));
  check(strip.length === S, `the strip has ${strip.length} source tokens, the trace ${S}`);
  for (let j = 0; j < S; j++) { /* the whole target: the sum over target rows */
    const want = occ.reduce((a, row) => a + row[j], 0);
    check(Math.abs(strip[j] - want) <= 1e-5 * (1 + Math.abs(want)), `strip token ${j}: ${strip[j]}, numpy ${want}`);
  }
  for (const [r, c] of [[0, S - 1], [N - 1, 0], [Math.floor(N / 2), Math.floor(S / 2)]]) {
    const tip = await hoverAttr(page, r, c);
    check(tip && Math.abs(tip.v - occ[r][c]) <= 1e-5 * (1 + Math.abs(occ[r][c])), `cell (${r}, ${c}): ${tip && tip.v}, numpy ${occ[r][c]}`);
    check(tip.text.includes('occlusion'), 'the tooltip does not name the method');
  }
  /* another method and one target: the strip is that target's row of that method */
  await page.selectOption('#attr-method', 'ig');
  await page.selectOption('#attr-target', '1');
  const ig = attr.t['attr.ig'], row = await page.evaluate(() => [...document.querySelectorAll('#attr-strip .tok:not(.target)')].map((s) => +s.dataset.value));
  for (let j = 0; j < S; j++) check(Math.abs(row[j] - ig[1][j]) <= 1e-5 * (1 + Math.abs(ig[1][j])), `ig strip ${j}: ${row[j]} vs ${ig[1][j]}`);
  check(await page.evaluate(() => /completeness error/.test(document.querySelector('#view-attribution .note').textContent)), 'IG shows no completeness error');
  const tip = await hoverAttr(page, 1, 2);
  check(Math.abs(tip.v - ig[1][2]) <= 1e-5 * (1 + Math.abs(ig[1][2])), `ig cell: ${tip.v} vs ${ig[1][2]}`);
  await page.screenshot({ path: path.join(shotdir, 'attribution.png') });
  check(errors.length === 0, 'console errors: ' + errors.join('; '));
  check(requests.length === 0, 'network requests: ' + requests.join(', '));
});

await test('viewer_lens_tab', async () => {
  const { page, errors } = await open(ctx, 'lens.html');
  check(await page.evaluate(() => window.attnviz.state.view === 'lens'), 'the page does not open on --view lens');
  const ids = lens.t['lens.topk_ids'], lps = lens.t['lens.topk_logprobs'], labels = JSON.parse(lens.m['lens.labels']);
  const E = ids.length, T = ids[0].length;
  for (const [e, q] of [[E - 1, T - 2], [0, 1], [Math.floor(E / 2), Math.floor(T / 2)]]) {
    const p = await page.evaluate(([ee, qq]) => {
      const v = window.attnviz.app.views.lens, g = v.geo, b = v.canvas.getBoundingClientRect();
      return { x: b.left + g.x0 + (qq + 0.5) * g.cw, y: b.top + g.y0 + (g.E - 1 - ee + 0.5) * g.ch };
    }, [e, q]);
    await page.mouse.move(p.x, p.y);
    const tip = await page.evaluate(() => { const t = document.getElementById('tooltip'); return { text: t.textContent, v: +t.dataset.value }; });
    check(Math.abs(tip.v - lps[e][q][0]) <= 1e-5, `cell (${e}, ${q}): log p ${tip.v}, numpy ${lps[e][q][0]}`);
    check(tip.text.includes('1. “' + labels[String(ids[e][q][0])] + '”'), `cell (${e}, ${q}): top token ${labels[String(ids[e][q][0])]} not in "${tip.text}"`);
  }
  await page.screenshot({ path: path.join(shotdir, 'lens.png') });
  check(errors.length === 0, 'console errors: ' + errors.join('; '));
});

await browser.close();
process.exit(failures() ? 1 : 0);
