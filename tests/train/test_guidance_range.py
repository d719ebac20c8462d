"""A student distilled on its own guidance range: the range and the scales to sample it at travel with the
model folder, to the pipeline's defaults and to the controllers trained on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from motionlcm.config import load_config
from motionlcm.pipeline import MotionLCM
from motionlcm.train.datamodule import HumanML3DDataModule
from motionlcm.train.run import _control_system, train

REPO = Path(__file__).resolve().parents[2]


def _student_config(teacher_dir, root, out, *extra):
    overrides = [f"data.root={root}", "trainer.max_steps=2", "checkpoint.every_n_steps=2",
                 f"output_dir={out}", f"teacher_dir={teacher_dir}", *extra]  # fmt: skip
    return load_config(REPO / "configs" / "tiny" / "student.yaml", overrides)


@pytest.fixture(scope="module")
def paced_student(teacher_dir, bn_dataset_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("paced") / "run"
    config = _student_config(teacher_dir, bn_dataset_dir, out, "system.w_min=1.5", "system.w_max=4.5")
    config["sampling_guidance"] = {1: 3.5, 4: 4.0}
    return train("student", config, progress=False)


def test_the_folder_records_its_range_and_scales_and_the_pipeline_samples_at_them(paced_student):
    sampling = json.loads((Path(paced_student) / "model.json").read_text())["meta"]["sampling"]
    assert sampling["w_range"] == [1.5, 4.5]
    assert sampling["guidance"] == {"1": 3.5, "4": 4.0}
    pipe = MotionLCM.from_pretrained(paced_student, device="cpu")
    assert pipe.resolve_sampling(1, None) == (1, 3.5)
    assert pipe.resolve_sampling(4, None) == (4, 4.0)
    assert pipe.resolve_sampling(2, None)[1] == 5.5  # no entry: the V2 map's 12.5, inside the range (w + 1)


def test_a_malformed_range_in_a_folder_is_one_line(paced_student, tmp_path):
    import shutil

    folder = Path(shutil.copytree(paced_student, tmp_path / "model"))
    data = json.loads((folder / "model.json").read_text())
    data["meta"]["sampling"]["w_range"] = [4.5, "x"]
    (folder / "model.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"meta.sampling.w_range: expected \[w_min, w_max\]"):
        MotionLCM.from_pretrained(folder, device="cpu")


def test_a_controller_trains_on_the_students_range(paced_student, student_dir, bn_dataset_dir, tmp_path):
    dm = HumanML3DDataModule(bn_dataset_dir, batch_size=2, min_length=20, seed=0)
    dm.setup("fit")
    config = load_config(REPO / "configs" / "tiny" / "control.yaml", [f"model_dir={paced_student}"])
    assert _control_system(config, dm).w_range == (1.5, 4.5)
    official = load_config(REPO / "configs" / "tiny" / "control.yaml", [f"model_dir={student_dir}"])
    assert _control_system(official, dm).w_range == (5.0, 15.0)  # a folder without a range: the official one


@pytest.mark.parametrize("table", [{0: 3.0}, {1: -2.0}, {1: "fast"}, [3.0]])
def test_a_bad_sampling_guidance_fails_before_training_and_writes_nothing(table, teacher_dir, bn_dataset_dir, tmp_path):
    config = _student_config(teacher_dir, bn_dataset_dir, tmp_path / "run")
    config["sampling_guidance"] = table
    with pytest.raises(ValueError, match="config: sampling_guidance"):
        train("student", config, progress=False)
    assert not (tmp_path / "run").exists()
