"""Helpers shared by tools/timm_coverage.py and tools/make_family_fixtures.py (import only, not a script).

  randomize_model(model, seed)      every tensor of the state_dict gets seeded random values that make it matter
                                    (no zero biases, no 1e-5 LayerScale, no zero relative-position tables), so a
                                    checkpoint reader that drops or misplaces any tensor gives different logits
  capture_attention(model, x)       logits and the post-softmax attention probabilities of every block,
                                    [L, H, N, N], with fused attention switched off and a forward hook on each
                                    attention module's `attn_drop` (its input is softmax(q k^T * scale + bias) after
                                    RoPE / relative-position bias / qk-norm)
  save_hub_style(model, dir, ...)   timm.models.save_for_hf(model, dir, safe_serialization=True) then, unless
                                    keep_model_args, drop `model_args` from config.json: timm >= 1.0.2x writes
                                    a trivial {in_chans, num_classes, global_pool, img_size} there, while the
                                    configs the Hub actually serves for timm's own models have none
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

TOKEN_LEAVES = ("cls_token", "dist_token", "reg_token", "pos_embed", "latent",  # timm
                "position_embeddings", "register_tokens", "mask_token", "distillation_token")  # transformers
GAMMA_LEAVES = ("gamma", "gamma_1", "gamma_2", "lambda_1", "lambda_2", "lambda1")  # LayerScale (timm / HF)
KEEP_LEAVES = ("freqs", "lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2")  # rope mixed freqs, diff-attn lambdas


def seed_for(name: str, base: int = 20240611) -> int:
    return (base ^ zlib.crc32(name.encode())) & 0x7FFFFFFF


def _is_norm(mod: nn.Module) -> bool:
    return isinstance(mod, (nn.LayerNorm, nn.GroupNorm)) or "Norm" in type(mod).__name__


@torch.no_grad()
def randomize_model(model: nn.Module, seed: int) -> list:
    """Overwrite every parameter with seeded random values (rules below); returns the names kept as timm made them.

    norm weight 1+N(0,0.2), norm bias N(0,0.1); Linear/Conv weight N(0, g/sqrt(fan_in)) (g=2 for the patch conv),
    biases (incl. q_bias / v_bias / mlp_bias) N(0,0.1); tokens / pos_embed / MAP latent N(0,0.5);
    LayerScale gammas U(0.5,1.5); relative_position_bias_table N(0,0.5); RoPE-mixed `freqs` and Diff-attention
    lambdas are kept (timm's own init, which is already random and seeded by torch.manual_seed(seed)).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    kept = []
    owners = {}
    for mname, mod in model.named_modules():
        for pname, _ in mod.named_parameters(recurse=False):
            owners[f"{mname}.{pname}" if mname else pname] = mod
    for name, p in model.named_parameters():
        mod = owners[name]
        leaf = name.split(".")[-1]
        shape = tuple(p.shape)
        if leaf in KEEP_LEAVES:
            kept.append(name)
            continue
        if _is_norm(mod):
            a = (1 + rng.normal(0, 0.2, shape)) if leaf == "weight" else rng.normal(0, 0.1, shape)
        elif isinstance(mod, (nn.Linear, nn.Conv2d)):
            if leaf == "weight":
                fan_in = int(np.prod(shape[1:]))
                gain = 2.0 if isinstance(mod, nn.Conv2d) else 1.0
                a = rng.normal(0, gain / math.sqrt(fan_in), shape)
            else:
                a = rng.normal(0, 0.1, shape)
        elif leaf in TOKEN_LEAVES:
            a = rng.normal(0, 0.5, shape)
        elif leaf in GAMMA_LEAVES:
            a = rng.uniform(0.5, 1.5, shape)
        elif leaf.endswith("bias") and len(shape) == 1:
            a = rng.normal(0, 0.1, shape)
        elif leaf == "relative_position_bias_table":
            a = rng.normal(0, 0.5, shape)
        else:
            raise ValueError(f"no randomisation rule for {name} {shape} ({type(mod).__name__})")
        p.copy_(torch.from_numpy(np.asarray(a, dtype=np.float32)))
    return kept


def attention_modules(model: nn.Module) -> list:
    """One attention module per block, in block order (modules with `fused_attn` and an `attn_drop` Dropout)."""
    out = []
    for blk in model.blocks:
        found = [m for m in blk.modules() if hasattr(m, "fused_attn") and isinstance(getattr(m, "attn_drop", None), nn.Dropout)]
        if len(found) != 1:
            raise ValueError(f"block {type(blk).__name__}: {len(found)} attention modules with attn_drop")
        out.append(found[0])
    return out


@torch.no_grad()
def capture_attention(model: nn.Module, x: torch.Tensor):
    """(logits [B, C], attention [B, L, H, N, N]) with the unfused attention path."""
    mods = attention_modules(model)
    caps = [None] * len(mods)
    hooks = []
    saved = []
    for i, m in enumerate(mods):
        saved.append(m.fused_attn)
        m.fused_attn = False

        def hook(mod, inp, out, i=i):
            caps[i] = inp[0].detach().clone()

        hooks.append(m.attn_drop.register_forward_hook(hook))
    try:
        logits = model(x)
    finally:
        for h in hooks:
            h.remove()
        for m, f in zip(mods, saved):
            m.fused_attn = f
    att = torch.stack(caps, dim=1)  # [B, L, H, N, N]
    rows = att.sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-4), "hook did not see softmax probabilities"
    return logits, att


def save_hub_style(model: nn.Module, out_dir: str, keep_model_args: bool = False, extra: dict | None = None) -> dict:
    """timm.models.save_for_hf + the Hub's config shape (no model_args unless keep_model_args). Returns the config."""
    import timm.models
    os.makedirs(out_dir, exist_ok=True)
    timm.models.save_for_hf(model, out_dir, safe_serialization=True)
    path = os.path.join(out_dir, "config.json")
    with open(path) as f:
        cfg = json.load(f, object_pairs_hook=OrderedDict)
    if not keep_model_args:
        cfg.pop("model_args", None)
    if extra:
        cfg.update(extra)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    return cfg
