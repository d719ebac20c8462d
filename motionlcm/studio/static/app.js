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
const pathLine = new THREE.Line(new THREE.BufferGeometry(), new THREE.LineBasicMaterial({ color: 0xff9f43 }));
scene.add(pathLine);
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
  ghost.group.position.x = $("side").checked ? 1.5 : 0; // side by side: the compared take 1.5 m to the side
  if (!fromScrub) $("scrub").value = frame;
  $("frame").textContent = `${frame + 1} / ${state.motion.joints.length}`;
  document.body.dataset.frame = String(frame);
  markLane(frame);
}

function showLane(motion) {
  const lane = $("lane");
  if (!motion.segments) { lane.replaceChildren(); return; }
  const cells = motion.segments.map((seg, i) => {
    const end = i + 1 < motion.segments.length ? motion.segments[i + 1].start_frame : motion.frames;
    const cell = document.createElement("div");
    cell.className = "seg";
    cell.style.flex = String(end - seg.start_frame);
    cell.textContent = seg.prompt;
    cell.title = `${seg.prompt} (from ${(seg.start_frame / motion.fps).toFixed(1)} s)`;
    return cell;
  });
  const head = document.createElement("div");
  head.className = "head";
  lane.replaceChildren(...cells, head);
}

function markLane(frame) {
  const m = state.motion;
  if (!m || !m.segments) return;
  const lane = $("lane");
  let now = 0;
  m.segments.forEach((seg, i) => { if (frame >= seg.start_frame) now = i; });
  [...lane.querySelectorAll(".seg")].forEach((cell, i) => cell.classList.toggle("now", i === now));
  lane.querySelector(".head").style.left = `${(100 * frame) / m.frames}%`;
  document.body.dataset.segment = String(now);
}

function frameCamera(motion) {
  // keep the whole motion in view: aim at the middle of the pelvis's path, back off by its extent
  const xs = motion.joints.map((f) => f[0][0]), zs = motion.joints.map((f) => f[0][2]);
  const [x0, x1, z0, z1] = [Math.min(...xs), Math.max(...xs), Math.min(...zs), Math.max(...zs)];
  const centre = new THREE.Vector3((x0 + x1) / 2, 0.9, (z0 + z1) / 2);
  const distance = Math.max(4.5, 1.6 * Math.hypot(x1 - x0, z1 - z0) + 3);
  const view = camera.position.clone().sub(controls.target).normalize();
  camera.position.copy(centre).addScaledVector(view, distance);
  controls.target.copy(centre);
}

function show(motion) {
  state.motion = motion;
  showLane(motion);
  if (!$("follow").checked) frameCamera(motion);
  clock = 0;
  $("scrub").max = motion.joints.length - 1;
  showTrail(motion);
  setFrame(0, false);
  document.body.dataset.frames = String(motion.joints.length);
}

$("play").onclick = () => { state.playing = !state.playing; $("play").textContent = state.playing ? "pause" : "play"; };
$("scrub").oninput = (e) => { if (!state.motion) return; state.playing = false; $("play").textContent = "play"; clock = +e.target.value / state.motion.fps; setFrame(+e.target.value, true); };

// ------------------------------------------------------------------ generation
// ------------------------------------------------------------------ control: a path drawn on the floor
const floor = new THREE.Plane(new THREE.Vector3(0, 1, 0), 0);
const ray = new THREE.Raycaster();
state.path = null; // [[x, z], ...] in the motion's frame (first point at the origin)
let drawing = null;

function floorPoint(event) {
  const box = renderer.domElement.getBoundingClientRect();
  const ndc = new THREE.Vector2(((event.clientX - box.left) / box.width) * 2 - 1, -((event.clientY - box.top) / box.height) * 2 + 1);
  ray.setFromCamera(ndc, camera);
  const hit = new THREE.Vector3();
  return ray.ray.intersectPlane(floor, hit) ? [hit.x, hit.z] : null;
}

function showPath(points) {
  const flat = (points || []).map(([x, z]) => [x, 0.01, z]).flat();
  pathLine.geometry.setAttribute("position", new THREE.Float32BufferAttribute(flat, 3));
}

renderer.domElement.addEventListener("pointerdown", (e) => {
  if (!$("draw").classList.contains("on")) return;
  const p = floorPoint(e);
  if (p) drawing = [p];
});
renderer.domElement.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const p = floorPoint(e);
  const [lx, lz] = drawing[drawing.length - 1];
  if (p && Math.hypot(p[0] - lx, p[1] - lz) > 0.03) { drawing.push(p); showPath(drawing); }
});
renderer.domElement.addEventListener("pointerup", () => {
  if (!drawing) return;
  const [x0, z0] = drawing[0];
  state.path = drawing.length > 1 ? drawing.map(([x, z]) => [x - x0, z - z0]) : null;
  drawing = null;
  showPath(state.path);
  if (state.path) generate();
});
$("draw").onclick = () => {
  const on = $("draw").classList.toggle("on");
  controls.enabled = !on;
  $("draw").textContent = on ? "drawing… (click to stop)" : "draw path";
};
$("clear-path").onclick = () => { state.path = null; showPath(null); generate(); };

