// Text to joints with the graphs of `motionlcm export onnx`, in onnxruntime-web (WebAssembly) under Node:
// the path a browser page takes without a server (tests/runtime/test_onnx_backend.py).
// Usage: node onnx_generate.mjs INPUT.json OUTPUT.json
// INPUT: {"dir": exported folder, "steps": N, "ids": [[int]], "attention_mask": [[int]], "noise": [...],
//         "guidance": [...], "token_mask": [[bool]], "step_noise": [...], "frames": T}, float arrays flat.
// OUTPUT: {"text": [...], "latents": [...], "features": [...], "joints": [...], "shapes": {...}}, flat arrays.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-web";

ort.env.wasm.numThreads = 1;

const [input, output] = process.argv.slice(2);
const job = JSON.parse(readFileSync(input, "utf8"));
const manifest = JSON.parse(readFileSync(join(job.dir, "manifest.json"), "utf8"));
const open = (name) =>
  ort.InferenceSession.create(readFileSync(join(job.dir, manifest.graphs[name].file)), {
    executionProviders: ["wasm"],
  });

const batch = job.ids.length;
const int64 = (rows) => new ort.Tensor("int64", BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);
const bool = (rows) => new ort.Tensor("bool", Uint8Array.from(rows.flat().map(Number)), [rows.length, rows[0].length]);
const { tokens, dim } = manifest.latents;

const text = (await (await open(manifest.text_encoder.graph)).run({
  input_ids: int64(job.ids),
  attention_mask: int64(job.attention_mask),
})).text;
const sampler = await open(manifest.sampler.graphs[String(job.steps)]);
const latents = (await sampler.run({
  text,
  noise: new ort.Tensor("float32", Float32Array.from(job.noise), [batch, tokens, dim]),
  guidance: new ort.Tensor("float32", Float32Array.from(job.guidance), [batch]),
  token_mask: bool(job.token_mask),
  step_noise: new ort.Tensor("float32", Float32Array.from(job.step_noise), [Math.max(job.steps - 1, 1), batch, tokens, dim]),
})).latents;
const frameMask = Array.from({ length: batch }, () => Array.from({ length: job.frames }, () => true));
const decoded = await (await open(manifest.decoder.graph)).run({ latents, mask: bool(frameMask) });

writeFileSync(output, JSON.stringify({
  text: Array.from(text.data),
  latents: Array.from(latents.data),
  features: Array.from(decoded.features.data),
  joints: Array.from(decoded.joints.data),
  shapes: { text: text.dims, latents: latents.dims, features: decoded.features.dims, joints: decoded.joints.dims },
}));
