// The outputs of the executed notebook tests/python/viewers.ipynb in Debian's chromium (Playwright): every
// viewer (each the standalone page in a sandboxed srcdoc iframe) shows its own trace's tokens and weights,
// several viewers in one page do not interfere, nothing touches the network, no console errors; the size guard's
// overview is there; two standalone pages pasted into one document are refused with a message instead of
// drawing one trace's data into the other's viewer. Prints one PASS/FAIL/SKIP line per test.
//
//   node notebook.test.mjs NBDIR SHOTDIR
// NBDIR (tests/cli/test_python.sh): notebook.html (the outputs in one document), expect.json (run_notebook.py:
// tokens and weights per viewer, read from the trace files and arrays with numpy), inline.html.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const [nbdir, shotdir] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const expect = JSON.parse(fs.readFileSync(path.join(nbdir, 'expect.json'), 'utf8'));

function report(name, ok, why) {
  if (ok === 'skip') console.log(`SKIP ${name}: ${why}`);
  else if (ok) console.log(`PASS ${name}`);
  else console.log(`FAIL ${name}: ${why}`);
}

async function test(name, fn) {
  try {
    await fn();
    report(name, true);
  } catch (e) {
    report(name, false, (e && e.message ? e.message : String(e)).split('\n')[0]);
  }
}

function check(cond, msg) { if (!cond) throw new Error(msg); }

/* Opens a file of NBDIR, recording console errors, page errors and every request but the file itself (the
 * listeners see the iframes' documents too). */
async function open(ctx, name) {
  const page = await ctx.newPage();
  const url = pathToFileURL(path.join(nbdir, name)).href;
  const errors = [], requests = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => { if (r.url() !== url) requests.push(r.url()); });
  await page.goto(url, { waitUntil: 'load' });
  return { page, errors, requests };
}

/* The viewer frames in document order, each once its viewer has painted. */
async function viewerFrames(page) {
  const frames = [];
  for (const el of await page.$$('iframe')) {
    const f = await el.contentFrame();
    await f.waitForFunction(() => window.attnviz && window.attnviz.lastPaint, null, { timeout: 20000 });
    frames.push(f);
  }
  return frames;
}

/* What one viewer holds: its state, kinds, labels and the decoded weights of the expected cells. */
function inspect(frame, cells) {
  return frame.evaluate((cs) => {
    const a = window.attnviz, tr = a.trace;
    return {
      state: { view: a.state.view, kind: a.state.kind, layer: a.state.layer },
      kinds: tr.kinds, labels: tr.meta.labels,
      headsChecked: a.app.views.head.selected ? [...a.app.views.head.selected].sort() : null,
      values: cs.map((c) => tr.head(c.kind, c.layer, c.head)[c.q * tr.set(c.kind, c.layer).nk + c.k]),
    };
  }, cells);
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'attnviz-chromium-'));
  let ctx;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 },
    });
  } catch (e) {
    report('python_notebook_browser', 'skip', 'chromium does not start: ' + String(e.message || e).split('\n')[0]);
    return;
  }
  try {
    const nb = await open(ctx, 'notebook.html');
    let frames = [];
    await test('python_notebook_viewers_load', async () => {
      frames = await viewerFrames(nb.page);
      check(frames.length === expect.length, `${frames.length} viewers, expected ${expect.length}`);
    });
    for (let i = 0; i < Math.min(frames.length, expect.length); i++) {
      const e = expect[i];
      await test(`python_notebook_viewer_${i}_shows_its_trace`, async () => {
        const got = await inspect(frames[i], e.cells);
        check(got.state.view === e.view, `${e.name}: view ${got.state.view}, expected ${e.view}`);
        check(got.state.kind === e.kind, `${e.name}: kind ${got.state.kind}, expected ${e.kind}`);
        if (e.layer !== undefined) check(got.state.layer === e.layer, `${e.name}: layer ${got.state.layer}`);
        check(same(got.labels[e.kind].q, e.q_labels), `${e.name}: query labels ${got.labels[e.kind].q}`);
        if (e.k_labels) check(same(got.labels[e.kind].k, e.k_labels), `${e.name}: key labels ${got.labels[e.kind].k}`);
        if (e.heads) check(same(got.headsChecked, e.heads), `${e.name}: head view checks ${got.headsChecked}`);
        e.cells.forEach((c, j) => {
          const v = got.values[j];
          check(Math.abs(v - c.value) <= 1e-3 * Math.abs(c.value) + 2e-4,
            `${e.name}: ${c.kind} layer ${c.layer} head ${c.head} (${c.q}, ${c.k}) is ${v}, numpy says ${c.value}`);
        });
      });
    }
    await test('python_notebook_viewers_independent', async () => {
      check(frames.length >= 2, 'fewer than two viewers');
      const before = await frames[1].evaluate(() => JSON.stringify(window.attnviz.state));
      await frames[0].evaluate(() => window.attnviz.set({ view: 'model', layer: 0, head: 1 }));
      check((await frames[0].evaluate(() => window.attnviz.state.view)) === 'model', 'viewer 0 did not switch');
      const after = await frames[1].evaluate(() => JSON.stringify(window.attnviz.state));
      check(before === after, 'changing viewer 0 changed viewer 1');
      await frames[0].evaluate(() => window.attnviz.set({ view: 'heatmap' }));
    });
    await test('python_notebook_overview', async () => {
      const n = await nb.page.evaluate(() => [...document.querySelectorAll('.attnviz-overview img')]
        .filter((im) => im.complete && im.naturalWidth > 100).length);
      check(n === 1, `${n} overview images decoded`);
    });
    await nb.page.waitForTimeout(200);
    await test('python_notebook_offline_no_errors', async () => {
      check(nb.errors.length === 0, `${nb.errors.length} console errors: ${nb.errors[0]}`);
      check(nb.requests.length === 0, `${nb.requests.length} network requests: ${nb.requests[0]}`);
      // Playwright does not see what a sandboxed iframe fetches while it first loads: each document's own
      // resource timing lists every fetch it made (failed ones too)
      for (const f of [nb.page.mainFrame(), ...frames]) {
        const fetched = await f.evaluate(() => performance.getEntriesByType('resource').map((r) => r.name));
        check(fetched.length === 0, `a viewer fetched ${fetched.length} resources: ${fetched[0]}`);
      }
    });
    fs.mkdirSync(shotdir, { recursive: true });
    const els = await nb.page.$$('.attnviz-viewer, .attnviz-overview');
    for (let i = 0; i < els.length; i++) {
      await els[i].screenshot({ path: path.join(shotdir, `notebook-output-${i}.png`) });
    }

    await test('python_inline_pages_refused', async () => {
      const p = await open(ctx, 'inline.html');
      await p.page.waitForTimeout(200);
      const msg = await p.page.textContent('#av-shared');
      check(msg && msg.includes('iframe'), `no message about the shared document: ${msg}`);
      check(await p.page.evaluate(() => window.attnviz === undefined), 'a viewer started in the shared document');
      // the second page's Content-Security-Policy <meta> now lies outside <head>: chromium says it ignores it
      const ignored = "delivered via a <meta> element outside the document's <head>";
      const errors = p.errors.filter((e) => !e.includes(ignored));
      check(errors.length === 0, `${errors.length} console errors: ${errors[0]}`);
      check(p.requests.length === 0, `${p.requests.length} network requests: ${p.requests[0]}`);
      await p.page.close();
    });
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => {
  report('python_notebook_browser', false, String(e && e.message ? e.message : e).split('\n')[0]);
});
