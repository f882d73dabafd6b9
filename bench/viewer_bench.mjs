// Paint times of the standalone viewer in Debian's headless chromium (playwright-core from tests/browser).
//   node viewer_bench.mjs DIR REPS   (DIR from bench/viewer.sh: bert-auto.html, big-auto.html, ...)
// Each paint clears the viewer's decoded-head cache first (so decoding counts) and ends with a 1-pixel
// getImageData, which forces the canvas to finish rasterizing. Prints one JSON line per measurement.
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tests', 'browser', 'package.json'));
const { chromium } = require('playwright-core');
const [dir, repsArg] = process.argv.slice(2);
const reps = +repsArg || 7;
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const stats = (a) => { const s = [...a].sort((x, y) => x - y); return { best: +s[0].toFixed(1), median: +s[s.length >> 1].toFixed(1) }; };

async function paint(page, patch, canvas) {
  return page.evaluate(([p, id]) => {
    window.attnviz.trace.cache.clear();
    const t0 = performance.now();
    window.attnviz.set(p);
    document.getElementById(id).getContext('2d').getImageData(0, 0, 1, 1);
    void document.body.offsetHeight; /* and the layout of views built from elements (head-summary grid) */
    return performance.now() - t0;
  }, [patch, canvas]);
}

async function measure(ctx, file, label, setup, patch, canvas) {
  const page = await ctx.newPage();
  const t0 = Date.now();
  await page.goto(pathToFileURL(path.join(dir, file)).href);
  await page.waitForFunction(() => window.attnviz && window.attnviz.lastPaint);
  const load = Date.now() - t0;
  const times = [];
  for (let i = 0; i < reps; i++) {
    await page.evaluate((s) => window.attnviz.set(s), setup);
    times.push(await paint(page, patch, canvas));
  }
  console.log(JSON.stringify({ page: file, view: label, load_to_first_paint_ms: load, paint_ms: stats(times), reps }));
  await page.close();
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'attnviz-bench-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: FLAGS, viewport: { width: 1280, height: 860 },
});
try {
  await measure(ctx, 'bert-auto.html', 'model view 12x12 heads, 128 tokens (u8)', { view: 'heatmap' }, { view: 'model' }, 'model-canvas');
  await measure(ctx, 'bert-f16.html', 'model view 12x12 heads, 128 tokens (f16)', { view: 'heatmap' }, { view: 'model' }, 'model-canvas');
  await measure(ctx, 'bert-auto.html', 'heatmap mean of 12 heads, 128 tokens', { view: 'model' }, { view: 'heatmap', head: 'mean' }, 'heatmap-canvas');
  await measure(ctx, 'bert-auto.html', 'head view 12 heads, 128 tokens', { view: 'model' }, { view: 'head', head: 'mean' }, 'head-canvas');
  await measure(ctx, 'bert-auto.html', 'head-summary grid 12x12 heads (roles)', { view: 'heatmap' }, { view: 'summary' }, 'heatmap-canvas');
  await measure(ctx, 'bert-auto.html', 'rollout 128x128 (u8)', { view: 'heatmap' }, { view: 'rollout' }, 'rollout-canvas');
  await measure(ctx, 'big-auto.html', 'heatmap one 2048x2048 head (u8)', { view: 'model' }, { view: 'heatmap', head: 0 }, 'heatmap-canvas');
  await measure(ctx, 'big-f16.html', 'heatmap one 2048x2048 head (f16)', { view: 'model' }, { view: 'heatmap', head: 0 }, 'heatmap-canvas');
} finally {
  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
