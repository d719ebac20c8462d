"""EvaluatorSystem: contrastive training of the text-motion evaluator (`motionlcm.eval.contrastive`).

Validation reports the InfoNCE loss and the retrieval metrics of the evaluation protocol on the whole
validation split: R-precision top-1/3 in random groups of 32 (real text vs real motion) and MM-Dist.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from motionlcm.eval.contrastive import (
    ContrastiveEvaluator,
    caption_tokens,
    contrastive_loss,
    contrastive_loss_with_negatives,
    frozen_normalized_features,
    same_caption_matrix,
)
from motionlcm.eval.metrics import r_precision_and_matching
from motionlcm.train.optim import build_optimizer
from motionlcm.train.rng import RNGStateMixin

GROUP_SIZE = 32  # R-precision group size (official `mld/models/metrics/tm2t.py`, `R_size`)


class EvaluatorSystem(RNGStateMixin, pl.LightningModule):
    """Lightning wiring for `ContrastiveEvaluator`.

    Args:
        evaluator: the model (its vocabulary built from the training captions).
        lr, warmup_steps, total_steps, weight_decay: AdamW + warm-up + cosine.
        word_dropout: probability of replacing a caption word by <unk> during training.
        filter_same_caption: remove in-batch negatives whose caption equals the positive's.
        frozen_negatives: also rank each caption's motion above frozen versions of the batch's motions
            (`frozen_normalized_features`), so that the evaluator cannot match captions from a static pose
            (issue "The shipped model must move"; off by default, as in the T2M evaluators).
    """

    def __init__(
        self,
        evaluator: ContrastiveEvaluator,
        lr: float = 1e-4,
        warmup_steps: int = 200,
        total_steps: int = 10_000,
        weight_decay: float = 1e-4,
        word_dropout: float = 0.1,
        filter_same_caption: bool = True,
        frozen_negatives: bool = False,
    ) -> None:
        super().__init__()
        self.evaluator = evaluator
        self.lr, self.warmup_steps, self.total_steps, self.weight_decay = lr, warmup_steps, total_steps, weight_decay
        self.word_dropout, self.filter_same_caption = word_dropout, filter_same_caption
        self.frozen_negatives = frozen_negatives
        self._val_text: list[Tensor] = []
        self._val_motion: list[Tensor] = []

    def embed(self, batch: dict, word_dropout: float = 0.0) -> tuple[Tensor, Tensor]:
        pairs = [caption_tokens(t, k) for t, k in zip(batch["texts"], batch["tokens"], strict=True)]
        text = self.evaluator.encode_text_tokens(pairs, word_dropout)
        motion = self.evaluator.encode_normalized_motion(batch["features"], batch["lengths"])
        return text, motion

    def loss(self, batch: dict, text: Tensor, motion: Tensor) -> Tensor:
        same = same_caption_matrix(batch["texts"]).to(text.device) if self.filter_same_caption else None
        temperature = self.evaluator.config.temperature
        if not self.frozen_negatives:
            return contrastive_loss(text, motion, temperature, same)
        ev = self.evaluator
        frozen = ev.encode_normalized_motion(
            frozen_normalized_features(batch["features"], ev.mean, ev.std), batch["lengths"]
        )
        return contrastive_loss_with_negatives(text, motion, frozen, temperature, same)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        text, motion = self.embed(batch, self.word_dropout)
        loss = self.loss(batch, text, motion)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(text))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        text, motion = self.embed(batch)
        self.log("val/loss", self.loss(batch, text, motion), sync_dist=True, batch_size=len(text))
        self._val_text.append(text.float().cpu())
        self._val_motion.append(motion.float().cpu())

    def on_validation_epoch_end(self) -> None:
        text = torch.cat(self._val_text).numpy() if self._val_text else np.zeros((0, 1))
        motion = torch.cat(self._val_motion).numpy() if self._val_motion else np.zeros((0, 1))
        self._val_text.clear()
        self._val_motion.clear()
        if len(text) < GROUP_SIZE:
            return
        result = r_precision_and_matching(text, motion, rng=np.random.default_rng(0), group_size=GROUP_SIZE)
        for name in ("top1", "top3", "matching_score"):
            self.log(f"val/{name}", float(result[name]), batch_size=len(text))

    def configure_optimizers(self) -> dict:
        return build_optimizer(
            self.evaluator.parameters(), self.lr, self.warmup_steps, self.total_steps, self.weight_decay
        )
