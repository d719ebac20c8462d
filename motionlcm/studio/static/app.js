// motionlcm studio: type a prompt, the motion regenerates ~150 ms after the last keystroke (docs/studio.md).
// Everything here and in vendor/ (three.js, MIT) is served by the local server: no network request leaves it.
import * as THREE from "./vendor/three.module.js";
import { OrbitControls } from "./vendor/OrbitControls.js";

const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 150;
const state = { motion: null, frame: 0, playing: true, takes: [], overlay: null, parents: [], request: 0 };

// ------------------------------------------------------------------ scene
const viewer = $("viewer");
const renderer = new THREE.WebGLRenderer({ antialias: true });
renderer.setPixelRatio(window.devicePixelRatio);
viewer.appendChild(renderer.domElement);
const scene = new THREE.Scene();
scene.background = new THREE.Color(0x15171c);
const camera = new THREE.PerspectiveCamera(45, 1, 0.05, 200);
camera.position.set(3.2, 2.0, 4.2);
const controls = new OrbitControls(camera, renderer.domElement);
controls.target.set(0, 0.9, 0);
controls.update();
scene.add(new THREE.GridHelper(20, 40, 0x3d4454, 0x262a33));
scene.add(new THREE.HemisphereLight(0xffffff, 0x30343e, 2.0));

function skeleton(color) {
  const bones = new THREE.LineSegments(new THREE.BufferGeometry(), new THREE.LineBasicMaterial({ color }));
  const joints = new THREE.Points(new THREE.BufferGeometry(), new THREE.PointsMaterial({ color, size: 0.05 }));
  const group = new THREE.Group();
  group.add(bones, joints);
  scene.add(group);
  return { group, bones, joints };
}
const main = skeleton(0x7cc4ff);
const ghost = skeleton(0xffd166);
const trail = new THREE.Line(new THREE.BufferGeometry(), new THREE.LineBasicMaterial({ color: 0x5a6b82 }));
scene.add(trail);

function pose(target, motion, frame) {
  if (!motion) { target.group.visible = false; return; }
  target.group.visible = true;
  const f = motion.joints[Math.min(frame, motion.joints.length - 1)];
  const lines = [];
  state.parents.forEach((p, j) => { if (p >= 0) lines.push(...f[p], ...f[j]); });
  target.bones.geometry.setAttribute("position", new THREE.Float32BufferAttribute(lines, 3));
  target.joints.geometry.setAttribute("position", new THREE.Float32BufferAttribute(f.flat(), 3));
}

function showTrail(motion) {
  const points = motion.joints.map((f) => [f[0][0], 0.002, f[0][2]]).flat();
  trail.geometry.setAttribute("position", new THREE.Float32BufferAttribute(points, 3));
}

function resize() {
  const { clientWidth: w, clientHeight: h } = viewer;
  renderer.setSize(w, h);
  camera.aspect = w / Math.max(h, 1);
  camera.updateProjectionMatrix();
}
window.addEventListener("resize", resize);

// ------------------------------------------------------------------ playback
let last = performance.now();
let clock = 0;
function tick(now) {
  const dt = (now - last) / 1000;
  last = now;
  const m = state.motion;
  if (m && state.playing) {
    clock += dt * parseFloat($("speed").value);
    let frame = Math.floor(clock * m.fps);
    if (frame >= m.joints.length) {
      if ($("loop").checked) { clock = 0; frame = 0; } else { frame = m.joints.length - 1; state.playing = false; $("play").textContent = "play"; }
    }
    setFrame(frame, false);
  }
  if (m && $("follow").checked) {
    const root = m.joints[state.frame][0];
    const shift = new THREE.Vector3(root[0], 0.9, root[2]).sub(controls.target);
    controls.target.add(shift);
    camera.position.add(shift);
  }
  controls.update();
  renderer.render(scene, camera);
  requestAnimationFrame(tick);
}

function setFrame(frame, fromScrub) {
  state.frame = frame;
  pose(main, state.motion, frame);
  pose(ghost, state.overlay, frame);
  if (!fromScrub) $("scrub").value = frame;
  $("frame").textContent = `${frame + 1} / ${state.motion.joints.length}`;
  document.body.dataset.frame = String(frame);
}

