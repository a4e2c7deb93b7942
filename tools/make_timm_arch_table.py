#!/usr/bin/env python3
"""Generate Sources/ViTKit/Resources/timm_architectures.json: the constructor arguments of every architecture
registered in timm's `vision_transformer`, `deit`, `beit` and `eva` modules, read from timm's own registry.

Run from the repository root (no network, nothing is downloaded, no weights are materialised):

    .venv-tools/bin/python tools/make_timm_arch_table.py [--out Sources/ViTKit/Resources/timm_architectures.json]
                                                         [--modules vision_transformer,deit,beit,eva]

How it works
  For every name in `timm.list_models(module=M)` the script calls `timm.create_model(name, pretrained=False)`
  with the module's `build_model_with_cfg` replaced by a wrapper that swaps the model class for a recorder: the
  recorder keeps the class and the EXACT keyword arguments `build_model_with_cfg` passes to it (i.e. after the
  entry point's `model_args` and after `_update_default_model_kwargs` has applied the pretrained_cfg's
  `num_classes` / `in_chans` / `img_size`), then builds the model on the `meta` device (no memory, no init cost) so
  the parameter count and the module tree can be inspected.

Output (JSON, sorted keys, deterministic for a given timm version):
  timm_version, torch_version, generated_by, modules, notes
  architectures: {name: {
      module, class                      timm module and model class (VisionTransformer, VisionTransformerDistilled,
                                         Beit, Eva)
      entry_kwargs                       what the registered entry point passed to build_model_with_cfg (the
                                         architecture itself, without pretrained_cfg defaults)
      args                               the FULL effective constructor argument set: the class __init__ signature
                                         defaults overridden by the recorded call (device/dtype dropped). Callables
                                         and classes are serialised by a stable name (see `notes`).
      num_params                         parameter count with the default tag's head (meta device, exact)
      num_params_no_head                 the same without the classifier head(s)
      default_tag                        the tag timm picks for `name` alone ('' if none)
      tag_order                          tags with weights in timm's registration order (default first)
      tags: {tag: {num_classes, input_size, mean, std, crop_pct, interpolation, crop_mode, [args_delta],
                   [num_params]}}        every tag that has weights (hf_hub_id / url / file); args_delta lists the
                                         constructor arguments that differ from `args` when built under that tag
                                         (num_classes, img_size, global_pool, in_chans), num_params is given then
      derived                            facts read from the built module tree (what the forward pass needs):
                                         embed_dim, depth, num_heads, head_dim, mlp_hidden, patch_size, img_size,
                                         grid, prefix tokens, pos embed rows, norms (type, eps, bias), block / attn /
                                         mlp class, activation, qkv layout, layer scale names, rope, rel-pos bias,
                                         pooling head, ...
      tensors                            state_dict shapes of every non-block tensor and of block 0 (blocks.0.*)
  }}

Stable names for callables (`args` values):
  activations: "gelu" (nn.GELU / timm GELU, erf form), "gelu_tanh", "quick_gelu" (x*sigmoid(1.702x)), "silu",
               strings are kept as given (timm resolves them with timm.layers.get_act_layer)
  other classes: their __name__ ("LayerNorm" = timm.layers.LayerNorm, "nn.LayerNorm" = torch's, "RmsNorm",
               "Block", "ResPostBlock", "ParallelScalingBlock", "PatchEmbed", "Mlp", "SwiGLU", "Attention", ...)
  functools.partial: {"name": ..., "kwargs": {...}}; timm.layers.SwiGLUPacked (= partial(GluMlp, act_layer=SiLU,
               gate_last=False)) is written "SwiGLUPacked".
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import json
import math
import os
import sys
import warnings

import torch
import torch.nn as nn
import timm
import timm.layers
import timm.models

MODULES = ["vision_transformer", "deit", "beit", "eva"]
TAG_FIELDS = ("num_classes", "input_size", "mean", "std", "crop_pct", "interpolation", "crop_mode")

ACT_NAMES = {
    nn.GELU: "gelu",
    timm.layers.activations.GELU: "gelu",
    timm.layers.activations.GELUTanh: "gelu_tanh",
    timm.layers.activations.QuickGELU: "quick_gelu",
    nn.SiLU: "silu",
    nn.ReLU: "relu",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
}


def canonical_act(layer) -> str:
    """The stable name of an activation module instance or class."""
    cls = layer if isinstance(layer, type) else type(layer)
    if cls in ACT_NAMES:
        return ACT_NAMES[cls]
    if cls is nn.GELU and getattr(layer, "approximate", "none") == "tanh":
        return "gelu_tanh"
    return cls.__name__


def ser(v):
    """JSON-serialise one constructor argument value."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, (tuple, list)):
        return [ser(x) for x in v]
    if isinstance(v, dict):
        return {str(k): ser(x) for k, x in v.items()}
    if isinstance(v, torch.device):
        return str(v)
    if isinstance(v, functools.partial):
        sp = timm.layers.SwiGLUPacked
        if v.func is sp.func and v.args == sp.args and v.keywords == sp.keywords:
            return "SwiGLUPacked"
        out = {"name": ser(v.func), "kwargs": {k: ser(x) for k, x in sorted(v.keywords.items())}}
        if v.args:
            out["args"] = [ser(x) for x in v.args]
        return out
    if isinstance(v, type):
        if v in ACT_NAMES:
            return ACT_NAMES[v]
        if v.__module__.startswith("torch.nn"):
            return "nn." + v.__name__
        return v.__name__
    if callable(v):
        return getattr(v, "__name__", repr(v))
    raise TypeError(f"cannot serialise {v!r}")


