"""Evaluation: metrics as pure functions (`metrics`), evaluators (`T2MEvaluator` for HumanML3D,
`ContrastiveEvaluator` for any dataset), the paper protocol (`protocol`) and AITS (`timing`)."""

_LAZY = {
    "T2MEvaluator": "motionlcm.eval.t2m",
    "ContrastiveEvaluator": "motionlcm.eval.contrastive",
    "load_evaluator": "motionlcm.eval.protocol",
    "evaluate": "motionlcm.eval.protocol",
    "EvalSettings": "motionlcm.eval.protocol",
    "measure_aits": "motionlcm.eval.timing",
}


def __getattr__(name: str):
    """`from motionlcm.eval import T2MEvaluator` etc. without importing torch up front."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'motionlcm.eval' has no attribute {name!r}")