function show(motion) {
  state.motion = motion;
  clock = 0;
  $("scrub").max = motion.joints.length - 1;
  showTrail(motion);
  setFrame(0, false);
  document.body.dataset.frames = String(motion.joints.length);
}

$("play").onclick = () => { state.playing = !state.playing; $("play").textContent = state.playing ? "pause" : "play"; };
$("scrub").oninput = (e) => { if (!state.motion) return; state.playing = false; $("play").textContent = "play"; clock = +e.target.value / state.motion.fps; setFrame(+e.target.value, true); };

// ------------------------------------------------------------------ generation
function settings() {
  const guidance = $("guidance").value.trim();
  return {
    prompt: $("prompt").value,
    seconds: parseFloat($("seconds").value),
    steps: parseInt($("steps").value, 10),
    guidance: guidance === "" ? null : parseFloat(guidance),
    seed: parseInt($("seed").value, 10),
  };
}

function status(text, kind) {
  $("status").textContent = text;
  document.body.dataset.state = kind;
}

async function generate() {
  const body = settings();
  if (!body.prompt.trim()) return;
  const id = ++state.request;
  const started = performance.now();
  status("generating…", "busy");
  let response, data;
  try {
    response = await fetch("/api/generate", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    data = await response.json();
  } catch (err) {
    if (id === state.request) status(`server unreachable: ${err}`, "error");
    return;
  }
  if (id !== state.request) return; // a newer request is on its way: show only the latest
  if (!response.ok) { status(data.error || `HTTP ${response.status}`, "error"); return; }
  show(data);
  const total = performance.now() - started;
  status(`${data.frames} frames · model ${data.ms.generate.toFixed(0)} ms · round trip ${total.toFixed(0)} ms · seed ${data.seed}`, "ready");
}

let timer = null;
$("prompt").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(generate, DEBOUNCE_MS); });
$("prompt").addEventListener("keydown", (e) => { if (e.key === "Enter") { clearTimeout(timer); generate(); } });
for (const id of ["seconds", "steps", "guidance", "seed"]) $(id).addEventListener("change", generate);
$("go").onclick = generate;
$("new-seed").onclick = () => { $("seed").value = Math.floor(Math.random() * 2 ** 31); generate(); };

// ------------------------------------------------------------------ takes
function renderTakes() {
  const list = $("takes");
  list.replaceChildren(...state.takes.map((take, i) => {
    const item = document.createElement("li");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = state.overlay === take;
    box.title = "overlay";
    box.onclick = (e) => { e.stopPropagation(); state.overlay = box.checked ? take : null; renderTakes(); setFrame(state.frame, false); };
    item.append(box, ` ${i + 1}. ${take.prompt} (seed ${take.seed})`);
    item.className = state.motion === take ? "current" : "";
    item.onclick = () => { show(take); renderTakes(); };
    return item;
  }));
}
$("keep").onclick = () => { if (state.motion && !state.takes.includes(state.motion)) { state.takes.push(state.motion); renderTakes(); } };

// ------------------------------------------------------------------ downloads
async function download(format, extra = {}) {
  const m = state.motion;
  if (!m) return;
  const body = { joints: m.joints, fps: m.fps, format, prompt: m.prompt, ...extra };
  if (format === "json") body.settings = { seed: m.seed, steps: m.steps, guidance: m.guidance, seconds: m.frames / m.fps };
  const response = await fetch("/api/export", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!response.ok) { status((await response.json()).error, "error"); return; }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = `${m.prompt.slice(0, 40).replace(/[^a-z0-9]+/gi, "_")}_seed${m.seed}.${format}`;
  link.click();
  URL.revokeObjectURL(link.href);
}
$("dl-bvh").onclick = () => download("bvh", { target_fps: parseFloat($("bvh-fps").value) });
$("dl-npy").onclick = () => download("npy");
$("dl-json").onclick = () => download("json");

// ------------------------------------------------------------------ start
const health = await (await fetch("/api/health")).json();
state.parents = health.parents;
$("model").textContent = `${health.model.split("/").pop()} (${health.kind}, ${health.backend})`;
resize();
requestAnimationFrame(tick);
status("type a prompt", "idle");
const start = new URLSearchParams(location.search).get("prompt");
if (start) { $("prompt").value = start; generate(); }