def signature_defaults(cls) -> dict:
    """Constructor defaults over the MRO (VisionTransformerDistilled takes *args, **kwargs)."""
    out = {}
    for klass in reversed(cls.__mro__):
        if klass is object or "__init__" not in klass.__dict__:
            continue
        try:
            sig = inspect.signature(klass.__init__)
        except (TypeError, ValueError):
            continue
        for p in sig.parameters.values():
            if p.name in ("self", "device", "dtype") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            out[p.name] = p.default if p.default is not inspect.Parameter.empty else "<required>"
    return out


# ------------------------------------------------------------------------------------------------------------------
# Recording build_model_with_cfg
# ------------------------------------------------------------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.calls = []
        self._orig = {}

    def install(self, modules):
        for m in modules:
            mod = importlib.import_module("timm.models." + m)
            if m in self._orig:
                continue
            self._orig[m] = mod.build_model_with_cfg
            mod.build_model_with_cfg = self._wrap(self._orig[m])

    def _wrap(self, orig):
        rec = self

        def wrapper(model_cls, variant, pretrained=False, **kw):
            entry = {k: v for k, v in kw.items()
                     if k not in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir", "feature_cfg",
                                  "pretrained_filter_fn", "pretrained_strict", "kwargs_filter")}

            def build(**kwargs):
                rec.calls.append(dict(cls=model_cls, variant=variant, entry=entry, kwargs=dict(kwargs)))
                with torch.device("meta"):
                    return model_cls(**kwargs)

            build.__name__ = getattr(model_cls, "__name__", "model")
            return orig(build, variant, pretrained, **kw)

        return wrapper


def build_recorded(rec: Recorder, name: str, tag: str | None):
    rec.calls.clear()
    full = f"{name}.{tag}" if tag else name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = timm.create_model(full, pretrained=False)
    assert len(rec.calls) == 1, f"{full}: expected one recorded model construction, got {len(rec.calls)}"
    return model, rec.calls[0]


# ------------------------------------------------------------------------------------------------------------------
# Facts read from the (meta) module tree
# ------------------------------------------------------------------------------------------------------------------

def norm_info(m):
    if m is None or isinstance(m, nn.Identity):
        return None
    cls = type(m).__name__
    if isinstance(m, nn.LayerNorm):
        return {"type": "LayerNorm", "eps": m.eps, "bias": m.bias is not None, "affine": m.elementwise_affine}
    eps = getattr(m, "eps", None)
    return {"type": cls, "eps": eps, "bias": getattr(m, "bias", None) is not None,
            "affine": getattr(m, "weight", None) is not None}


def head_param_count(model) -> int:
    n = 0
    for attr in ("head", "head_dist"):
        h = getattr(model, attr, None)
        if isinstance(h, nn.Module):
            n += sum(p.numel() for p in h.parameters())
    return n


