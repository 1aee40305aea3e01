// Times the example models in ONNX Runtime (onnxruntime-node, CPU execution provider): the FP32 model and the QDQ
// INT8 model from `quantsharp quantize`, per intra-op thread count and batch, and optionally int8 GEMM models.
//
// usage: node ort_bench.js --out FILE [--threads 1,2] [--batches 1,64] [--budget-ms 1500] [--min-iters 5]
//                          [--max-iters 300] [--gemm-dir DIR] [--gemm-reps 10] NAME=FP32.onnx,INT8.onnx ...
//
// Sessions: graphOptimizationLevel 'all' (ORT fuses the QDQ pairs into QLinearConv/QLinearMatMul/... kernels),
// sequential execution, interOpNumThreads 1, intraOpNumThreads T, and intra-op spinning off
// (session.intra_op.allow_spinning = 0): the two sessions run alternately on a 2-core machine, where one session's
// spinning pool thread would take the core the other one needs.
// Timing: FP32 and INT8 alternate on the same random normal input, 3 warm-up runs each, then at least MIN_ITERS and
// at most MAX_ITERS timed runs each until BUDGET_MS has passed; p50 and min per run (ms), input/output copies included.
// GEMM: every gemm_*_MxNxK.onnx in DIR (bench/peers/gemm_models.py) on one thread, best of REPS after one warm-up,
// GOPS = 2·M·N·K / time (input in a JavaScript tensor, output written into a preallocated tensor).
// If onnxruntime-node cannot be loaded, writes {"skipped": reason} and exits 0.
'use strict';
const fs = require('fs');
const path = require('path');

function parseArgs(argv) {
  const opts = { threads: '1,2', batches: '1,64', budgetMs: 1500, minIters: 5, maxIters: 300, gemmReps: 10, models: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
    if (a === '--out') opts.out = next();
    else if (a === '--threads') opts.threads = next();
    else if (a === '--batches') opts.batches = next();
    else if (a === '--budget-ms') opts.budgetMs = Number(next());
    else if (a === '--min-iters') opts.minIters = Number(next());
    else if (a === '--max-iters') opts.maxIters = Number(next());
    else if (a === '--gemm-dir') opts.gemmDir = next();
    else if (a === '--gemm-reps') opts.gemmReps = Number(next());
    else if (a.includes('=')) {
      const [name, files] = a.split('=');
      const [fp32, int8] = files.split(',');
      opts.models.push({ name, fp32, int8 });
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.out) throw new Error('--out FILE is required');
  return opts;
}

function write(file, obj) {
  fs.writeFileSync(file + '.tmp', JSON.stringify(obj, null, 2) + '\n');
  fs.renameSync(file + '.tmp', file);
}

function loadOrt() {
  // The project installs onnxruntime-node in tests/tools (see bench/README.md); ORT_NODE_MODULES may name another folder.
  const roots = [process.env.ORT_NODE_MODULES, path.join(__dirname, '..', '..', 'tests', 'tools'), __dirname].filter(Boolean);
  const resolved = require.resolve('onnxruntime-node', { paths: roots });
  const ort = require(resolved);
  const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(resolved), '..', 'package.json'), 'utf8'));
  return { ort, version: pkg.version };
}

