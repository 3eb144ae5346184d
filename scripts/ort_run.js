#!/usr/bin/env node
// Runs an ONNX model through ONNX Runtime (the npm package onnxruntime-node,
// CPU), as an independent check of nnc export-onnx:
//   node scripts/ort_run.js MODEL.onnx OUTDIR NAME=F.npy ...
// writes each output as OUTDIR/NAME.npy. Inputs and outputs are .npy files
// of float32 (<f4) or int32 (<i4), C order; the reader and writer below are
// just enough for those. The module is found through NODE_PATH or
// NNC_ORT_DIR (default /opt/nnc-ort, where scripts/install-deps.sh puts it).
'use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  const dir = process.env.NNC_ORT_DIR || '/opt/nnc-ort';
  try {
    return require(path.join(dir, 'node_modules', 'onnxruntime-node'));
  } catch (e) {
    return require('onnxruntime-node');
  }
}

const kinds = {'<f4': ['float32', Float32Array], '<i4': ['int32', Int32Array]};

function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not an .npy file`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order is not read`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').filter((s) => s.trim()).map(Number);
  if (!kinds[descr]) throw new Error(`${file}: dtype ${descr} is not read (only <f4, <i4)`);
  const [type, Arr] = kinds[descr];
  const n = shape.reduce((a, d) => a * d, 1);
  const data = new Arr(n);
  const body = b.subarray(start + hlen);
  for (let i = 0; i < n; ++i) data[i] = Arr === Float32Array ? body.readFloatLE(4 * i) : body.readInt32LE(4 * i);
  return {type, data, shape};
}

function writeNpy(file, tensor) {
  const descr = {float32: '<f4', int32: '<i4'}[tensor.type];
  if (!descr) throw new Error(`output of type ${tensor.type} is not written (only float32, int32)`);
  const dims = tensor.dims.map(String);
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(head);
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(4 * tensor.data.length);
  for (let i = 0; i < tensor.data.length; ++i)
    descr === '<f4' ? body.writeFloatLE(tensor.data[i], 4 * i) : body.writeInt32LE(tensor.data[i], 4 * i);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

async function main() {
  const [model, outDir, ...feeds] = process.argv.slice(2);
  if (!model || !outDir) {
    console.error('usage: node ort_run.js MODEL.onnx OUTDIR NAME=F.npy ...');
    process.exit(2);
  }
  const ort = loadOrt();
  const session = await ort.InferenceSession.create(model);
  const inputs = {};
  for (const kv of feeds) {
    const eq = kv.indexOf('=');
    if (eq < 0) throw new Error(`expected NAME=F.npy, got '${kv}'`);
    const t = readNpy(kv.slice(eq + 1));
    inputs[kv.slice(0, eq)] = new ort.Tensor(t.type, t.data, t.shape);
  }
  const results = await session.run(inputs);
  fs.mkdirSync(outDir, {recursive: true});
  for (const name of session.outputNames) {
    writeNpy(path.join(outDir, `${name}.npy`), results[name]);
    console.log(`${name} ${results[name].type} [${results[name].dims.join(', ')}]`);
  }
}

main().catch((e) => {
  console.error(`ort_run.js: ${e.message || e}`);
  process.exit(1);
});