// keyframe targets: {time, joint, position, mesh}; dragged in the plane through the target facing the camera
state.keys = [];
const targetGeometry = new THREE.SphereGeometry(0.05, 16, 12);
const targetMaterial = new THREE.MeshBasicMaterial({ color: 0xff9f43 });
let dragged = null;
const dragPlane = new THREE.Plane();

function renderKeys() {
  $("keys").replaceChildren(...state.keys.map((key, i) => {
    const item = document.createElement("li");
    const drop = Object.assign(document.createElement("button"), { type: "button", textContent: "×", title: "remove" });
    drop.onclick = () => { scene.remove(key.mesh); state.keys.splice(i, 1); renderKeys(); generate(); };
    const [x, y, z] = key.position.map((v) => v.toFixed(2));
    item.append(`${key.joint} at ${key.time.toFixed(2)} s → (${x}, ${y}, ${z}) `, drop);
    return item;
  }));
}

function addKey(joint, frame, position) {
  const mesh = new THREE.Mesh(targetGeometry, targetMaterial);
  mesh.position.set(...position);
  scene.add(mesh);
  const key = { time: frame / 20, joint, position, mesh };
  state.keys.push(key);
  renderKeys();
  return key;
}

$("add-key").onclick = () => {
  const m = state.motion;
  if (!m) return;
  const joint = $("key-joint").value;
  const index = health.joint_names.indexOf(joint);
  addKey(joint, state.frame, [...m.joints[state.frame][index]]);
};

function pointerRay(event) {
  const box = renderer.domElement.getBoundingClientRect();
  ray.setFromCamera(new THREE.Vector2(((event.clientX - box.left) / box.width) * 2 - 1, -((event.clientY - box.top) / box.height) * 2 + 1), camera);
}

renderer.domElement.addEventListener("pointerdown", (e) => {
  if (!state.keys.length || $("draw").classList.contains("on")) return;
  pointerRay(e);
  const hit = ray.intersectObjects(state.keys.map((k) => k.mesh))[0];
  if (!hit) return;
  dragged = state.keys.find((k) => k.mesh === hit.object);
  dragPlane.setFromNormalAndCoplanarPoint(camera.getWorldDirection(new THREE.Vector3()), dragged.mesh.position);
  controls.enabled = false;
});
renderer.domElement.addEventListener("pointermove", (e) => {
  if (!dragged) return;
  pointerRay(e);
  const point = new THREE.Vector3();
  if (ray.ray.intersectPlane(dragPlane, point)) { dragged.mesh.position.copy(point); dragged.position = point.toArray(); }
});
renderer.domElement.addEventListener("pointerup", () => {
  if (!dragged) return;
  dragged = null;
  controls.enabled = true;
  renderKeys();
  generate();
});

function trajectory(seconds) {
  // time by arc length over the motion: the pelvis covers the path at an even pace, ending on the last frame
  const frames = Math.round(seconds * 20);
  const end = (frames - 1) / 20;
  const lengths = [0];
  for (let i = 1; i < state.path.length; i++) {
    const [ax, az] = state.path[i - 1], [bx, bz] = state.path[i];
    lengths.push(lengths[i - 1] + Math.hypot(bx - ax, bz - az));
  }
  const total = lengths[lengths.length - 1] || 1;
  return state.path.map(([x, z], i) => [(end * lengths[i]) / total, x, z]).filter((row, i, all) => i === 0 || row[0] > all[i - 1][0]);
}

function settings() {
  const guidance = $("guidance").value.trim();
  const seconds = parseFloat($("seconds").value);
  return {
    prompt: $("prompt").value,
    seconds,
    steps: parseInt($("steps").value, 10),
    guidance: guidance === "" ? null : parseFloat(guidance),
    seed: parseInt($("seed").value, 10),
    model: $("model").value,
    trajectory: state.path ? trajectory(seconds) : null,
    keyframes: state.keys.length ? state.keys.map(({ time, joint, position }) => ({ time, joint, position })) : null,
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
  const control = data.control ? ` · control error ${(100 * data.control.avg_err_m).toFixed(1)} cm` : "";
  const read = data.prompt_read_as ? ` · read as “${data.prompt_read_as}”` : "";
  status(`${data.frames} frames · model ${data.ms.generate.toFixed(0)} ms · round trip ${total.toFixed(0)} ms · seed ${data.seed}${control}${read}`, "ready");
}

let timer = null;
$("prompt").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(generate, DEBOUNCE_MS); });
$("prompt").addEventListener("keydown", (e) => { if (e.key === "Enter") { clearTimeout(timer); generate(); } });
for (const id of ["seconds", "steps", "guidance", "seed", "model"]) $(id).addEventListener("change", generate);
$("go").onclick = generate;
$("new-seed").onclick = () => { $("seed").value = Math.floor(Math.random() * 2 ** 31); generate(); };

