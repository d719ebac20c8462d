"""User text files that are not UTF-8 (rig, caption rules, split lists, configs) give one line naming them."""

from __future__ import annotations

from pathlib import Path

import pytest

from motionlcm.config import load_config
from motionlcm.data.captions import CaptionRules
from motionlcm.data.humanml3d import read_split
from motionlcm.data.rig import Rig
from motionlcm.io.text import read_text_file

REPO = Path(__file__).resolve().parents[2]
LATIN1 = "name: caf\u00e9\n".encode("latin-1")  # byte 0xe9 alone is not UTF-8


def test_a_byte_order_mark_is_dropped_and_utf8_is_read(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffwalk caf\u00e9\n".encode())
    assert read_text_file(path) == "walk caf\u00e9\n"


@pytest.mark.parametrize(
    ("reader", "what"),
    [
        (Rig.load, "rig file"),
        (CaptionRules.load, "caption rules file"),
        (read_split, "split file"),
        (load_config, "config"),
    ],
)
def test_non_utf8_files_name_the_path_and_the_byte(tmp_path, reader, what):
    path = tmp_path / "file.yaml"
    path.write_bytes(LATIN1)
    with pytest.raises(ValueError, match=rf"^{path}: {what} is not UTF-8 text \(byte 0xe9 at offset 9\)$"):
        reader(path)


def test_the_shipped_rig_and_rules_still_load():
    Rig.load(REPO / "datasets" / "bandai-namco" / "rig.yaml")
    CaptionRules.load(REPO / "datasets" / "bandai-namco" / "captions.yaml")