def rope_info(rope):
    if rope is None:
        return None
    out = {"class": type(rope).__name__}
    for a in ("dim", "temperature", "max_res", "linear_bands", "in_pixels", "grid_offset", "grid_indexing",
              "rotate_half", "ref_feat_shape", "feat_shape", "num_heads", "depth", "normalize_coords",
              "rescale_coords", "shift_coords", "jitter_coords", "mrope_section", "min_period", "max_period"):
        if hasattr(rope, a):
            v = getattr(rope, a)
            try:
                out[a] = ser(v if not isinstance(v, torch.Size) else list(v))
            except TypeError:
                pass
    # learnable / persistent rope tensors (e.g. RotaryEmbeddingMixed.freqs)
    params = {k: list(p.shape) for k, p in rope.named_parameters()}
    if params:
        out["parameters"] = params
    return out


def derive(model) -> dict:
    d = {}
    blk = model.blocks[0] if len(model.blocks) else None
    d["embed_dim"] = model.embed_dim
    d["depth"] = len(model.blocks)
    pe = model.patch_embed
    d["patch_size"] = list(pe.patch_size)
    d["img_size"] = list(pe.img_size) if pe.img_size is not None else None
    d["grid"] = list(pe.grid_size) if pe.grid_size is not None else None
    d["patch_embed"] = {"class": type(pe).__name__, "bias": pe.proj.bias is not None,
                        "norm": norm_info(getattr(pe, "norm", None)),
                        "dynamic_img_pad": bool(getattr(pe, "dynamic_img_pad", False)),
                        "strict_img_size": bool(getattr(pe, "strict_img_size", True))}
    d["class_token"] = getattr(model, "cls_token", None) is not None
    d["dist_token"] = getattr(model, "dist_token", None) is not None
    rt = getattr(model, "reg_token", None)
    d["reg_tokens"] = int(rt.shape[1]) if rt is not None else 0
    d["num_prefix_tokens"] = model.num_prefix_tokens
    pos = getattr(model, "pos_embed", None)
    d["pos_embed_rows"] = int(pos.shape[1]) if isinstance(pos, torch.Tensor) else 0
    d["no_embed_class"] = bool(getattr(model, "no_embed_class", False))
    d["dynamic_img_size"] = bool(getattr(model, "dynamic_img_size", False))
    d["norm_pre"] = norm_info(getattr(model, "norm_pre", None))
    d["norm"] = norm_info(getattr(model, "norm", None))
    d["fc_norm"] = norm_info(getattr(model, "fc_norm", None))
    d["global_pool"] = getattr(model, "global_pool", None)
    d["pool_include_prefix"] = bool(getattr(model, "pool_include_prefix", False))
    ap = getattr(model, "attn_pool", None)
    if ap is not None:
        d["attn_pool"] = {"class": type(ap).__name__, "num_heads": getattr(ap, "num_heads", None),
                          "latent_len": getattr(ap, "latent_len", None),
                          "mlp_hidden": ap.mlp.fc1.out_features if hasattr(ap, "mlp") else None,
                          "norm": norm_info(getattr(ap, "norm", None)),
                          "qk_norm": not isinstance(getattr(ap, "q_norm", nn.Identity()), nn.Identity),
                          "pool": getattr(ap, "pool", None)}
    d["head_dist"] = isinstance(getattr(model, "head_dist", None), nn.Linear)
    d["rope"] = rope_info(getattr(model, "rope", None))
    rpb = getattr(model, "rel_pos_bias", None)
    d["shared_rel_pos_bias"] = (list(rpb.relative_position_bias_table.shape) if rpb is not None else None)
    if blk is None:
        return d
    d["block"] = type(blk).__name__
    if hasattr(blk, "attns"):  # ParallelThingsBlock: num_parallel x (norm, attn, ls) then x (norm, mlp, ls)
        d["num_parallel"] = len(blk.attns)
        attn, norm1, norm2, mlp = blk.attns[0].attn, blk.attns[0].norm, blk.ffns[0].norm, blk.ffns[0].mlp
    elif hasattr(blk, "in_proj"):  # ParallelScalingBlock family: in_norm -> in_proj = [mlp fc1 | q | k | v]
        attn, norm1, norm2, mlp = blk, blk.in_norm, None, None
        d["parallel_in_proj"] = {"in_split": list(blk.in_split), "bias": blk.in_proj.bias is not None,
                                 "mlp_bias_param": getattr(blk, "mlp_bias", None) is not None,
                                 "fused_out_proj": getattr(blk, "out_proj", None) is not None,
                                 "act": canonical_act(blk.mlp_act)}
    else:
        attn, norm1, norm2, mlp = blk.attn, getattr(blk, "norm1", None), getattr(blk, "norm2", None), blk.mlp
    d["attn"] = type(attn).__name__
    nh = getattr(attn, "num_heads", None)
    d["num_heads"] = nh
    hd = getattr(attn, "head_dim", None)
    if hd is None and nh:
        hd = model.embed_dim // nh
    d["head_dim"] = hd
    kvs = [getattr(getattr(b, "attn", None), "num_kv_heads", nh) for b in model.blocks]
    if any(k != nh for k in kvs):
        d["num_kv_heads"] = kvs
    # qkv layout
    if getattr(attn, "q_bias", None) is not None:
        qkv = "fused_qkv_q_v_bias"  # qkv.weight (3A,D) no bias; q_bias, v_bias params; k bias is a zero buffer
    elif getattr(attn, "qkv", None) is not None and isinstance(attn.qkv, nn.Linear):
        qkv = "fused_qkv_bias" if attn.qkv.bias is not None else "fused_qkv_nobias"
    elif getattr(attn, "q_proj", None) is not None:
        qkv = "separate_q_k_v" + ("_q_v_bias" if attn.q_proj.bias is not None else "_nobias")
    elif getattr(attn, "in_proj", None) is not None:
        qkv = "parallel_in_proj"
    else:
        qkv = "other"
    d["qkv"] = qkv
    d["qk_norm"] = norm_info(getattr(attn, "q_norm", None))
    d["attn_out_norm"] = norm_info(getattr(attn, "norm", None))  # EVA scale_attn_inner / timm scale_norm
    d["attn_proj_bias"] = getattr(getattr(attn, "proj", None), "bias", None) is not None
    d["attn_gate"] = getattr(attn, "gate", None) is not None
    d["rel_pos_bias"] = (list(attn.relative_position_bias_table.shape)
                         if getattr(attn, "relative_position_bias_table", None) is not None else None)
    d["norm1"] = norm_info(norm1)
    d["norm2"] = norm_info(norm2)
    if mlp is not None:
        m = {"class": type(mlp).__name__}
        if isinstance(mlp, timm.layers.GluMlp):
            m["class"] = "GluMlp"
            m["gate_last"] = mlp.gate_last
            m["fc1_out"] = mlp.fc1.out_features
            m["hidden"] = mlp.fc1.out_features // 2
        elif hasattr(mlp, "fc1_g"):
            m["hidden"] = mlp.fc1_g.out_features
        elif hasattr(mlp, "fc1"):
            m["hidden"] = mlp.fc1.out_features
        m["act"] = canonical_act(mlp.act) if hasattr(mlp, "act") else None
        m["norm"] = norm_info(getattr(mlp, "norm", None))
        fc2 = getattr(mlp, "fc2", None)
        m["bias"] = fc2.bias is not None if isinstance(fc2, nn.Linear) else None
        d["mlp"] = m
    ls = []
    for n, p in blk.named_parameters(recurse=True):
        if n.endswith("gamma") or n in ("gamma_1", "gamma_2"):
            ls.append(n)
    d["layer_scale"] = sorted(ls) or None
    return d


