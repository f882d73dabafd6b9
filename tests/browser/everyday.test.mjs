// Browser tests of the everyday views (issue 21), run by viewer.test.mjs: the neuron view against numpy's
// softmax(scale q.k) of the trace's kept queries/keys, the sentence A/B filter of the head view, the pooled
// page of a long lazy trace (start state, overview note, exact rows against numpy), and the image view of a
// non-square photo: the model's crop under the patches (the original photo cropped by its box), 8-bit pages
// that keep the contrast of small weights, and rollout over the image. Reference numbers come from
// expect_everyday.py (numpy on the trace files).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const py = (...args) => JSON.parse(execFileSync('/usr/bin/python3', [path.join(here, 'expect_everyday.py'), ...args.map(String)],
  { encoding: 'utf8', maxBuffer: 64 << 20 }));

export async function everydayTests({ test, check, pages, fix, have, shot, open }) {
  const load = async (name) => {
    if (!have(name + '.html')) return null;
    pages[name] = await open(name + '.html');
    return pages[name].page;
  };

  const Q = await load('qk');
  if (Q) {
    await test('viewer_neuron_view_matches_numpy', async () => {
      const st = await Q.evaluate(() => window.attnviz.state);
      check(st.view === 'neuron' && st.layer === 1 && st.head === 2, `page starts on ${JSON.stringify(st)}`);
      await Q.selectOption('#neuron-query', '9');
      const last = await Q.evaluate(() => window.attnviz.app.views.neuron.last);
      check(last && last.query === 9 && last.keys.length === 10, `last ${JSON.stringify(last && last.keys.length)}`);
      const want = py('row', fix('qk.safetensors'), 1, 2, 9);
      for (const k of last.keys) {
        check(Math.abs(k.weight - want[k.j]) < 1e-5, `key ${k.j}: weight ${k.weight} vs numpy ${want[k.j]}`);
        check(Math.abs(k.stored - want[k.j]) < 1e-3, `key ${k.j}: stored ${k.stored} vs numpy ${want[k.j]}`);
      }
      await shot(Q, 'neuron-view');
    });
  }

  const P = await load('pair');
  if (P) {
    await test('viewer_head_view_sentence_filter', async () => {
      check(!(await P.isHidden('#head-pair')), 'no sentence filter on a sentence-pair page');
      await P.selectOption('#head-pair', 'AB');
      const g = await P.evaluate(() => { const v = window.attnviz.app.views.head; return { rows: v.geo.rows, cols: v.geo.cols, b: v.bStart }; });
      check(g.b === 6, `sentence B starts at ${g.b}`);
      check(g.rows.length === 6 && g.rows.every((i) => i < 6), `A rows ${g.rows}`);
      check(g.cols.length === 4 && g.cols.every((i) => i >= 6), `B cols ${g.cols}`);
      await shot(P, 'head-view-a-to-b');
    });
  }

  const L = await load('lazy');
  if (L) {
    await test('viewer_pooled_page_start_and_rows', async () => {
      const st = await L.evaluate(() => window.attnviz.state);
      check(st.layer === 1 && st.head === 3, `page starts on layer ${st.layer} head ${st.head}`);
      const note = await L.textContent('#view-heatmap .note');
      check(note.includes('pooled overview of 1200 × 1200 tokens'), `heatmap note: ${note}`);
      await L.evaluate(() => window.attnviz.set({ view: 'rows' }));
      await L.selectOption('#rows-query', '1195');
      const last = await L.evaluate(() => { const l = window.attnviz.app.views.rows.last; return { q: l.query, v: Array.from(l.values) }; });
      const want = py('row', fix('lazy.safetensors'), 1, 3, 1195);
      check(last.q === 1195 && last.v.length === 1200, `row ${last.q}, ${last.v.length} keys`);
      let worst = 0;
      for (let k = 0; k < 1200; k++) worst = Math.max(worst, Math.abs(last.v[k] - want[k]) / Math.max(want[k], 1e-3));
      check(worst < 2e-3, `row 1195 differs from numpy by ${worst} (relative, float16)`);
      const top = await L.textContent('#rows-top');
      check(top.includes('weight'), 'no table of the strongest keys');
      await shot(L, 'rows-view');
    });
  }

  const C = await load('cat');
  if (C) {
    await test('viewer_image_view_crop_and_precision', async () => {
      await C.waitForFunction(() => window.attnviz.app.views.image.bitmap);
      const info = await C.textContent('#view-image .note');
      check(/the 27[0-9]×27[0-9] crop at \(90, 15\) of the 451×300 photo/.test(info), `image info: ${info}`);
      check(info.includes('float16'), `no precision in: ${info}`);
      const bmp = await C.evaluate(() => { const b = window.attnviz.app.views.image.bitmap; return [b.width, b.height]; });
      check(bmp[0] === 224 && bmp[1] === 224, `embedded image ${bmp}`);
    });
    await test('viewer_image_rollout_matches_numpy', async () => {
      await C.selectOption('#image-source', 'rollout');
      const shown = await C.evaluate(() => Array.from(window.attnviz.app.views.image.shown.vals));
      const want = py('rollout', fix('cat.safetensors'), 0).slice(1);
      let worst = 0;
      for (let i = 0; i < 196; i++) worst = Math.max(worst, Math.abs(shown[i] - want[i]));
      check(worst < 2e-3, `rollout over the patches differs from numpy by ${worst}`);
      await shot(C, 'image-rollout');
      await C.selectOption('#image-source', 'attention');
    });
  }

  const U = await load('cat-u8');
  if (U) {
    await test('viewer_image_8bit_keeps_small_weights', async () => {
      const r = await U.evaluate(() => {
        const a = window.attnviz, row = a.trace.head('self', 0, 0).subarray(0, 197);
        return { enc: a.trace.encoding, patches: Array.from(row.subarray(1)), levels: new Set(row.subarray(1)).size };
      });
      const want = py('row', fix('cat.safetensors'), 0, 0, 0).slice(1);
      check(r.enc === 'u8cbrt', `encoding ${r.enc}`);
      check(r.levels >= 25, `only ${r.levels} distinct levels over the 196 patches of layer 0's [CLS] row`);
      let worst = 0;
      for (let i = 0; i < 196; i++) worst = Math.max(worst, Math.abs(r.patches[i] - want[i]) / Math.max(want[i], 1e-4));
      check(worst < 0.15, `8-bit [CLS] weights off by ${worst} (relative)`);
    });
  }

  const O = await load('cat-orig');
  if (O) {
    await test('viewer_image_overlay_on_the_crop_of_the_photo', async () => {
      await O.waitForFunction(() => window.attnviz.app.views.image.bitmap);
      await O.evaluate(() => { document.getElementById('image-alpha').value = '0'; document.getElementById('image-alpha').dispatchEvent(new Event('input')); });
      const box = await O.evaluate(() => window.attnviz.app.views.image.cropBox());
      check(box && Math.round(box[0]) === 90 && Math.round(box[2]) === 361, `crop box ${box}`);
      // the photo drawn under the patches is the model's input: sample it against the trace's 224 x 224 crop
      const px = await O.evaluate(() => {
        const cv = document.getElementById('image-canvas'), ctx = cv.getContext('2d'), out = [];
        for (let i = 0; i < 8; i++)
          for (let j = 0; j < 8; j++) {
            const x = Math.floor(((j + 0.5) / 8) * cv.width), y = Math.floor(((i + 0.5) / 8) * cv.height);
            out.push(Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3)));
          }
        return out;
      });
      const img = py('image', fix('cat.safetensors'));
      let diff = 0;
      for (let i = 0; i < 8; i++)
        for (let j = 0; j < 8; j++) {
          const y = Math.floor(((i + 0.5) / 8) * 224), x = Math.floor(((j + 0.5) / 8) * 224);
          for (let c = 0; c < 3; c++) diff += Math.abs(px[i * 8 + j][c] - img[c][y][x]);
        }
      diff /= 8 * 8 * 3;
      check(diff < 14, `the drawn photo is ${diff.toFixed(1)} levels from the model's crop on average`);
      await shot(O, 'image-original-cropped');
    });
  }
}
