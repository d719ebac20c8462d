"""The GloVe vocabulary pickles of a T2M deps folder are read without running code from them."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from motionlcm.cli import main
from motionlcm.eval.t2m import (
    CHECKPOINT_KEYS,
    T2MEvaluator,
    WordVectorizer,
    load_vocab_pickle,
    official_paths,
)

WORDS = ["sos", "eos", "unk", "a", "person", "walks"]


class RunsCommand:
    """What a hostile vocabulary file holds: unpickling it calls os.system."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def write_glove(folder: Path, words_payload=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    vectors = np.random.default_rng(0).normal(size=(len(WORDS), 300)).astype(np.float32)
    np.save(folder / "our_vab_data.npy", vectors)
    (folder / "our_vab_words.pkl").write_bytes(pickle.dumps(WORDS if words_payload is None else words_payload))
    (folder / "our_vab_idx.pkl").write_bytes(pickle.dumps({w: i for i, w in enumerate(WORDS)}))
    return folder


def test_a_pickle_that_would_run_a_command_is_refused_naming_the_file(tmp_path):
    marker = tmp_path / "MARKER"
    glove = write_glove(tmp_path / "glove", [*WORDS, RunsCommand(f"touch {marker}")])
    with pytest.raises(ValueError) as err:
        WordVectorizer(glove)
    assert str(glove / "our_vab_words.pkl") in str(err.value) and "system" in str(err.value)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_eval_with_a_hostile_deps_folder_exits_2_and_runs_nothing(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    deps = tmp_path / "deps"
    paths = official_paths(deps)
    evaluator = T2MEvaluator(np.zeros(263), np.ones(263), WordVectorizer.from_vectors({"unk": np.zeros(300)}))
    paths["checkpoint"].parent.mkdir(parents=True)
    torch.save({key: getattr(evaluator, key).state_dict() for key in CHECKPOINT_KEYS}, paths["checkpoint"])
    paths["mean"].parent.mkdir(parents=True)
    np.save(paths["mean"], np.zeros(263, np.float32))
    np.save(paths["std"], np.ones(263, np.float32))
    write_glove(paths["glove"])
    (paths["glove"] / "our_vab_idx.pkl").write_bytes(pickle.dumps(RunsCommand(f"touch {marker}")))
    code = main(
        [
            "eval",
            "--model",
            str(tmp_path / "model"),
            "--dataset",
            str(tmp_path / "data"),
            "--evaluator",
            str(deps),
            "-o",
            str(tmp_path / "metrics.json"),
            "-q",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "our_vab_idx.pkl" in err[0] and "system" in err[0], err
    assert not marker.exists() and not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize("protocol", [2, 4, pickle.HIGHEST_PROTOCOL])
def test_words_indices_and_arrays_still_load(tmp_path, protocol):
    index = {w: i for i, w in enumerate(WORDS)}
    data = {
        "words": WORDS,
        "index": index,
        "array": np.arange(6, dtype=np.float32).reshape(2, 3),
        "scalar": np.int64(7),
        "set": {"a", "b"},
        "bytes": b"\x00\xff",
    }
    (tmp_path / "v.pkl").write_bytes(pickle.dumps(data, protocol=protocol))
    loaded = load_vocab_pickle(tmp_path / "v.pkl")
    assert loaded["words"] == WORDS and loaded["index"] == index and loaded["set"] == {"a", "b"}
    assert loaded["bytes"] == b"\x00\xff" and loaded["scalar"] == 7
    np.testing.assert_array_equal(loaded["array"], data["array"])
    vectorizer = WordVectorizer(write_glove(tmp_path / "glove"))
    assert len(vectorizer) == len(WORDS) and vectorizer["walks/VERB"][0].shape == (300,)


def test_an_array_pickled_by_numpy_1_loads(tmp_path):
    data = pickle.dumps({"vectors": np.arange(3.0)}, protocol=2)
    (tmp_path / "v.pkl").write_bytes(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    np.testing.assert_array_equal(load_vocab_pickle(tmp_path / "v.pkl")["vectors"], np.arange(3.0))


def test_a_truncated_pickle_is_one_clear_error(tmp_path):
    (tmp_path / "v.pkl").write_bytes(pickle.dumps(WORDS)[:-5])
    with pytest.raises(ValueError, match=r"v\.pkl: not a readable vocabulary pickle"):
        load_vocab_pickle(tmp_path / "v.pkl")
