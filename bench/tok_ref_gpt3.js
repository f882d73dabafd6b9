// gpt-3-encoder 1.1.4 throughput on the same corpus as tok_bench: node tok_ref_gpt3.js CORPUS.jsonl [REPEATS]
// (the package lives in tests/tok/node_modules). Its word cache persists across repeats, so the best repeat
// is the warm-cache speed.
'use strict';
const fs = require('fs');
const path = require('path');
const { encode } = require(path.join(__dirname, '..', 'tests', 'tok', 'node_modules', 'gpt-3-encoder'));

const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n');
if (lines.length && lines[lines.length - 1] === '') lines.pop();
const texts = lines.map((l) => JSON.parse(l));
const repeats = Number(process.argv[3] || 3);
let bytes = 0;
for (const t of texts) bytes += Buffer.byteLength(t, 'utf8');
let best = Infinity, first = 0, tokens = 0;
for (let r = 0; r < repeats; r++) {
  const t0 = process.hrtime.bigint();
  tokens = 0;
  for (const t of texts) tokens += encode(t).length;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r === 0) first = s;
  best = Math.min(best, s);
}
console.log(JSON.stringify({ reference: 'gpt-3-encoder 1.1.4', texts: texts.length, bytes, tokens,
  seconds_first: +first.toFixed(4), tokens_per_s_first: Math.round(tokens / first),
  seconds_best: +best.toFixed(4), tokens_per_s: Math.round(tokens / best) }));
