"""SMPL body parameters from generated joints: an AMASS-style `.npz`, and the body mesh (docs/smpl.md).

The SMPL model files are licensed and cannot ship, so everything here works on the user's own neutral body,
converted by them to a plain-array `SMPL_NEUTRAL.npz` and never unpickled (`load_smpl_model`). smplx builds
the body from the checked arrays; it never opens a file itself.

Fit (`fit_smpl`): SMPL's rest joints differ from our skeleton (other bone lengths, another layout of the
hips and collars), so rotations are fitted, not copied: the greedy `solve_rotations` on the body's own
rest offsets, then one least-squares problem over all frames (torch L-BFGS) on every joint's world rotation
and the pelvis position. Hands (SMPL joints 22, 23) are not in our skeleton and stay at zero; so do the
leaves (feet, head, wrists), which have no child to aim.

Coordinates. Ours: y up, the body facing +z at the start, left = +x. AMASS: z up. HumanML3D turns AMASS
joints into ours by swapping y and z and then negating x (`raw_pose_processing.ipynb`, EricGuo5513/HumanML3D:
`np.dot(joints, [[1,0,0],[0,0,1],[0,1,0]])`, then `data[..., 0] *= -1`), i.e. ours = A @ amass with
A = `AMASS_TO_OURS` below, a proper rotation that is its own inverse. The `.npz` is written in AMASS's frame,
so HumanML3D's pipeline applied to it gives back our joints:

- `poses[:, :3]` (global orient) = A @ R_root (the body's root rotation in our frame); the other joints'
  local rotations do not depend on the frame;
- `trans` = A @ pelvis - J0: SMPL turns the body about its rest pelvis J0 and then adds `trans`, so the
  posed pelvis is J0 + trans.

The mesh (`smpl_vertices`, `write_obj_sequence`) is in our frame: y up, metres.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from motionlcm.data.quaternion import quaternion_to_matrix
from motionlcm.data.skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS
from motionlcm.export.bvh_export import check_fps, skeleton_positions, solve_rotations
from motionlcm.io.atomic import write_bytes_atomic
from motionlcm.io.obj import write_obj_sequence  # noqa: F401 - the mesh files, re-exported here

__all__ = [
    "AMASS_KEYS",
    "AMASS_TO_OURS",
    "MODEL_FILE",
    "SMPL_PARENTS",
    "SmplBody",
    "SmplParams",
    "fit_smpl",
    "load_smpl_model",
    "save_amass_npz",
    "smpl_vertices",
    "write_obj_sequence",
]

MODEL_FILE = "SMPL_NEUTRAL.npz"
DOCS = "docs/smpl.md"

# ours = AMASS_TO_OURS @ amass (HumanML3D raw_pose_processing.ipynb: swap y and z, then negate x); its own inverse
AMASS_TO_OURS = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])

# SMPL's 24-joint tree: our 22 joints, then left_hand (child of left_wrist) and right_hand (of right_wrist)
SMPL_PARENTS: tuple[int, ...] = PARENTS + (20, 21)
SMPL_JOINTS = len(SMPL_PARENTS)
POSE_BASIS = 9 * (SMPL_JOINTS - 1)  # 207 pose blend shapes: 3x3 rotation entries of the 23 non-root joints
NUM_BETAS = 10  # AMASS-style betas; all zero (the neutral body's mean shape)
AMASS_KEYS = ("poses", "trans", "betas", "gender", "mocap_framerate")
FIELDS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")  # SMPL's arrays

FIT_TOLERANCE = 0.02  # metres: fit_smpl warns when a joint is off by more (the body's bones cannot reach)
FIT_ITERATIONS = 100  # L-BFGS iterations per block of frames (200 changes the mean error by < 0.001 cm)
FIT_FRAMES = 256  # frames fitted together: frames are independent problems, blocks bound L-BFGS's memory
CHUNK = 64  # frames per smplx forward pass (the real body's skinning of 6890 vertices needs ~1 MB a frame)


# --------------------------------------------------------------------------- the user's model file


@dataclass(frozen=True, eq=False)
class SmplBody:
    """A neutral SMPL body: the checked arrays of `path` and the smplx model built from them (float64).

    Arrays: v_template (V, 3), shapedirs (V, 3, S), posedirs (V, 3, 207), J_regressor (24, V), weights
    (V, 24), kintree_table (2, 24), faces (F, 3) int64.
    """

    path: Path
    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    kintree_table: np.ndarray
    faces: np.ndarray
    model: Any  # smplx.SMPL

    @property
    def rest_joints(self) -> np.ndarray:
        """(24, 3) joints of the rest pose with betas 0, in SMPL's model frame (y up, facing +z, as ours)."""
        return self.J_regressor @ self.v_template


