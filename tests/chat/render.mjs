// The reference renderer of tests/cli/test_chat_ref.sh: @huggingface/jinja (pinned in package-lock.json).
//
//   node render.mjs CASES.json OUT_DIR
//
// CASES.json: [{"name", "template", "messages", "add_generation_prompt", "bos_token", "eos_token"}]. Each case writes
// OUT_DIR/<name>.txt (the rendering) or OUT_DIR/<name>.err (the error). strftime_now() sees 2024-07-26 12:00 local
// time, as attnviz does with --chat-date 2024-07-26.
import fs from "node:fs";
import { Template } from "@huggingface/jinja";

const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    if (args.length) super(...args);
    else super(2024, 6, 26, 12, 0, 0);
  }
};

const [casesPath, outDir] = process.argv.slice(2);
for (const c of JSON.parse(fs.readFileSync(casesPath, "utf8"))) {
  const doc = JSON.parse(fs.readFileSync(c.messages, "utf8"));
  const vars = Array.isArray(doc) ? { messages: doc } : { ...doc };
  if (!("add_generation_prompt" in vars)) vars.add_generation_prompt = c.add_generation_prompt;
  if (c.bos_token !== null) vars.bos_token = c.bos_token;
  if (c.eos_token !== null) vars.eos_token = c.eos_token;
  try {
    const text = new Template(fs.readFileSync(c.template, "utf8")).render(vars);
    fs.writeFileSync(`${outDir}/${c.name}.txt`, text);
  } catch (e) {
    fs.writeFileSync(`${outDir}/${c.name}.err`, String(e && e.message));
  }
}
