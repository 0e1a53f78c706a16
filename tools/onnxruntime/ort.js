// Runs an exported ONNX model in ONNX Runtime (onnxruntime-node, the CPU
// execution provider, one intra-op thread) for the encoder's tests and
// benchmarks in plugins/internal/onnx.
//
//   node ort.js predict MODEL FEATURES ROWS COLS
//       FEATURES holds ROWS×COLS float64 little-endian values, row after
//       row; prints {"outputs": {name: {"type", "dims", "data"}}} as JSON.
//   node ort.js predict-all JOBS
//       JOBS is a JSON file listing {"model", "features", "rows", "cols"},
//       each with an optional "dims" (the input's shape, ROWS×COLS values
//       in all; default [ROWS, COLS]) and "type" (float64, the default, or
//       float32: the values rounded to it); prints {"results": [outputs
//       of each job, as predict prints them]}.
//   node ort.js bench MODEL COLS BATCH MIN_MS
//       runs batches of BATCH rows (values from a fixed pattern) for at
//       least MIN_MS milliseconds after a warm-up; prints {"runs", "ns_per_op"}.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

const options = {
  executionProviders: ['cpu'],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

function features(rows, cols, file, dims, type) {
  const x = type === 'float32' ? new Float32Array(rows * cols) : new Float64Array(rows * cols);
  if (file) {
    const buf = fs.readFileSync(file);
    if (buf.length !== 8 * rows * cols) {
      throw new Error(`${file} holds ${buf.length} bytes, not ${rows}×${cols} doubles`);
    }
    for (let i = 0; i < x.length; i++) x[i] = buf.readDoubleLE(8 * i);
  } else {
    for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 1000) / 250 - 2;
  }
  return new ort.Tensor(type === 'float32' ? 'float32' : 'float64', x, dims || [rows, cols]);
}

async function outputs(model, file, rows, cols, dims, type) {
  const session = await ort.InferenceSession.create(model, options);
  const out = await session.run({ [session.inputNames[0]]: features(rows, cols, file, dims, type) });
  const result = {};
  for (const name of session.outputNames) {
    const t = out[name];
    result[name] = { type: t.type, dims: t.dims, data: Array.from(t.data, Number) };
  }
  return result;
}

async function predict(model, file, rows, cols) {
  process.stdout.write(JSON.stringify({ outputs: await outputs(model, file, rows, cols) }));
}

async function predictAll(jobsFile) {
  const results = [];
  for (const job of JSON.parse(fs.readFileSync(jobsFile, 'utf8'))) {
    results.push(await outputs(job.model, job.features, job.rows, job.cols, job.dims, job.type));
  }
  process.stdout.write(JSON.stringify({ results }));
}

async function bench(model, cols, batch, minMs) {
  const session = await ort.InferenceSession.create(model, options);
  const feeds = { [session.inputNames[0]]: features(batch, cols) };
  for (let i = 0; i < 20; i++) await session.run(feeds);
  let runs = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0n;
  const min = BigInt(minMs) * 1000000n;
  while (elapsed < min) {
    await session.run(feeds);
    runs++;
    elapsed = process.hrtime.bigint() - start;
  }
  process.stdout.write(JSON.stringify({ runs, ns_per_op: Number(elapsed) / runs }));
}

const [cmd, model, ...args] = process.argv.slice(2);
let done;
if (cmd === 'predict' && args.length === 3) {
  done = predict(model, args[0], Number(args[1]), Number(args[2]));
} else if (cmd === 'predict-all' && args.length === 0) {
  done = predictAll(model);
} else if (cmd === 'bench' && args.length === 3) {
  done = bench(model, Number(args[0]), Number(args[1]), Number(args[2]));
} else {
  process.stderr.write('usage: node ort.js predict MODEL FEATURES ROWS COLS | predict-all JOBS | bench MODEL COLS BATCH MIN_MS\n');
  process.exit(2);
}
done.catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
