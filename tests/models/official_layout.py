"""The official MotionLCM state-dict layout (the parameters that the official `mld/models/architectures/mld_vae.py`,
`mld_denoiser.py` and `mld/models/operator/attention.py` create), written out by hand (not from our
modules), plus helpers to fake official checkpoints cheaply."""

from __future__ import annotations

import torch

H, FF = 256, 1024  # transformer width and feed-forward size of every official V1/V2 module
Shapes = dict[str, tuple[int, ...]]


def _attention(prefix: str) -> Shapes:
    return {
        f"{prefix}.in_proj_weight": (3 * H, H),
        f"{prefix}.in_proj_bias": (3 * H,),
        f"{prefix}.out_proj.weight": (H, H),
        f"{prefix}.out_proj.bias": (H,),
    }


def _layer(prefix: str, decoder: bool) -> Shapes:
    shapes = {**_attention(f"{prefix}.self_attn")}
    shapes |= {f"{prefix}.linear1.weight": (FF, H), f"{prefix}.linear1.bias": (FF,)}
    shapes |= {f"{prefix}.linear2.weight": (H, FF), f"{prefix}.linear2.bias": (H,)}
    norms = ("norm1", "norm2", "norm3") if decoder else ("norm1", "norm2")
    if decoder:
        shapes |= _attention(f"{prefix}.multihead_attn")
    for norm in norms:
        shapes |= {f"{prefix}.{norm}.weight": (H,), f"{prefix}.{norm}.bias": (H,)}
    return shapes


def skip_stack(prefix: str, decoder: bool = False) -> Shapes:
    """9-layer skip stack with its final norm."""
    shapes: Shapes = {}
    for i in range(4):
        shapes |= _layer(f"{prefix}.input_blocks.{i}", decoder)
        shapes |= _layer(f"{prefix}.output_blocks.{i}", decoder)
        shapes |= {f"{prefix}.linear_blocks.{i}.weight": (H, 2 * H), f"{prefix}.linear_blocks.{i}.bias": (H,)}
    shapes |= _layer(f"{prefix}.middle_block", decoder)
    shapes |= {f"{prefix}.norm.weight": (H,), f"{prefix}.norm.bias": (H,)}
    return shapes


def vae_shapes(version: str, nfeats: int = 263) -> Shapes:
    shapes = {"query_pos_encoder.pe": (500, 1, H), "query_pos_decoder.pe": (500, 1, H)}
    shapes |= skip_stack("encoder") | skip_stack("decoder", decoder=True)
    shapes |= {"global_motion_token": (2, H) if version == "v1" else (32, H)}
    shapes |= {"skel_embedding.weight": (H, nfeats), "skel_embedding.bias": (H,)}
    shapes |= {"final_layer.weight": (nfeats, H), "final_layer.bias": (nfeats,)}
    if version == "v2":
        shapes |= {"latent_pre.weight": (32, H), "latent_pre.bias": (32,)}
        shapes |= {"latent_post.weight": (H, 32), "latent_post.bias": (H,)}
    return shapes


def denoiser_shapes(version: str, lcm: bool) -> Shapes:
    shapes = {
        "time_embedding.linear_1.weight": (H, 768),
        "time_embedding.linear_1.bias": (H,),
        "time_embedding.linear_2.weight": (H, H),
        "time_embedding.linear_2.bias": (H,),
        "emb_proj.1.weight": (H, 768),
        "emb_proj.1.bias": (H,),
        "query_pos.pe": (500, 1, H),
    }
    if lcm:
        shapes["time_embedding.cond_proj.weight"] = (768, 256)
    shapes |= skip_stack("encoder")
    if version == "v2":
        shapes |= {"latent_pre.weight": (H, 32), "latent_pre.bias": (H,)}
        shapes |= {"latent_post.weight": (32, H), "latent_post.bias": (32,)}
    return shapes


def controlnet_shapes(version: str) -> Shapes:
    """`controlnet.*` (reference section 11.2): the LCM denoiser's keys without `encoder.norm`, the condition
    embedding (V1 three 256x256 linears, V2 32->256->256->32 with SiLU between: keys 0, 2, 4) and nine
    zero linears."""
    shapes = {k: v for k, v in denoiser_shapes(version, lcm=True).items() if not k.startswith("encoder.norm.")}
    if version == "v1":
        cond = {0: (H, H), 1: (H, H), 2: (H, H)}
    else:
        cond = {0: (H, 32), 2: (H, H), 4: (32, H)}
    for i, shape in cond.items():
        shapes |= {f"controlnet_cond_embedding.{i}.weight": shape, f"controlnet_cond_embedding.{i}.bias": (shape[0],)}
    for i in range(9):
        shapes |= {f"controlnet_down_mid_blocks.{i}.weight": (H, H), f"controlnet_down_mid_blocks.{i}.bias": (H,)}
    return shapes


def traj_encoder_shapes(version: str) -> Shapes:
    """`traj_encoder.*` (reference section 11.2)."""
    shapes = {"skel_embedding.weight": (H, 66), "skel_embedding.bias": (H,), "query_pos_encoder.pe": (500, 1, H)}
    shapes |= skip_stack("encoder")
    shapes |= {"global_motion_token": (1, H) if version == "v1" else (16, H)}
    if version == "v2":
        shapes |= {"latent_proj.weight": (32, H), "latent_proj.bias": (32,)}
    return shapes


def shapes_of(module: torch.nn.Module) -> Shapes:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def cheap_tensor(shape: tuple[int, ...]) -> torch.Tensor:
    """A tensor of `shape` backed by one element, so a fake full-size checkpoint is a tiny file."""
    return torch.zeros(1).expand(shape)


def fake_official_state_dict(version: str, kind: str) -> dict[str, torch.Tensor]:
    """Official-layout state dict ("vae" | "mld" | "lcm" | "control") of cheap tensors, with one evaluator key."""
    sd = {f"vae.{k}": cheap_tensor(s) for k, s in vae_shapes(version).items()}
    if kind != "vae":
        sd |= {f"denoiser.{k}": cheap_tensor(s) for k, s in denoiser_shapes(version, kind != "mld").items()}
    if kind == "control":
        sd |= {f"controlnet.{k}": cheap_tensor(s) for k, s in controlnet_shapes(version).items()}
        sd |= {f"traj_encoder.{k}": cheap_tensor(s) for k, s in traj_encoder_shapes(version).items()}
    sd["t2m_moveencoder.main.0.weight"] = cheap_tensor((512, 259, 4))
    return sd
