// llama.cpp tokenizer from our GGUF metadata vs golden_greedy.json: prompt ids, full-text ids and detokenization.
// Usage: node tokenize.mjs model.gguf
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import fs from "node:fs";
const g = JSON.parse(fs.readFileSync("/work/shared/models/stories260K/golden_greedy.json"));
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: process.argv[2]});
const ids = model.tokenize(g.prompt);
const full = model.tokenize(g.text);
const back = model.detokenize(g.token_ids.slice(1));
console.log(JSON.stringify({prompt_ids: ids, golden_prompt_ids: g.prompt_token_ids.slice(1), text_ids_equal_golden: JSON.stringify(full) === JSON.stringify(g.token_ids.slice(1)), detok_equals_text: back === g.text}));
process.exit(0);
