// Validate a .glb with the Khronos glTF-Validator; prints its JSON report on stdout.
// Usage: node validate.mjs FILE.glb
import { readFileSync } from "node:fs";
import validator from "gltf-validator";

const path = process.argv[2];
const report = await validator.validateBytes(new Uint8Array(readFileSync(path)), {
  uri: path,
  maxIssues: 1000,
  format: "glb",
});
console.log(JSON.stringify(report));
