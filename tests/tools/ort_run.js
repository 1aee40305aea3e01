// Runs an ONNX model in ONNX Runtime (onnxruntime-node) on raw float32 inputs and writes raw float32 outputs.
// usage: node ort_run.js MODEL INPUT.f32 N C H W OUTPUT.f32 [BATCH]
// INPUT.f32 holds N*C*H*W little-endian float32 values (NCHW); OUTPUT.f32 receives the first output, batch by batch.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, inputPath, n, c, h, w, outputPath, batchArg] = process.argv.slice(2);
  if (!outputPath) throw new Error('usage: node ort_run.js MODEL INPUT.f32 N C H W OUTPUT.f32 [BATCH]');
  const [N, C, H, W] = [n, c, h, w].map(Number);
  const batch = Number(batchArg || 100);
  const buf = fs.readFileSync(inputPath);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (all.length !== N * C * H * W) throw new Error(`input has ${all.length} values, expected ${N * C * H * W}`);
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  const inName = session.inputNames[0], outName = session.outputNames[0];
  const chunks = [];
  const per = C * H * W;
  for (let s = 0; s < N; s += batch) {
    const b = Math.min(batch, N - s);
    const x = new ort.Tensor('float32', all.slice(s * per, (s + b) * per), [b, C, H, W]);
    const y = (await session.run({ [inName]: x }))[outName];
    chunks.push(Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  }
  fs.writeFileSync(outputPath, Buffer.concat(chunks));
  console.log(`ort ${ort.env.versions ? JSON.stringify(ort.env.versions) : ''} ${N} samples -> ${outputPath}`);
}

main().catch(e => { console.error(`ort_run: ${e.message}`); process.exit(1); });
