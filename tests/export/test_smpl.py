"""SMPL export on a synthetic SMPL-format body (no real SMPL files exist here): the fit on real clips, the
AMASS-style .npz, the OBJ mesh sequence, and the model loader's checks (it never unpickles)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from motionlcm.data.skeleton import NUM_JOINTS, PARENTS, conform_to_skeleton
from motionlcm.export import smpl
from motionlcm.export.bvh_export import REST_DIRECTIONS, rest_offsets, solve_rotations
from motionlcm.export.smpl import (
    SmplParams,
    fit_smpl,
    load_smpl_model,
    save_amass_npz,
    smpl_vertices,
    write_obj_sequence,
)

pytest.importorskip("smplx")

SMPL_PARENTS = PARENTS + (20, 21)  # SMPL's 24 joints: ours, then left_hand and right_hand
# HumanML3D raw_pose_processing.ipynb: AMASS joints @ this matrix (swap y and z), then x negated
HML_SWAP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
CLIPS = ["dataset-2_walk-turn-right_normal_004", "Mdataset-2_wave-left-hand_elderly_001", "012314"]


# ----------------------------------------------------------------------------- a synthetic SMPL body

CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
BOX_FACES = np.array(
    [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
     [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
)  # fmt: skip


def rest_skeleton(offsets: np.ndarray) -> np.ndarray:
    """(24, 3) rest joints in a T-pose from our 22 rest offsets, hands 8 cm past the wrists, pelvis 0.9 m up."""
    full = np.zeros((24, 3))
    full[:NUM_JOINTS] = offsets
    full[0] = (0.0, 0.9, 0.0)
    full[22], full[23] = 0.08 * REST_DIRECTIONS[20], 0.08 * REST_DIRECTIONS[21]
    rest = np.zeros((24, 3))
    for k in range(24):
        rest[k] = full[k] + (rest[SMPL_PARENTS[k]] if k else 0.0)
    return rest


def smpl_arrays(rest: np.ndarray, size: float = 0.02) -> dict[str, np.ndarray]:
    """An SMPL-format body: a 4 cm box around each joint (its J_regressor row averages the box's 8 corners) and
    one at each bone's middle (376 vertices), one-hot skinning weights, zero blend shapes, SMPL's kintree."""
    centres = np.concatenate([rest, (rest[1:] + rest[list(SMPL_PARENTS[1:])]) / 2])
    owners = np.concatenate([np.arange(24), SMPL_PARENTS[1:]])
    vertices = (centres[:, None] + size * CORNERS).reshape(-1, 3)
    V = len(vertices)
    regressor = np.zeros((24, V))
    for k in range(24):
        regressor[k, 8 * k : 8 * k + 8] = 1 / 8
    weights = np.zeros((V, 24))
    weights[np.arange(V), np.repeat(owners, 8)] = 1.0
    return {
        "v_template": vertices,
        "shapedirs": np.zeros((V, 3, 10)),
        "posedirs": np.zeros((V, 3, 207)),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": np.array([[2**32 - 1, *SMPL_PARENTS[1:]], range(24)], dtype=np.uint32),  # as SMPL's
        "f": (np.arange(len(centres))[:, None, None] * 8 + BOX_FACES).reshape(-1, 3).astype(np.uint32),
    }


def write_model(folder: Path, arrays: dict, name: str = "SMPL_NEUTRAL.npz") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / name, **arrays)
    return folder


def scaled_offsets(offsets: np.ndarray, seed: int = 0) -> np.ndarray:
    """Every bone 5-10 % longer or shorter (random sign), directions kept."""
    rng = np.random.default_rng(seed)
    return offsets * (1 + rng.choice([-1.0, 1.0], NUM_JOINTS) * rng.uniform(0.05, 0.10, NUM_JOINTS))[:, None]


# ----------------------------------------------------------------------------- motions


@pytest.fixture(params=CLIPS)
def clip(request, bn_dataset_dir: Path) -> np.ndarray:
    """Real clips, (T, 22, 3) metres: two Bandai-Namco imports and a HumanML3D sample (a tennis serve)."""
    name = request.param
    root = request.getfixturevalue("humanml3d_sample_dir") if name[0].isdigit() else bn_dataset_dir
    return np.load(root / "new_joints" / f"{name}.npy").astype(np.float64)


@pytest.fixture
def walk(bn_dataset_dir: Path) -> np.ndarray:
    return np.load(bn_dataset_dir / "new_joints" / f"{CLIPS[0]}.npy").astype(np.float64)


def forward(body, poses: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """smplx's full forward pass (skinning included), joints 0..21 in AMASS's frame."""
    with torch.no_grad():
        out = body.model(
            betas=torch.zeros(len(poses), 10, dtype=torch.float64),
            global_orient=torch.from_numpy(poses[:, :3]),
            body_pose=torch.from_numpy(poses[:, 3:]),
            transl=torch.from_numpy(trans),
        )
    return out.joints.numpy()[:, :NUM_JOINTS]


def humanml3d_from_amass(joints: np.ndarray) -> np.ndarray:
    """What HumanML3D's raw_pose_processing does to AMASS joints: swap y and z, then negate x."""
    out = joints @ HML_SWAP
    out[..., 0] *= -1
    return out


def copied_rotations(joints: np.ndarray, ours: np.ndarray, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The baseline the fit must beat: rotations solved on our own skeleton (rest offsets `ours`, as the BVH
    export does), copied onto the body (rest joints `rest`) as they are. Returns AMASS poses (T, 72), trans."""
    amass_from_ours = np.linalg.inv(humanml3d_from_amass(np.eye(3)).T)
    world, _ = solve_rotations(joints, ours)
    local = np.broadcast_to(np.eye(3), (len(joints), 24, 3, 3)).copy()
    local[:, 0] = amass_from_ours @ world[:, 0]
    for k in range(1, NUM_JOINTS):
        local[:, k] = world[:, PARENTS[k]].swapaxes(1, 2) @ world[:, k]
    poses = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_rotvec().reshape(len(joints), 72)
    return poses, joints[:, 0] @ amass_from_ours.T - rest[0]


# ----------------------------------------------------------------------------- (a) the fit, same bones


def test_same_bones_reproduce_the_joints_through_smplx(clip, tmp_path):
    rest = rest_skeleton(rest_offsets(clip))  # our bone lengths and hip/collar layout
    body = load_smpl_model(write_model(tmp_path / "model", smpl_arrays(rest)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: every joint within 2 cm
        params = fit_smpl(clip, body)
    path = save_amass_npz(tmp_path / "motion.npz", params)

    with np.load(path, allow_pickle=False) as npz:
        poses, trans = npz["poses"], npz["trans"]
    amass = forward(body, poses, trans)
    back = humanml3d_from_amass(amass)  # HumanML3D's own mapping gives back our joints
    assert np.linalg.norm(back - clip, axis=-1).max() < 0.01
    assert params.error.max() < 0.01 and np.abs(params.joints - back).max() < 1e-6
    # AMASS is z up: the standing body's pelvis up axis (model +y) points along +z in the file
    up = Rotation.from_rotvec(poses[:, :3]).apply([0.0, 1.0, 0.0])
    assert np.median(up[:, 2]) > 0.9
    # trans in AMASS's frame: SMPL turns about the rest pelvis J0, so pelvis = J0 + trans
    assert np.allclose(amass[:, 0], rest[0] + trans, atol=1e-6)


def test_long_motions_are_fitted_in_blocks_of_frames(walk, tmp_path, monkeypatch):
    body = load_smpl_model(
        write_model(tmp_path / "model", smpl_arrays(rest_skeleton(scaled_offsets(rest_offsets(walk)))))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the body's bones cannot reach everywhere
        whole = fit_smpl(walk, body)
        monkeypatch.setattr(smpl, "FIT_FRAMES", 50)  # frames are independent problems: blocks change nothing
        blocks = fit_smpl(walk, body)
    assert blocks.poses.shape == (len(walk), 72) and blocks.error.shape == (len(walk), NUM_JOINTS)
    assert np.abs(blocks.error - whole.error).max() < 1e-4


# ----------------------------------------------------------------------------- (b) the fit, other bones


def test_other_bones_fit_beats_copied_rotations(clip, tmp_path):
    ours = rest_offsets(clip)
    offsets = scaled_offsets(ours)
    rest = rest_skeleton(offsets)
    body = load_smpl_model(write_model(tmp_path / "model", smpl_arrays(rest)))

    # where the bones can reach (the motion on the body's bone lengths): within 2 cm everywhere
    reachable = conform_to_skeleton(clip, np.linalg.norm(offsets, axis=-1))
    params = fit_smpl(reachable, body)
    copied = np.linalg.norm(
        humanml3d_from_amass(forward(body, *copied_rotations(reachable, ours, rest))) - reachable, axis=-1
    )
    assert params.error.max() < 0.02 < copied.max()

    # the motion itself: a least-squares compromise, still better than copying (measured: mean 1.2-1.7 cm)
    with pytest.warns(UserWarning, match="SMPL fit: .* cm off"):
        params = fit_smpl(clip, body)
    fitted = humanml3d_from_amass(forward(body, params.poses, params.trans))
    error = np.linalg.norm(fitted - clip, axis=-1)
    assert np.allclose(error, params.error, atol=1e-6)
    copied = np.linalg.norm(humanml3d_from_amass(forward(body, *copied_rotations(clip, ours, rest))) - clip, axis=-1)
    assert error.mean() < 0.02 and error.mean() < 0.8 * copied.mean() and error.max() < copied.max()
    offsets_body = rest[:NUM_JOINTS] - rest[list(PARENTS)]
    offsets_body[0] = 0.0
    greedy = np.linalg.norm(solve_rotations(clip, offsets_body)[1] - clip, axis=-1)  # the fit's starting point
    assert (error**2).mean() < (greedy**2).mean()


# ----------------------------------------------------------------------------- (c) the .npz


def test_npz_has_exactly_the_amass_keys_shapes_and_dtypes(walk, tmp_path):
    body = load_smpl_model(write_model(tmp_path / "model", smpl_arrays(rest_skeleton(rest_offsets(walk)))))
    params = fit_smpl(walk[:30], body, fps=30)
    out = tmp_path / "out"
    out.mkdir()
    assert save_amass_npz(out / "walk.npz", params) == out / "walk.npz"
    assert [p.name for p in out.iterdir()] == ["walk.npz"]  # written atomically: no temporary file left

    with np.load(out / "walk.npz", allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    assert sorted(data) == ["betas", "gender", "mocap_framerate", "poses", "trans"]
    assert data["poses"].shape == (30, 72) and data["poses"].dtype == np.float64
    assert data["trans"].shape == (30, 3) and data["trans"].dtype == np.float64
    assert data["betas"].shape == (10,) and data["betas"].dtype == np.float64 and not data["betas"].any()
    assert data["gender"].shape == () and data["gender"].dtype.kind == "U" and data["gender"] == "neutral"
    assert data["mocap_framerate"].shape == () and data["mocap_framerate"].dtype == np.float64
    assert float(data["mocap_framerate"]) == 30.0
    assert not data["poses"][:, 66:].any()  # the hands: not in our skeleton
    assert np.array_equal(data["poses"], params.poses) and np.array_equal(data["trans"], params.trans)

    with pytest.raises(ValueError, match="params: poses"):
        save_amass_npz(out / "bad.npz", SmplParams(params.poses[:, :66], params.trans, params.betas, 20, None, None))
    assert not (out / "bad.npz").exists()


# ----------------------------------------------------------------------------- (d) the mesh


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    lines = path.read_text().splitlines()
    verts = np.array([[float(x) for x in line.split()[1:]] for line in lines if line.startswith("v ")])
    faces = np.array([[int(x) for x in line.split()[1:]] for line in lines if line.startswith("f ")])
    return verts, faces - 1


def test_obj_sequence_parses_back_to_the_vertices(walk, tmp_path):
    rest = rest_skeleton(rest_offsets(walk))
    arrays = smpl_arrays(rest)
    body = load_smpl_model(write_model(tmp_path / "model", arrays))
    params = fit_smpl(walk[:6], body)
    vertices, faces = smpl_vertices(params, body)
    assert vertices.shape == (6, len(arrays["v_template"]), 3) and vertices.dtype == np.float32
    assert np.array_equal(faces, arrays["f"].astype(np.int64))
    # in our frame (y up): each joint's box is centred on the fitted joint
    centres = vertices[:, : 24 * 8].reshape(6, 24, 8, 3).mean(axis=2)[:, :NUM_JOINTS]
    assert np.abs(centres - walk[:6]).max() < 1e-4

    folder = tmp_path / "mesh"
    paths = write_obj_sequence(folder, vertices, faces)
    assert [p.name for p in paths] == [f"frame_{t:05d}.obj" for t in range(6)]
    assert sorted(p.name for p in folder.iterdir()) == [p.name for p in paths]  # nothing else, nothing hidden
    for t, path in enumerate(paths):
        verts, tris = read_obj(path)
        assert np.abs(verts - vertices[t]).max() < 1e-6 and np.array_equal(tris, faces)

    with pytest.raises(ValueError, match="mesh: exists; pass --force"):
        write_obj_sequence(folder, vertices, faces)
    write_obj_sequence(folder, vertices[:2], faces, force=True)  # created fresh: no stale frames
    assert sorted(p.name for p in folder.iterdir()) == ["frame_00000.obj", "frame_00001.obj"]
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="notes.txt"):
        write_obj_sequence(folder, vertices, faces, force=True)
    assert (folder / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="faces: vertex indices"):
        write_obj_sequence(tmp_path / "other", vertices, faces + 1000)
    assert not (tmp_path / "other").exists()


# ----------------------------------------------------------------------------- (e) bad input


@pytest.fixture
def arrays(walk) -> dict[str, np.ndarray]:
    return smpl_arrays(rest_skeleton(rest_offsets(walk)))


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


def test_model_folder_is_required(tmp_path):
    for missing in (None, ""):
        with pytest.raises(ValueError, match=r"needs your SMPL model folder \(--smpl-model DIR") as error:
            load_smpl_model(missing)
        assert "docs/smpl.md" in one_line(error)
    with pytest.raises(ValueError, match="no such SMPL model folder") as error:
        load_smpl_model(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in one_line(error)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="SMPL_NEUTRAL.npz: missing") as error:
        load_smpl_model(tmp_path / "empty")
    assert str(tmp_path / "empty" / "SMPL_NEUTRAL.npz") in one_line(error)


def poisoned_pickle(path: Path, marker: Path) -> None:
    """A pickle that creates `marker` when unpickled."""

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path.write_bytes(pickle.dumps(Payload()))


def test_a_pkl_is_refused_with_how_to_convert_it(tmp_path):
    folder, marker = tmp_path / "smpl", tmp_path / "unpickled"
    folder.mkdir()
    poisoned_pickle(folder / "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl", marker)
    for source in (folder, folder / "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl"):
        with pytest.raises(
            ValueError, match="v1.1.0.pkl: a pickled SMPL model.*convert it yourself to SMPL_NEUTRAL.npz"
        ) as e:
            load_smpl_model(source)
        assert "never unpickles" in one_line(e) and "docs/smpl.md" in one_line(e)
    poisoned_pickle(folder / "SMPL_NEUTRAL.npz", marker)  # a pickle under the expected name
    with pytest.raises(ValueError, match="SMPL_NEUTRAL.npz: not a readable .npz archive") as error:
        load_smpl_model(folder)
    one_line(error)
    (folder / "SMPL_NEUTRAL.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="SMPL_NEUTRAL.npz: not a readable .npz archive"):
        load_smpl_model(folder)
    assert not marker.exists()


FIELDS = ["v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f"]


@pytest.mark.parametrize("field", FIELDS)
def test_a_missing_field_is_named(arrays, tmp_path, field):
    del arrays[field]
    with pytest.raises(ValueError, match=f"SMPL_NEUTRAL.npz: field {field} is missing") as error:
        load_smpl_model(write_model(tmp_path, arrays))
    assert str(tmp_path / "SMPL_NEUTRAL.npz") in one_line(error)


def _bad_parents(a):
    a["kintree_table"] = a["kintree_table"].copy()
    a["kintree_table"][0, 5] = 1
    return "kintree_table", "not SMPL's 24-joint tree"


def _nan(a):
    a["v_template"] = a["v_template"].copy()
    a["v_template"][3, 1] = np.nan
    return "v_template", "NaN"


def _collapsed(a):
    a["J_regressor"] = a["J_regressor"].copy()
    a["J_regressor"][4] = a["J_regressor"][1]  # left knee on the left hip
    return "J_regressor", "no bone"


BAD = {
    "v_template 2-d points": lambda a: (a.update(v_template=a["v_template"][:, :2]), ("v_template", r"\(V, 3\)"))[1],
    "shapedirs without S": lambda a: (a.update(shapedirs=a["shapedirs"][..., 0]), ("shapedirs", r"\(376, 3, S\)"))[1],
    "posedirs 206": lambda a: (a.update(posedirs=a["posedirs"][..., :206]), ("posedirs", r"\(376, 3, 207\)"))[1],
    "SMPL-H regressor": lambda a: (a.update(J_regressor=np.zeros((52, 376))), ("J_regressor", "SMPL-H"))[1],
    "weights 23": lambda a: (a.update(weights=a["weights"][:, :23]), ("weights", r"expected \(376, 24\)"))[1],
    "kintree 1 row": lambda a: (a.update(kintree_table=a["kintree_table"][:1]), ("kintree_table", r"\(2, 24\)"))[1],
    "kintree parents": _bad_parents,
    "faces out of range": lambda a: (a.update(f=a["f"] + 376), ("f", "outside 0..375"))[1],
    "faces as floats": lambda a: (a.update(f=a["f"].astype(np.float64)), ("f", "integers"))[1],
    "faces 4 columns": lambda a: (a.update(f=np.zeros((5, 4), np.int64)), ("f", r"\(F, 3\)"))[1],
    "text template": lambda a: (a.update(v_template=np.array(["a", "b"])), ("v_template", "real numbers"))[1],
    "NaN": _nan,
    "collapsed joint": _collapsed,
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_field_is_named(arrays, tmp_path, case):
    field, message = BAD[case](arrays)
    with pytest.raises(ValueError, match=f"SMPL_NEUTRAL.npz: field {field} .*{message}") as error:
        load_smpl_model(write_model(tmp_path, arrays))
    assert str(tmp_path / "SMPL_NEUTRAL.npz") in one_line(error)


def test_posedirs_layouts_are_the_same_body(arrays, tmp_path):
    rng = np.random.default_rng(1)
    posedirs = rng.normal(size=(376, 3, 207)) * 1e-3
    bodies = []
    for name, layout in [("a", posedirs), ("b", posedirs.reshape(-1, 207)), ("c", posedirs.reshape(-1, 207).T)]:
        bodies.append(load_smpl_model(write_model(tmp_path / name, {**arrays, "posedirs": layout})))
    for body in bodies:
        assert body.posedirs.shape == (376, 3, 207) and np.array_equal(body.posedirs, posedirs)
        assert torch.equal(body.model.posedirs, bodies[0].model.posedirs)


def test_without_smplx_the_message_says_how_to_install(arrays, tmp_path, monkeypatch):
    folder = write_model(tmp_path, arrays)
    monkeypatch.setitem(sys.modules, "smplx", None)
    with pytest.raises(ValueError, match=r"needs the smplx package: pip install 'motionlcm\[smpl\]'"):
        load_smpl_model(folder)


BAD_JOINTS = {
    "2-d": (np.zeros((10, 66)), r"joints: expected shape \(T, 22, 3\)"),
    "no frames": (np.zeros((0, 22, 3)), r"joints: expected shape"),
    "24 joints": (np.zeros((10, 24, 3)), r"joints: expected shape"),
    "text": ("walk", r"joints: expected"),
}


@pytest.mark.parametrize("case", BAD_JOINTS)
def test_bad_joints_are_refused(arrays, tmp_path, case):
    body = load_smpl_model(write_model(tmp_path, arrays))
    joints, message = BAD_JOINTS[case]
    with pytest.raises(ValueError, match=message) as error:
        fit_smpl(joints, body)
    one_line(error)


def test_bad_joints_values_and_arguments_are_refused(walk, arrays, tmp_path):
    body = load_smpl_model(write_model(tmp_path, arrays))
    nan = walk[:5].copy()
    nan[3, 7, 1] = np.nan
    with pytest.raises(ValueError, match="joints: NaN or inf at frame 3"):
        fit_smpl(nan, body)
    flat = walk[:5].copy()
    flat[:, 4] = flat[:, 1]  # the left knee on the left hip
    with pytest.raises(ValueError, match="joints have a zero-length bone left_hip -> left_knee"):
        fit_smpl(flat, body)
    with pytest.raises(ValueError, match="body: expected an SmplBody"):
        fit_smpl(walk[:5], "SMPL_NEUTRAL.npz")
    with pytest.raises(ValueError, match="fps must be"):
        fit_smpl(walk[:5], body, fps=0)


# ----------------------------------------------------------------------------- (f) never unpickles


def test_the_documented_conversion_makes_a_loadable_npz(arrays, tmp_path):
    """docs/smpl.md's script, run on a .pkl this test wrote (SMPL's J_regressor is a scipy sparse matrix)."""
    import scipy.sparse

    docs = (Path(__file__).parents[2] / "docs" / "smpl.md").read_text()
    script = next(block for block in docs.split("```python")[1:] if "pickle.load" in block).split("```")[0]
    (tmp_path / "convert_smpl.py").write_text(script)
    model = {**arrays, "J_regressor": scipy.sparse.csc_matrix(arrays["J_regressor"]), "bs_style": "lbs"}
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    (tmp_path / "smpl").mkdir()
    run = subprocess.run(
        [sys.executable, "convert_smpl.py", "model.pkl", "smpl/SMPL_NEUTRAL.npz"], cwd=tmp_path, capture_output=True
    )
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    body = load_smpl_model(tmp_path / "smpl")
    assert np.array_equal(body.J_regressor, arrays["J_regressor"]) and np.array_equal(body.faces, arrays["f"])


def test_an_object_array_is_refused_and_nothing_is_unpickled(arrays, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the SMPL loader unpickled something")

    good = write_model(tmp_path / "good", arrays)
    # a common conversion mistake: SMPL's J_regressor is a scipy sparse matrix, which np.savez pickles
    bad = write_model(tmp_path / "bad", {**arrays, "J_regressor": np.array(arrays["J_regressor"].tolist(), object)})
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    assert load_smpl_model(good).v_template.shape == (376, 3)
    with pytest.raises(ValueError, match="field J_regressor is an object array .*never unpickles") as error:
        load_smpl_model(bad)
    assert str(bad / "SMPL_NEUTRAL.npz") in one_line(error)


# ----------------------------------------------------------------------------- the commands


def test_the_commands_write_smpl_parameters_meshes_and_mesh_renders(student_dir, bn_dataset_dir, tmp_path):
    """generate --format smpl --smpl-model: the .npz and one .obj per frame; export --to smpl; render
    --smpl-model draws the body. Without the model folder, one line and nothing written."""
    import subprocess
    import sys

    src = sorted((bn_dataset_dir / "new_joints").glob("*.npy"))[0]
    model = write_model(tmp_path / "smpl", smpl_arrays(rest_skeleton(rest_offsets(np.load(src)))))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "motionlcm.cli", *args], capture_output=True, text=True,
                              timeout=600)  # fmt: skip

    out = tmp_path / "out"
    run = cli("generate", "a person walks.", "--model", str(student_dir), "--seconds", "1", "--format",
              "npy,smpl,json", "--smpl-model", str(model), "-o", str(out), "-q")  # fmt: skip
    assert run.returncode == 0, run.stderr
    joints = np.load(next(p for p in out.glob("*.npy") if not p.stem.endswith("_features")))
    with np.load(next(out.glob("*_smpl.npz")), allow_pickle=False) as npz:
        assert npz["poses"].shape == (len(joints), 72) and str(npz["gender"]) == "neutral"
    meshes = sorted(out.glob("*_mesh_*.obj"))
    assert len(meshes) == len(joints)
    vertices, _ = read_obj(meshes[0])
    # the pelvis box sits on the pelvis (within what a tiny test model's odd bone lengths let the fit reach)
    assert np.abs(vertices[:8].mean(axis=0) - joints[0, 0]).max() < 0.05

    run = cli("export", str(src), "--to", "smpl", "--smpl-model", str(model), "-o", str(tmp_path / "clip.npz"))
    assert run.returncode == 0, run.stderr and (tmp_path / "clip.npz").exists()
    run = cli("render", str(src), "--smpl-model", str(model), "-o", str(tmp_path / "body.png"))
    assert run.returncode == 0, run.stderr and (tmp_path / "body.png").stat().st_size > 1000

    bad = tmp_path / "bad"
    run = cli("generate", "a person walks.", "--model", str(student_dir), "--seconds", "1", "--format", "smpl",
              "-o", str(bad), "-q")  # fmt: skip
    assert run.returncode == 2 and "--smpl-model" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not bad.exists() or not any(bad.iterdir())