def _model_path(folder: str | Path | None) -> Path:
    """The `.npz` to read from a model folder (or the file itself); a .pkl is refused with how to convert it."""
    if folder is None or not str(folder).strip():
        raise ValueError(
            f"the SMPL export needs your SMPL model folder (--smpl-model DIR, holding {MODEL_FILE}): the SMPL "
            f"body is licensed and cannot ship; {DOCS} says how to get and convert it"
        )
    path = Path(folder).expanduser()
    convert = (
        f"motionlcm never unpickles model files: convert it yourself to {MODEL_FILE}, np.savez of its plain "
        f"dense arrays {', '.join(FIELDS)} ({DOCS}, 'Converting the .pkl', has the script)"
    )
    if path.is_file():
        if path.suffix.lower() == ".pkl":
            raise ValueError(f"{path}: a pickled SMPL model; {convert}")
        return path
    if not path.is_dir():
        raise ValueError(f"{path}: no such SMPL model folder (expected a folder holding {MODEL_FILE}; {DOCS})")
    npz = path / MODEL_FILE
    if npz.is_file():
        return npz
    pickles = sorted(path.glob("*.pkl"), key=lambda p: ("neutral" not in p.name.lower(), p.name))
    if pickles:
        raise ValueError(f"{pickles[0]}: a pickled SMPL model and no {MODEL_FILE} beside it; {convert}")
    raise ValueError(f"{npz}: missing; the SMPL export needs the neutral SMPL body as plain arrays ({DOCS})")


def _field(archive: Any, path: Path, name: str, kind: str = "float") -> np.ndarray:
    """One array of the archive: present, numeric, finite (kind "float") or integral (kind "int")."""
    if name not in archive.files:
        raise ValueError(f"{path}: field {name} is missing ({DOCS} lists the fields)")
    try:
        array = archive[name]  # allow_pickle=False: an object array raises here instead of being unpickled
    except ValueError:
        raise ValueError(
            f"{path}: field {name} is an object array (a pickled Python object, e.g. a scipy sparse or chumpy "
            f"array); motionlcm never unpickles: save it as a plain dense array ({DOCS})"
        ) from None
    if kind == "int":
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{path}: field {name} must hold integers, got dtype {array.dtype}")
        return array.astype(np.int64)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{path}: field {name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: field {name} contains NaN or inf")
    return array


def _shape(path: Path, name: str, array: np.ndarray, expected: tuple, text: str) -> None:
    if array.shape != expected:
        raise ValueError(f"{path}: field {name} has shape {array.shape}, expected {text}")


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The seven SMPL arrays of `path`, each checked; posedirs in the (V, 3, 207) layout."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path}: not a readable .npz archive ({str(error).splitlines()[0]})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: a single .npy array, not an .npz archive of the SMPL fields ({DOCS})")
    with archive:
        v_template = _field(archive, path, "v_template")
        if v_template.ndim != 2 or v_template.shape[1] != 3 or len(v_template) < 1:
            raise ValueError(f"{path}: field v_template has shape {v_template.shape}, expected (V, 3)")
        V = len(v_template)
        shapedirs = _field(archive, path, "shapedirs")
        if shapedirs.ndim != 3 or shapedirs.shape[:2] != (V, 3) or shapedirs.shape[2] < 1:
            raise ValueError(f"{path}: field shapedirs has shape {shapedirs.shape}, expected ({V}, 3, S)")
        posedirs = _field(archive, path, "posedirs")
        if posedirs.shape == (V, 3, POSE_BASIS) or posedirs.shape == (V * 3, POSE_BASIS):
            posedirs = posedirs.reshape(V, 3, POSE_BASIS)
        elif posedirs.shape == (POSE_BASIS, V * 3):  # smplx's own buffer layout
            posedirs = posedirs.T.reshape(V, 3, POSE_BASIS)
        else:
            raise ValueError(
                f"{path}: field posedirs has shape {posedirs.shape}, expected ({V}, 3, {POSE_BASIS}), "
                f"({V * 3}, {POSE_BASIS}) or ({POSE_BASIS}, {V * 3})"
            )
        regressor = _field(archive, path, "J_regressor")
        hint = f"(24, {V}) (dense; SMPL-H and SMPL-X models are not supported, only SMPL's 24 joints)"
        _shape(path, "J_regressor", regressor, (SMPL_JOINTS, V), hint)
        bones = np.linalg.norm(regressor @ v_template - (regressor @ v_template)[list(SMPL_PARENTS)], axis=-1)
        if bones[1:].min() < 1e-6:
            k = int(bones[1:].argmin()) + 1
            raise ValueError(f"{path}: field J_regressor puts joint {k} on its parent {SMPL_PARENTS[k]} (no bone)")
        weights = _field(archive, path, "weights")
        _shape(path, "weights", weights, (V, SMPL_JOINTS), f"({V}, {SMPL_JOINTS})")
        kintree = _field(archive, path, "kintree_table", "int")
        _shape(path, "kintree_table", kintree, (2, SMPL_JOINTS), f"(2, {SMPL_JOINTS})")
        if tuple(kintree[0, 1:]) != SMPL_PARENTS[1:]:
            raise ValueError(
                f"{path}: field kintree_table is not SMPL's 24-joint tree (parents {kintree[0, 1:].tolist()}, "
                f"expected {list(SMPL_PARENTS[1:])})"
            )
        faces = _field(archive, path, "f", "int")
        if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) < 1:
            raise ValueError(f"{path}: field f has shape {faces.shape}, expected (F, 3)")
        if faces.min() < 0 or faces.max() >= V:
            raise ValueError(f"{path}: field f indexes vertices outside 0..{V - 1}")
    return {
        "v_template": v_template,
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": kintree,
        "f": faces,
    }