function randomNormal(n, seed) {
  // xorshift32 uniform numbers through Box–Muller; deterministic, the distribution of standardised pixels.
  let s = seed >>> 0 || 1;
  const u = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return (s + 0.5) / 4294967296; };
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return x;
}

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const p50 = s.length % 2 ? s[mid] : 0.5 * (s[mid - 1] + s[mid]);
  return { p50_ms: Number(p50.toFixed(4)), min_ms: Number(s[0].toFixed(4)), iterations: s.length };
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let ort, version;
  try {
    ({ ort, version } = loadOrt());
  } catch (e) {
    const reason = `ONNX Runtime peer not available (${e.message.split('\n')[0]}); install with: ` +
      'cd tests/tools && ONNXRUNTIME_NODE_INSTALL=skip npm install --ignore-scripts';
    console.log(`ort_bench: skipped: ${reason}`);
    write(opts.out, { peer: 'onnxruntime', skipped: reason });
    return;
  }
  const sessionOptions = t => ({
    executionProviders: ['cpu'], graphOptimizationLevel: 'all', executionMode: 'sequential',
    intraOpNumThreads: t, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  const result = {
    peer: 'onnxruntime', version, execution_provider: 'cpu',
    session: 'graphOptimizationLevel all, sequential, interOpNumThreads 1, intra-op spinning off',
    timing: `alternating FP32/INT8 runs, >= ${opts.minIters} each, until ${opts.budgetMs} ms or ${opts.maxIters} runs`,
    results: [],
  };
  const threads = opts.threads.split(',').map(Number);
  const batches = opts.batches.split(',').map(Number);
  for (const m of opts.models) {
    for (const t of threads) {
      const sessions = { fp32: await ort.InferenceSession.create(m.fp32, sessionOptions(t)),
                         int8: await ort.InferenceSession.create(m.int8, sessionOptions(t)) };
      for (const b of batches) {
        const x = new ort.Tensor('float32', randomNormal(b * 28 * 28, 1234), [b, 1, 28, 28]);
        const times = { fp32: [], int8: [] };
        const run = async (name) => {
          const s = sessions[name];
          return s.run({ [s.inputNames[0]]: x });
        };
        for (let w = 0; w < 3; w++) { await run('fp32'); await run('int8'); }
        const start = now();
        for (let i = 0; i < opts.maxIters && (i < opts.minIters || now() - start < opts.budgetMs); i++) {
          for (const name of ['fp32', 'int8']) {
            const t0 = now();
            await run(name);
            times[name].push(now() - t0);
          }
        }
        const row = { model: m.name, threads: t, batch: b, fp32: stats(times.fp32), int8: stats(times.int8) };
        result.results.push(row);
        console.log(`ort_bench: ${m.name} threads=${t} batch=${b}: fp32 p50 ${row.fp32.p50_ms.toFixed(3)} ms, ` +
          `int8 p50 ${row.int8.p50_ms.toFixed(3)} ms`);
      }
      await sessions.fp32.release();
      await sessions.int8.release();
    }
  }
  if (opts.gemmDir && fs.existsSync(opts.gemmDir)) {
    result.gemm = [];
    const files = fs.readdirSync(opts.gemmDir).filter(f => /^gemm_\w+_\d+x\d+x\d+\.onnx$/.test(f)).sort();
    for (const f of files) {
      const [, op, mm, nn, kk] = f.match(/^gemm_(\w+)_(\d+)x(\d+)x(\d+)\.onnx$/);
      const [M, N, K] = [mm, nn, kk].map(Number);
      const s = await ort.InferenceSession.create(path.join(opts.gemmDir, f), sessionOptions(1));
      const a = new Uint8Array(M * K);
      for (let i = 0; i < a.length; i++) a[i] = (i * 2654435761 >>> 24) & 255;
      const feeds = { A: new ort.Tensor('uint8', a, [M, K]) };
      // The output goes to a preallocated tensor, as C does in QuantSharp's GEMM: without it each run allocates a
      // fresh 4 MiB int32 result for JavaScript, whose cost swung the 1024³ MatMulInteger time from 3 to 45 ms.
      const y = op === 'matmulinteger' ? new ort.Tensor('int32', new Int32Array(M * N), [M, N])
                                       : new ort.Tensor('uint8', new Uint8Array(M * N), [M, N]);
      const fetches = { [s.outputNames[0]]: y };
      await s.run(feeds, fetches);
      let best = Infinity;
      for (let r = 0; r < opts.gemmReps; r++) {
        const t0 = now();
        await s.run(feeds, fetches);
        best = Math.min(best, now() - t0);
      }
      await s.release();
      const row = { impl: `ONNX Runtime ${op === 'matmulinteger' ? 'MatMulInteger u8*s8 -> s32' : 'QLinearMatMul u8*s8 -> u8'}`,
                    m: M, n: N, k: K, best_ms: Number(best.toFixed(4)), gops: Number((2 * M * N * K / best / 1e6).toFixed(1)) };
      result.gemm.push(row);
      console.log(`ort_bench: ${row.impl} ${M}x${N}x${K}: ${row.gops} GOPS (${row.best_ms} ms)`);
    }
  }
  write(opts.out, result);
}

main().catch(e => { console.error(`ort_bench: error: ${e.message}`); process.exit(1); });
