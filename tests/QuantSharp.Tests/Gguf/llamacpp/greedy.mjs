// Greedy generation from BOS with llama.cpp (node-llama-cpp prebuilt CPU binaries) on GGUF files; compares with golden_greedy.json.
// Usage (in a folder where `npm install node-llama-cpp` was run): node greedy.mjs A.gguf [B.gguf ...]; writes results.json there.
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import fs from "node:fs";
const golden = JSON.parse(fs.readFileSync("/work/shared/models/stories260K/golden_greedy.json")).token_ids.slice(1);
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const results = [];
for (const path of process.argv.slice(2)) {
  const model = await llama.loadModel({modelPath: path});
  const ctx = await model.createContext({contextSize: 256, threads: 1, batchSize: 64});
  const seq = ctx.getSequence();
  const out = [];
  for await (const t of seq.evaluate([1], {temperature: 0})) { if (t === 1 || t === 2) break; out.push(t); if (out.length >= golden.length) break; }
  let match = 0; while (match < out.length && out[match] === golden[match]) match++;
  results.push({model: path.split("/").pop(), generated: out.length, matching_prefix: match, of: golden.length, tokens: out, text: model.detokenize(out)});
  console.error(`${path}: ${match}/${golden.length} golden tokens match`);
}
fs.writeFileSync("results.json", JSON.stringify(results, null, 1));
process.exit(0);