def load_smpl_model(folder: str | Path | None) -> SmplBody:
    """The neutral SMPL body of a model folder holding `SMPL_NEUTRAL.npz` (or that file itself).

    The file is read with `np.load(allow_pickle=False)` and every field is checked (ValueError naming the
    file and the field); a `.pkl` is refused with a note on converting it (docs/smpl.md). smplx builds the
    model from the checked arrays (`data_struct`), so it never opens (or unpickles) anything itself.
    """
    path = _model_path(folder)
    arrays = _read_arrays(path)
    try:
        import smplx
        from smplx.utils import Struct
    except ImportError:
        raise ValueError("the SMPL export needs the smplx package: pip install 'motionlcm[smpl]'") from None
    # smplx appends keypoints read off fixed vertices of the 6890-vertex mesh (nose, toes, finger tips); we
    # use only the 24 skeleton joints, so point those at vertex 0 and a body of any vertex count loads
    keypoints = dict.fromkeys(("nose", "reye", "leye", "rear", "lear"), 0)
    with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for models with 10 shape components
        model = smplx.SMPL(
            str(path),
            data_struct=Struct(**arrays),
            create_betas=False,
            create_global_orient=False,
            create_body_pose=False,
            create_transl=False,
            num_betas=NUM_BETAS,
            dtype=torch.float64,
            vertex_ids=keypoints,
            use_hands=False,
            use_feet_keypoints=False,
        )
    model.eval()
    faces = arrays.pop("f")
    return SmplBody(path=path, faces=faces, model=model, **arrays)


# --------------------------------------------------------------------------- the fit


@dataclass(frozen=True, eq=False)
class SmplParams:
    """SMPL parameters of a motion, in AMASS's frame (z up), and how well they reproduce it.

    poses (T, 72) axis-angle, SMPL joint order (global orient, then 23 joints; the hands 22, 23 zero);
    trans (T, 3) metres; betas (10,) zeros; fps. joints (T, 22, 3): the body's joints with these
    parameters, in our frame (y up); error (T, 22): their distance to the given joints, metres.
    """

    poses: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    fps: float
    joints: np.ndarray
    error: np.ndarray


def _check_joints(joints: Any) -> np.ndarray:
    try:
        arr = np.asarray(joints, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("joints: expected a numeric (T, 22, 3) array") from None
    if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 3) or len(arr) < 1:
        raise ValueError(f"joints: expected shape (T, {NUM_JOINTS}, 3) with T >= 1, got {arr.shape}")
    if not np.isfinite(arr).all():
        frame = int(np.flatnonzero(~np.isfinite(arr).all(axis=(1, 2)))[0])
        raise ValueError(f"joints: NaN or inf at frame {frame}")
    return arr


