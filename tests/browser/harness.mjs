// Shared pieces of the browser tests: chromium's flags, the result lines ("PASS name" / "FAIL name: why"), and
// a page opened with its console errors and outside requests recorded. (attribution.test.mjs uses it; the
// older test files still carry their own copies.)
export const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'];
let failed = 0;

export function check(cond, msg) { if (!cond) throw new Error(msg); }

/* Runs one test and prints its result line. */
export async function test(name, fn) {
  try {
    await fn();
    console.log(`PASS ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${(e && e.message ? e.message : String(e)).split('\n')[0]}`);
    failed++;
  }
}

export const failures = () => failed;

/* Opens url in a new page of ctx and waits for the viewer's first paint; errors: console errors and page
 * errors, requests: every request other than the page itself (an offline page makes none). */
export async function openPage(ctx, url) {
  const page = await ctx.newPage(), errors = [], requests = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => { if (r.url() !== url) requests.push(r.url()); });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => window.attnviz && window.attnviz.lastPaint);
  return { page, errors, requests };
}
