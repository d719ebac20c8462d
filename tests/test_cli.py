"""The `motionlcm` command: help texts, the installed entry point, and one-line errors."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

import pytest

from motionlcm.cli import build_parser, main


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the CLI, found by walking argparse's sub-parsers (new commands are included)."""
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, child in action.choices.items():  # an alias (train mld) maps to its role's parser
                if id(child) not in seen:
                    seen.add(id(child))
                    paths += _command_paths(child, prefix + (name,))
    return paths


COMMANDS = _command_paths(build_parser())


def test_the_walk_finds_every_command():
    assert {
        ("generate",),
        ("render",),
        ("export",),
        ("eval",),
        ("bench",),
        ("data", "import-bvh"),
        ("train", "student"),
        ("convert", "official"),
    } <= set(COMMANDS)


def test_the_papers_names_train_the_same_roles():
    for old, role in (("mld", "teacher"), ("lcm", "student")):
        assert build_parser().parse_args(["train", old, "--config", "c.yaml"]).kind == role
        assert build_parser().parse_args(["train", role, "--config", "c.yaml"]).kind == role


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda p: " ".join(p) or "motionlcm")
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(list(argv) + ["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: motionlcm" + "".join(" " + a for a in argv))


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda p: " ".join(p) or "motionlcm")
def test_every_option_is_explained(argv):
    parser = build_parser()
    for name in argv:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    silent = [a.dest for a in parser._actions if a.help in (None, "") and not isinstance(a, argparse._SubParsersAction)]
    assert not silent, f"options without help text in {' '.join(argv) or 'motionlcm'}: {silent}"


def test_console_script_is_installed():
    exe = shutil.which("motionlcm") or pytest.fail("the motionlcm console script is not on PATH")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("motionlcm ")


def test_missing_rig_file_is_one_line_error(tmp_path, bn_fixture_dir, capsys):
    code = main(
        ["data", "import-bvh", str(bn_fixture_dir), "--rig", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nope.yaml" in err[0]
    assert not (tmp_path / "o").exists()


def test_check_exits_nonzero_on_a_broken_dataset(tmp_path, capsys):
    (tmp_path / "ds").mkdir()
    assert main(["data", "check", str(tmp_path / "ds")]) == 1
    assert "Mean.npy" in capsys.readouterr().out


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "motionlcm.cli", "--help"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("usage: motionlcm")
    for command in ("generate", "render", "export", "data", "train", "eval", "bench", "convert"):
        assert command in out.stdout


def test_convert_official_command(tmp_path, humanml3d_sample_dir, capsys):
    import torch

    from motionlcm.models.folder import load_model_folder
    from tests.models.official_layout import fake_official_state_dict

    ckpt = tmp_path / "mld_humanml.ckpt"
    torch.save({"state_dict": fake_official_state_dict("v2", "mld")}, ckpt)
    out = tmp_path / "model"
    args = [
        "convert",
        "official",
        str(ckpt),
        "--version",
        "v2",
        "-o",
        str(out),
        "--mean-std",
        str(humanml3d_sample_dir),
    ]
    assert main(args) == 0
    folder = load_model_folder(out)
    assert folder.kind == "teacher" and folder.mean.shape == (263,)
    assert main(args) == 2  # exists: refuses without --force
    assert main(["convert", "official", str(ckpt), "--version", "v1", "-o", str(tmp_path / "m1")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "v1" in err[-1] and "mld_humanml.ckpt" in err[-1]
