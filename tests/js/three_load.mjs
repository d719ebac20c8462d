// Load a .glb with three.js's GLTFLoader under Node and play its first animation.
// Usage: node three_load.mjs FILE.glb [TIME ...]
// Prints JSON: counts (skinned meshes, bones, animations), the clip's duration and tracks, and the world
// position of every bone at each TIME (seconds), posed by an AnimationMixer.
import { readFileSync } from "node:fs";
import { AnimationMixer, LoopOnce, REVISION, Vector3 } from "three";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";

const [path, ...times] = process.argv.slice(2);
const bytes = readFileSync(path);
const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);

function report(gltf) {
  const skinned = [];
  gltf.scene.traverse((object) => object.isSkinnedMesh && skinned.push(object));
  const bones = skinned.length ? skinned[0].skeleton.bones : [];
  const clip = gltf.animations[0];
  const mixer = new AnimationMixer(gltf.scene);
  if (clip) {
    const action = mixer.clipAction(clip);
    action.setLoop(LoopOnce, 1); // so that TIME = duration shows the last frame, not the first again
    action.clampWhenFinished = true;
    action.play();
  }
  const poses = {};
  for (const time of times) {
    mixer.setTime(Number(time));
    gltf.scene.updateMatrixWorld(true);
    poses[time] = Object.fromEntries(bones.map((b) => [b.name, b.getWorldPosition(new Vector3()).toArray()]));
  }
  return {
    three: REVISION,
    skinnedMeshes: skinned.length,
    bones: bones.length,
    boneNames: bones.map((b) => b.name),
    animations: gltf.animations.length,
    duration: clip ? clip.duration : null,
    tracks: clip ? clip.tracks.map((t) => t.name) : [],
    poses,
  };
}

new GLTFLoader().parse(
  buffer,
  "",
  (gltf) => console.log(JSON.stringify(report(gltf))),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
