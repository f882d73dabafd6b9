// Reference ids from the npm package gpt-3-encoder 1.1.4: node ref_gpt2.js CORPUS.jsonl
// prints one JSON array of ids per corpus line.
'use strict';
const fs = require('fs');
const path = require('path');
const { encode } = require(path.join(__dirname, 'node_modules', 'gpt-3-encoder'));

const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n');
if (lines.length && lines[lines.length - 1] === '') lines.pop();
const out = [];
for (const line of lines) out.push(JSON.stringify(encode(JSON.parse(line))));
process.stdout.write(out.join('\n') + '\n');