// ------------------------------------------------------------------ timeline
function addBlock(prompt = "", seconds = 3) {
  const item = document.createElement("li");
  const text = Object.assign(document.createElement("input"), { type: "text", value: prompt, placeholder: "prompt" });
  const secs = Object.assign(document.createElement("input"), { type: "number", value: seconds, min: 0.5, max: 9.8, step: 0.5 });
  const drop = Object.assign(document.createElement("button"), { type: "button", textContent: "×", title: "remove" });
  drop.onclick = () => item.remove();
  item.append(text, " ", secs, " s ", drop);
  $("blocks").append(item);
}

async function generateTake() {
  const segments = [...$("blocks").children].map((item) => {
    const [text, secs] = item.querySelectorAll("input");
    return { prompt: text.value, seconds: parseFloat(secs.value) };
  }).filter((s) => s.prompt.trim());
  if (!segments.length) { status("add a block with a prompt first", "error"); return; }
  const id = ++state.request;
  status(`generating a take of ${segments.length} blocks…`, "busy");
  const response = await fetch("/api/timeline", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ segments, seed: parseInt($("seed").value, 10), model: $("model").value }) });
  const data = await response.json();
  if (id !== state.request) return;
  if (!response.ok) { status(data.error || `HTTP ${response.status}`, "error"); return; }
  show(data);
  status(`take: ${data.frames} frames, ${segments.length} blocks · model ${data.ms.generate.toFixed(0)} ms · seed ${data.seed}`, "ready");
}
$("add-block").onclick = () => addBlock();
$("take").onclick = generateTake;
addBlock("a person walks forward", 3);
addBlock("a person turns left", 2);
addBlock("a person waves with the right hand", 3);

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
$("side").onchange = () => { if (state.motion) setFrame(state.frame, false); };
$("keep").onclick = () => { if (state.motion && !state.takes.includes(state.motion)) { state.takes.push(state.motion); renderTakes(); } };

// ------------------------------------------------------------------ downloads
async function download(format, extra = {}) {
  const m = state.motion;
  if (!m) return;
  const body = { joints: m.joints, fps: m.fps, format, prompt: m.prompt, ...extra };
  if (format === "json") {
    body.settings = { seed: m.seed, steps: m.steps, guidance: m.guidance, seconds: m.frames / m.fps };
    if (m.prompt_read_as) body.settings.prompt_read_as = m.prompt_read_as;
  }
  const response = await fetch("/api/export", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!response.ok) { status((await response.json()).error, "error"); return; }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  const name = (response.headers.get("Content-Disposition") || "").match(/filename="[^"]*\.(\w+)"/);
  link.download = `${m.prompt.slice(0, 40).replace(/[^a-z0-9]+/gi, "_")}_seed${m.seed}.${name ? name[1] : format}`;
  link.click();
  URL.revokeObjectURL(link.href);
}
$("dl-bvh").onclick = () => download("bvh", { target_fps: parseFloat($("bvh-fps").value) });
$("dl-npy").onclick = () => download("npy");
$("dl-json").onclick = () => download("json");
$("dl-mp4").onclick = () => { status("rendering the movie…", "busy"); download("mp4").then(() => status("movie downloaded", "ready")); };
$("dl-gif").onclick = () => { status("rendering the GIF…", "busy"); download("gif").then(() => status("GIF downloaded", "ready")); };

// ------------------------------------------------------------------ start
const query = new URLSearchParams(location.search);
const health = await (await fetch("/api/health")).json();
if (query.get("key")) { // ?key=seconds:joint:x,y,z adds a keyframe target (for links and tests)
  const [t, joint, xyz] = query.get("key").split(":");
  addKey(joint, Math.round(parseFloat(t) * 20), xyz.split(",").map(Number));
}
state.parents = health.parents;
$("model").replaceChildren(...health.models.map((m) => Object.assign(document.createElement("option"),
  { value: m.name, textContent: `${m.name} (${m.backend})`, title: m.path })));
resize();
requestAnimationFrame(tick);
status("type a prompt", "idle");
if (query.get("path")) { // ?path=x,z;x,z;... draws a path (for links and tests)
  state.path = query.get("path").split(";").map((p) => p.split(",").map(Number));
  showPath(state.path);
}
if (query.get("prompt")) { $("prompt").value = query.get("prompt"); generate(); }
else if (query.has("take")) generateTake();
