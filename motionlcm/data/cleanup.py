"""The joints users get from generated features: one home for the clean-up that `MotionLCM`, the
evaluation's kinematic columns and the feature exporters share.

Decoded `ric` positions of a generated motion stretch bones and let planted feet slide (docs/benchmarks.md,
"Rigid bones"); `clean_joints` places them on the uniform skeleton (`conform_to_skeleton`) and holds each
foot still while the motion's own contact labels say it is planted (`lock_feet`). On real clips both steps
leave the joints as they are, up to the millimetres by which real planted feet move.
"""

from __future__ import annotations

import numpy as np
import torch

from motionlcm.data.continuation import BLEND_FRAMES, splice_prefix
from motionlcm.data.features import foot_contacts
from motionlcm.data.foot_contact import lock_feet
from motionlcm.data.motion_warp import warp_to_hints
from motionlcm.data.skeleton import TARGET_BONE_LENGTHS, bone_lengths, conform_to_skeleton


def clean_joints(
    joints: np.ndarray, contacts: np.ndarray | None = None, conform: bool = True, foot_lock: bool = True
) -> np.ndarray:
    """(T, 22, 3) joints of one clip -> the same, conformed and foot-locked (each step optional; foot locking
    needs the (T, 4) contact labels, feature columns 259:263)."""
    out = np.asarray(joints, dtype=np.float64)
    if conform:
        out = conform_to_skeleton(out)
    if foot_lock and contacts is not None:
        out = lock_feet(out, contacts)
    return out


def clean_continuation(
    prefix: np.ndarray,
    generated: np.ndarray,
    contacts: np.ndarray | None = None,
    blend_frames: int = BLEND_FRAMES,
    conform: bool = True,
    foot_lock: bool = True,
    hints: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """(T, 22, 3) joints of a continuation: the (K, 22, 3) `prefix` exactly, then `generated` (same frame of
    reference, T frames, its first K the model's attempt at the prefix) conformed, handed over at the seam
    (`splice_prefix`, on the prefix's skeleton when `conform`), warped onto spatial `hints` (values, mask),
    (T, 22, 3) each, at frames after the prefix (`warp_to_hints`, from the last prefix frame on, which stays)
    and foot-locked after it. The lock comes last, pinned at the last prefix frame: the hand-over moves every
    joint by its own decaying offset and the warp the whole body, which would drag a planted foot; locking
    afterwards holds it where the prefix left it. Whether a foot is planted at the last prefix frame comes from
    the prefix's own last step (HumanML3D's contact rule), not from the generated labels: pinning a foot that
    the prefix still swings would stop it dead at the seam."""
    k = len(prefix)
    lengths = np.concatenate([[0.0], bone_lengths(prefix[-1])]) if conform else TARGET_BONE_LENGTHS
    out = splice_prefix(prefix, conform_to_skeleton(generated) if conform else generated, blend_frames, conform)
    if hints is not None and hints[1][k:].any():
        values, mask = hints
        out[k:] = warp_to_hints(out[k - 1 :], values[k - 1 :], mask[k - 1 :] & (np.arange(len(out) - k + 1) > 0)[:, None, None],
                                bone_lengths=lengths)[1:]  # fmt: skip
    if foot_lock and contacts is not None:
        contacts = np.array(contacts[k - 1 :], dtype=np.float64)
        if k > 1:  # whether a foot is planted at the seam is the prefix's to say: a moving one is not pinned
            contacts[0] = foot_contacts(torch.from_numpy(np.asarray(prefix[-2:], np.float64)))[0].numpy()
        out[k:] = lock_feet(out[k - 1 :], contacts, bone_lengths=lengths, pin_first=True)[1:]
    return out
