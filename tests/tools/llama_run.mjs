// Runs a GGUF model in llama.cpp (node-llama-cpp's prebuilt CPU library) and prints one JSON object.
// usage: node llama_run.mjs MODEL.gguf IDS [N]
//   IDS: comma-separated prompt token ids (the first is usually BOS); they are fed as given (no tokenizer, no added BOS).
//   Output: {llama_cpp, build, vocab, logits: [[...] per prompt position], greedy: [N ids], tokenize: {text: ids}}
//   logits[i] are llama.cpp's raw next-token logits after prompt token i (teacher forcing); greedy continues the
//   prompt with temperature 0 for N tokens (stops early only at the model's end-of-generation token).
// With LLAMA_RUN_TEXT set (strings separated by "\u0001"), each is also tokenized by llama.cpp's tokenizer built
// from the GGUF metadata (special tokens not parsed, no BOS added).
// The package is found in ./node_modules (tests/tools) or, when NODE_LLAMA_CPP_DIR is set, in that node_modules folder.
import path from "node:path";
import {pathToFileURL} from "node:url";

const dir = process.env.NODE_LLAMA_CPP_DIR;
const lib = await import(dir ? pathToFileURL(path.join(dir, "node-llama-cpp", "dist", "index.js")).href : "node-llama-cpp");
const {getLlama, LlamaLogLevel} = lib;

const [modelPath, idsArg, nArg] = process.argv.slice(2);
if (!modelPath || !idsArg) {
  console.error("usage: node llama_run.mjs MODEL.gguf IDS [N]");
  process.exit(2);
}
const ids = idsArg.split(",").map(Number);
const n = Number(nArg ?? 0);
try {
  const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
  const model = await llama.loadModel({modelPath});
  // F32 key/value cache (llama.cpp defaults to F16), so that an F32 model is compared at full precision.
  const ctx = await model.createContext({contextSize: Math.max(32, ids.length + n + 1), threads: 1, batchSize: Math.max(32, ids.length),
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
  const seq = ctx.getSequence();
  const out = await seq.controlledEvaluate(ids.map(t => [t, {generateNext: {logits: true}}]));
  const logits = out.map(o => {
    const m = o?.next?.logits;
    if (!m) throw new Error("llama.cpp returned no logits");
    const a = new Array(m.size).fill(0);
    for (const [k, v] of m) a[k] = v;
    return a;
  });
  seq.clearHistory();
  const greedy = [];
  if (n > 0)
    for await (const t of seq.evaluate(ids, {temperature: 0})) {
      if (model.isEogToken ? model.isEogToken(t) : t === model.tokens.eos) break;
      greedy.push(t);
      if (greedy.length >= n) break;
    }
  const tokenize = {};
  for (const s of (process.env.LLAMA_RUN_TEXT ?? "").split("\u0001").filter(x => x.length > 0))
    tokenize[s] = Array.from(model.tokenize(s, false));
  const json = JSON.stringify({
    llama_cpp: llama.llamaCppRelease, build: llama.buildType, vocab: logits[0].length, logits, greedy, tokenize,
  });
  // Exit only once the output is flushed: writes to a pipe are asynchronous, and process.exit() right after
  // console.log cuts the output at the pipe's 64 KiB buffer.
  process.stdout.write(json + "\n", () => process.exit(0));
} catch (e) {
  console.error(`llama_run: ${e.message}`);
  process.exit(1);
}
