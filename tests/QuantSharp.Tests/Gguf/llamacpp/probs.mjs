// Next-token probabilities from llama.cpp for teacher-forced golden tokens (first 40) on each GGUF; writes probs.json.
// Used to compare QuantSharp's decoder with llama.cpp on a synthetic 256-wide model (Q4_K rows need 256).
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import fs from "node:fs";
const toks = JSON.parse(fs.readFileSync("/work/shared/models/stories260K/golden_greedy.json")).token_ids.slice(0, 40);
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const res = {};
for (const path of process.argv.slice(2)) {
  const model = await llama.loadModel({modelPath: path});
  const ctx = await model.createContext({contextSize: 128, threads: 1, batchSize: 64});
  const seq = ctx.getSequence();
  const out = await seq.controlledEvaluate(toks.map(t => [t, {generateNext: {probabilities: true}}]));
  res[path.split("/").pop()] = out.map(o => { const p = new Array(512).fill(0); for (const [k, v] of o.next.probabilities) p[k] = v; return p; });
}
fs.writeFileSync("probs.json", JSON.stringify(res));
process.exit(0);