def tensor_shapes(model) -> dict:
    out = {}
    for k, v in model.state_dict().items():
        if k.startswith("blocks.") and not k.startswith("blocks.0."):
            continue
        out[k] = list(v.shape)
    return out


# ------------------------------------------------------------------------------------------------------------------

def pretrained_tags(name: str, with_weights: set) -> list:
    """Tags with weights, in timm's registration order (the default tag first)."""
    from timm.models import _registry
    default_cfg = _registry._model_default_cfgs.get(name)
    order = list(default_cfg.tags) if default_cfg is not None else [
        full.split(".", 1)[1] for full in timm.models.get_arch_pretrained_cfgs(name)]
    return [tag for tag in order if f"{name}.{tag}" in with_weights]


def tag_cfg(full: str) -> dict:
    cfg = timm.models.get_pretrained_cfg(full).to_dict()
    return {k: ser(cfg.get(k)) for k in TAG_FIELDS}


def effective_args(cls, kwargs) -> dict:
    args = signature_defaults(cls)
    args.update(kwargs)
    args.pop("device", None)
    args.pop("dtype", None)
    return {k: ser(v) for k, v in sorted(args.items())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="Sources/ViTKit/Resources/timm_architectures.json")
    ap.add_argument("--modules", default=",".join(MODULES))
    ap.add_argument("--only", default=None, help="substring filter on names (for debugging; not for the resource)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    modules = a.modules.split(",")
    rec = Recorder()
    rec.install(modules)

    archs = {}
    for m in modules:
        with_weights = set(timm.list_models(module=m, pretrained=True))
        for name in timm.list_models(module=m):
            if a.only and a.only not in name:
                continue
            model, call = build_recorded(rec, name, None)
            cls = call["cls"]
            args = effective_args(cls, call["kwargs"])
            entry = {k: ser(v) for k, v in sorted(call["entry"].items())}
            nparams = sum(p.numel() for p in model.parameters())
            nhead = head_param_count(model)
            default_tag = model.pretrained_cfg.get("tag") or ""
            item = dict(module=m, **{"class": cls.__name__}, entry_kwargs=entry, args=args, num_params=nparams,
                        num_params_no_head=nparams - nhead, default_tag=default_tag, derived=derive(model),
                        tensors=tensor_shapes(model))
            tags = {}
            for tag in pretrained_tags(name, with_weights):
                t = tag_cfg(f"{name}.{tag}")
                if tag != default_tag:
                    tm, tcall = build_recorded(rec, name, tag)
                    targs = effective_args(tcall["cls"], tcall["kwargs"])
                    delta = {k: v for k, v in targs.items() if args.get(k) != v}
                    if delta:
                        t["args_delta"] = delta
                        t["num_params"] = sum(p.numel() for p in tm.parameters())
                    del tm
                tags[tag] = t
            item["tags"] = tags
            item["tag_order"] = list(tags)
            archs[name] = item
            print(f"{m:20s} {name:60s} {cls.__name__:28s} {nparams / 1e6:9.2f}M tags={len(tags)}", file=sys.stderr)
            del model

    doc = {
        "timm_version": timm.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "generated_by": "tools/make_timm_arch_table.py" + (f" --modules {a.modules}" if a.modules != ",".join(MODULES) else ""),
        "modules": modules,
        "notes": [
            "args: class __init__ defaults overridden by the exact kwargs timm's build_model_with_cfg passed to the "
            "model class for the default tag (entry point model_args + pretrained_cfg num_classes/in_chans/img_size).",
            "model_args in a checkpoint's config.json override args; a tag's args_delta overrides args for that tag.",
            "Activation names: gelu = erf GELU, gelu_tanh = tanh approximation, quick_gelu = x*sigmoid(1.702*x), "
            "silu = x*sigmoid(x). String args values are timm.layers.get_act_layer / get_norm_layer names.",
            "Norm layers: LayerNorm = timm.layers.LayerNorm (default eps 1e-6), nn.LayerNorm = torch (eps 1e-5), "
            "RmsNorm = timm.layers.RmsNorm (default eps 1e-6); partials carry their kwargs (e.g. eps).",
            "derived: read from the model built on the meta device; tensors: state_dict shapes except blocks 1..N-1. "
            "derived.mlp.hidden is the width fc2 reads (GluMlp: fc1_out / 2, first half = gate when gate_last is "
            "false); derived.qkv: fused_qkv_bias | fused_qkv_nobias | fused_qkv_q_v_bias (qkv.weight without bias, "
            "q_bias and v_bias parameters, zero k bias) | separate_q_k_v_q_v_bias (q_proj/v_proj with bias, k_proj "
            "without) | parallel_in_proj (ParallelScalingBlock).",
        ],
        "architectures": archs,
    }
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    with open(a.out, "w") as f:
        f.write(text + "\n")
    print(f"wrote {a.out}: {len(archs)} architectures, {len(text) / 1e6:.2f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
