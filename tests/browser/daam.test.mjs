// The viewer's DAAM tab on a text-to-image trace (made by tests/cli/test_t2i.sh): the page opens on it
// offline without errors, the word buttons, the step/layer selection and the head picker change the map, and
// the map equals scripts/t2i/daam.py's (numpy + PyTorch) on the trace's daam.raw within 1e-5.
//   node daam.test.mjs PAGE.html TRACE.safetensors
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const [page_path, trace] = process.argv.slice(2);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'];

function expected(word, s0, s1, layers, head) {
  return JSON.parse(execFileSync('/usr/bin/python3', [path.join(here, 'daam_expect.py'), trace, word, String(s0),
    String(s1), layers.join(','), String(head)], { encoding: 'utf8' }));
}

async function main() {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: FLAGS });
  let ok = true;
  const fail = (name, why) => { console.log(`FAIL ${name}: ${why}`); ok = false; };
  try {
    const page = await browser.newPage();
    const url = pathToFileURL(page_path).href, errors = [], requests = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('request', (r) => { if (r.url() !== url) requests.push(r.url()); });
    await page.goto(url, { waitUntil: 'load' });
    const view = await page.evaluate(() => window.attnviz.state.view);
    if (view !== 'daam' || errors.length || requests.length)
      fail('viewer_daam_opens', `view ${view}, errors ${errors.join('; ')}, requests ${requests.join(' ')}`);
    else console.log('PASS viewer_daam_opens');
    // "red" over everything, "a" (a group of two tokens) over steps [5, 20) and layers 1 and 3, then "blue"
    // with head 1 alone, picked in the head picker
    await page.click('button.daam-word[data-word="red"]');
    const nl = await page.evaluate(() => window.attnviz.app.views.daam.d.layers);
    const all = [...Array(nl).keys()];
    const cases = [['red', 0, 25, all, -1], ['a', 5, 20, [1, 3], -1], ['blue', 0, 25, all, 1]];
    let worst = 0;
    for (const [word, s0, s1, layers, head] of cases) {
      await page.evaluate(([w, a, b, ls]) => {
        const v = window.attnviz.app.views.daam;
        v.word = w; v.s0 = a; v.s1 = b; v.layers = new Set(ls);
        v.paint();
      }, [word, s0, s1, layers]);
      await page.selectOption('#daam-head', String(head));
      const got = await page.evaluate(() => Array.from(window.attnviz.app.views.daam.map));
      const want = expected(word, s0, s1, layers, head);
      if (got.length !== want.length) { fail('viewer_daam_map', `${got.length} values, want ${want.length}`); break; }
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    }
    if (worst > 1e-5) fail('viewer_daam_map', `max |viewer - daam.py| ${worst}`);
    else if (ok) console.log('PASS viewer_daam_map');
    const caveat = await page.textContent('#daam-caveat');
    if (!/descriptive, not explanatory/.test(caveat || '')) fail('viewer_daam_caveat', `caveat text '${caveat}'`);
    else console.log('PASS viewer_daam_caveat');
  } finally {
    await browser.close();
  }
  process.exit(ok ? 0 : 1);
}
main().catch((e) => { console.log(`FAIL viewer_daam: ${String(e).split('\n')[0]}`); process.exit(1); });