def _check_body(body: Any) -> SmplBody:
    if not isinstance(body, SmplBody):
        raise ValueError(f"body: expected an SmplBody from load_smpl_model, got {type(body).__name__}")
    return body


def _least_squares(joints: np.ndarray, offsets: np.ndarray, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World rotations (T, 22, 3, 3) and pelvis positions (T, 3) minimising the squared joint errors of the
    body (rest `offsets`), from the greedy rotations `world` and the given pelvis. Each rotation is the start
    turned by a unit quaternion: one smooth problem over the frames, solved by L-BFGS."""
    target, start = torch.from_numpy(joints), torch.from_numpy(world)
    offs = torch.from_numpy(offsets)
    turn = torch.zeros(len(joints), NUM_JOINTS, 4, dtype=torch.float64)
    turn[..., 0] = 1.0
    root = target[:, 0].clone()
    turn.requires_grad_(True)
    root.requires_grad_(True)
    opt = torch.optim.LBFGS([turn, root], max_iter=FIT_ITERATIONS, line_search_fn="strong_wolfe")

    def rotations() -> torch.Tensor:
        return quaternion_to_matrix(turn / torch.linalg.vector_norm(turn, dim=-1, keepdim=True)) @ start

    def loss() -> torch.Tensor:
        opt.zero_grad()
        value = ((skeleton_positions(rotations(), root, offs) - target) ** 2).sum(-1).mean() * 1e4  # cm^2
        value.backward()
        return value

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: threads only add overhead on a busy host
    try:
        opt.step(loss)
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        return rotations().numpy(), root.detach().numpy().copy()


def _to_poses(world: np.ndarray) -> np.ndarray:
    """World rotations (T, 22, 3, 3) in our frame -> AMASS `poses` (T, 72): the global orient turned into
    AMASS's frame, local rotations of joints 1..21, zero hands. Leaves keep their parent's rotation."""
    T = len(world)
    local = np.broadcast_to(np.eye(3), (T, SMPL_JOINTS, 3, 3)).copy()
    local[:, 0] = AMASS_TO_OURS @ world[:, 0]  # AMASS_TO_OURS is its own inverse: ours -> AMASS
    for joint in range(1, NUM_JOINTS):
        if joint in PARENTS:
            local[:, joint] = np.swapaxes(world[:, PARENTS[joint]], -1, -2) @ world[:, joint]
    return Rotation.from_matrix(local.reshape(-1, 3, 3)).as_rotvec().reshape(T, 3 * SMPL_JOINTS)


def _posed_joints(body: SmplBody, poses: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """(T, 24, 3) joints of smplx's forward kinematics (AMASS frame), without skinning the mesh: the same
    `batch_rodrigues` and `batch_rigid_transform` smplx's `lbs` runs on the rest joints (betas 0)."""
    from smplx.lbs import batch_rigid_transform, batch_rodrigues

    T = len(poses)
    rot = batch_rodrigues(torch.from_numpy(poses).reshape(-1, 3)).reshape(T, SMPL_JOINTS, 3, 3)
    rest = torch.from_numpy(body.rest_joints).expand(T, -1, -1)
    with torch.no_grad():
        posed, _ = batch_rigid_transform(rot, rest, body.model.parents, dtype=torch.float64)
    return posed.numpy() + trans[:, None]


def _warn_if_off(error: np.ndarray) -> None:
    if error.max() > FIT_TOLERANCE:
        t, k = np.unravel_index(error.argmax(), error.shape)
        share = (error > FIT_TOLERANCE).mean()
        warnings.warn(
            f"SMPL fit: {JOINT_NAMES[k]} is {error[t, k] * 100:.1f} cm off at frame {t} ({share:.1%} of the "
            f"joints are off by more than {FIT_TOLERANCE * 100:g} cm): the body's bone lengths cannot reach",
            stacklevel=3,
        )


def fit_smpl(joints: Any, body: SmplBody, fps: float = 20.0) -> SmplParams:
    """SMPL parameters (neutral body, betas 0) whose forward kinematics reproduces the motion's joints.

    Args:
        joints: (T, 22, 3) positions in metres, our frame (y up), SMPL joint order.
        body: the user's neutral body (`load_smpl_model`).
        fps: frame rate written as `mocap_framerate`.

    Returns:
        `SmplParams` in AMASS's frame, with the fitted joints and their error. Where the body's bones are
        too long or short to reach the joints it is a least-squares compromise (a warning names the worst
        joint when it is off by more than 2 cm).
    """
    j = _check_joints(joints)
    body = _check_body(body)
    fps = check_fps(fps, "fps")
    rest = body.rest_joints
    offsets = rest[:NUM_JOINTS] - rest[list(PARENTS)]
    offsets[0] = 0.0
    greedy, _ = solve_rotations(j, offsets)
    blocks = [
        _least_squares(j[start : start + FIT_FRAMES], offsets, greedy[start : start + FIT_FRAMES])
        for start in range(0, len(j), FIT_FRAMES)
    ]
    world, pelvis = (np.concatenate(parts) for parts in zip(*blocks, strict=True))
    poses = _to_poses(world)
    trans = pelvis @ AMASS_TO_OURS.T - rest[0]
    fitted = _posed_joints(body, poses, trans)[:, :NUM_JOINTS] @ AMASS_TO_OURS.T
    error = np.linalg.norm(fitted - j, axis=-1)
    _warn_if_off(error)
    return SmplParams(poses, trans, np.zeros(NUM_BETAS), fps, fitted, error)


# --------------------------------------------------------------------------- files


def _check_params(params: Any) -> SmplParams:
    if not isinstance(params, SmplParams):
        raise ValueError(f"params: expected SmplParams from fit_smpl, got {type(params).__name__}")
    poses = np.asarray(params.poses)
    T = len(poses) if poses.ndim else 0
    for name, array, shape in (
        ("poses", params.poses, (T, 3 * SMPL_JOINTS)),
        ("trans", params.trans, (T, 3)),
        ("betas", params.betas, (NUM_BETAS,)),
    ):
        array = np.asarray(array)
        if array.shape != shape or T < 1 or array.dtype.kind not in "fiu" or not np.isfinite(array).all():
            raise ValueError(f"params: {name} must be a finite array of shape {shape} (T >= 1), got {array.shape}")
    check_fps(params.fps, "params: fps")
    return params


def save_amass_npz(path: str | Path, params: SmplParams) -> Path:
    """Write `params` as an AMASS-style `.npz` at exactly `path`, atomically.

    Keys (`AMASS_KEYS`): poses (T, 72) float64, trans (T, 3) float64, betas (10,) float64, gender "neutral"
    (a 0-d unicode array, as AMASS stores it), mocap_framerate (0-d float64). Z up (AMASS's frame).
    """
    params = _check_params(params)
    arrays = {
        "poses": np.asarray(params.poses, dtype=np.float64),
        "trans": np.asarray(params.trans, dtype=np.float64),
        "betas": np.asarray(params.betas, dtype=np.float64),
        "gender": np.array("neutral"),
        "mocap_framerate": np.array(float(params.fps)),
    }
    return write_bytes_atomic(path, lambda handle: np.savez(handle, **arrays))


def smpl_vertices(params: SmplParams, body: SmplBody) -> tuple[np.ndarray, np.ndarray]:
    """The body mesh of every frame: vertices (T, V, 3) float32 in metres in our frame (y up), from smplx's
    forward pass with `params`, and the faces (F, 3) int64 (vertex indices from 0)."""
    params, body = _check_params(params), _check_body(body)
    poses, trans = torch.from_numpy(np.asarray(params.poses, np.float64)), np.asarray(params.trans, np.float64)
    betas = torch.from_numpy(np.asarray(params.betas, np.float64)[None, : body.model.num_betas])
    chunks = []
    with torch.no_grad():
        for start in range(0, len(poses), CHUNK):
            pose = poses[start : start + CHUNK]
            out = body.model(
                betas=betas.expand(len(pose), -1),
                global_orient=pose[:, :3],
                body_pose=pose[:, 3:],
                transl=torch.from_numpy(trans[start : start + CHUNK]),
            )
            chunks.append((out.vertices.numpy() @ AMASS_TO_OURS.T).astype(np.float32))
    return np.concatenate(chunks), body.faces.copy()
