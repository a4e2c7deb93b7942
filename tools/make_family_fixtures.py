#!/usr/bin/env python3
"""Generate one small random-weight checkpoint per ViT family, with timm / transformers reference outputs, for the
parity tests: Tests/ViTKitTests/Resources/fixtures/families/.

Run from the repository root (no network; every model is built locally with seeded random weights):

    .venv-tools/bin/python tools/make_family_fixtures.py [--out Tests/ViTKitTests/Resources/fixtures/families]
                                                         [--only FAMILY_SUBSTRING]

Deterministic: the same package versions give the same files (torch single-threaded).

Layout (a contract with the Swift tests):
  manifest.json                 versions, images, conventions and one entry per family (see below)
  images/<case>.png             the 2 RGB8 PNG inputs (45x37 and 36x52, structured content + noise)
  <family>/model.safetensors    the weights (F32, state_dict / save_pretrained key names)
  <family>/config.json          timm: written by timm.models.save_for_hf (Hub style) -- and WITH `model_args`,
                                because these checkpoints are the registered architecture at a tiny size
                                (img_size 32, patch 8, embed_dim 48, depth 2, 3 heads, 10 classes): timm >= 1.0.2x
                                writes the create_model() keyword overrides there and rebuilds the model as
                                `entry_point(**model_args)`, i.e. model_args are OVERRIDES on top of the
                                architecture's registered arguments (Sources/ViTKit/Resources/timm_architectures.json),
                                not a full argument list. Hugging Face: save_pretrained's config.json and
                                preprocessor_config.json.
  <family>/reference.safetensors   F32, per case C: pixel_values.C [3,S,S], logits.C [10],
                                attentions.C [L,H,N,N] (post-softmax, every block), rollout.C.<fusion>.<discard>
                                [GH*GW] for (mean,0) (mean,0.5) (max,0) (min,0), last.C [H, GH*GW] -- the same
                                definitions as tools/make_fixtures.py (its functions, copied)

The reference is computed from the checkpoint AS RELOADED FROM DISK by the library itself
(timm.create_model("local-dir:<dir>", pretrained=True); transformers from_pretrained(attn_implementation="eager")),
with the library's own eval preprocessing of the PNG (timm.data.create_transform(**resolve_data_config({},
model=model)); AutoImageProcessor.from_pretrained(dir, backend="pil")). timm attention probabilities are captured
with fused attention off and a forward hook on each attention module's attn_drop (its input is
softmax(q k^T * scale + rel-pos bias) after qk-norm and RoPE); transformers with output_attentions=True.

The registered-size, Hub-exact (no model_args) checkpoints of the same architectures are what tools/timm_coverage.py
builds into bench-out/coverage/<architecture>/ (too large to commit); each manifest entry names its architecture and
whether the coverage script measures it (`coverage_population`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import warnings
from collections import OrderedDict

import numpy as np
import PIL
from PIL import Image
import safetensors
from safetensors.torch import load_file, save_file
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timm  # noqa: E402
import timm.data  # noqa: E402
import timm.models  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoImageProcessor, BeitConfig, BeitForImageClassification, BeitImageProcessorPil, BitImageProcessorPil,
    Dinov2Config, Dinov2ForImageClassification, Dinov2WithRegistersConfig,
    Dinov2WithRegistersForImageClassification,
)
from make_timm_arch_table import derive  # noqa: E402
from timm_random import capture_attention, randomize_model, save_hub_style, seed_for  # noqa: E402

TINY = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=10)
IMAGES = [("a_45x37", 45, 37), ("b_36x52", 36, 52)]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# name, registered architecture, tag (its pretrained_cfg: preprocessing), what the family exercises
TIMM_FAMILIES = [
    ("clip", "vit_base_patch16_clip_224", "openai_ft_in1k",
     "CLIP image tower: norm_pre (pre_norm=True), patch conv without bias, LayerNorm eps 1e-5, GELU, token pool, "
     "CLIP mean/std"),
    ("clip_quickgelu", "vit_base_patch16_clip_quickgelu_224", "openai",
     "as clip with act_layer='quick_gelu' (x * sigmoid(1.702 x))"),
    ("rpn", "vit_base_patch16_rpn_224", "sw_in1k",
     "ResPostBlock (x + norm1(attn(x)); x + norm2(mlp(x))), no class token, avg pool + fc_norm, qkv_bias=False"),
    ("siglip_map", "vit_base_patch16_siglip_224", "webli",
     "SigLIP: no class token, final norm, then global_pool='map': AttentionPoolLatent over the patch tokens "
     "(latent query -> q, tokens -> kv, softmax attention, proj, + mlp(norm(.)) residual), then head"),
    ("beit3", "beit3_base_patch16_224", "in22k_ft_in1k",
     "BEiT-3 remapped to VisionTransformer: scale_attn_norm + scale_mlp_norm (sub-LN: attn.norm before proj, "
     "mlp.norm before fc2), avg pool + fc_norm, LayerNorm eps 1e-5"),
    ("dinov2_reg", "vit_small_patch14_reg4_dinov2", "lvd142m",
     "DINOv2 with 4 registers: [cls, reg x4, patches], no_embed_class (pos_embed covers the patches only, "
     "added before the prefix tokens are prepended), LayerScale ls1/ls2, token pool"),
    ("swiglu_packed", "vit_giant_patch14_reg4_dinov2", "lvd142m",
     "DINOv2-giant style: mlp_layer=SwiGLUPacked (GluMlp, fc1 packed [x1|x2], silu(x1)*x2), registers, LayerScale"),
    ("parallel_scaling", "vit_pwee_patch16_reg1_gap_256", "sbb_in1k",
     "ParallelScalingBlock (in_norm -> in_proj = [mlp fc1 | q | k | v], attn and MLP in parallel), 1 register, "
     "no class token, avg pool, LayerScale 'ls'"),
    ("beit", "beit_base_patch16_224", "in22k_ft_in22k_in1k",
     "BEiT: per-block relative position bias, q_bias/v_bias (no k bias), gamma_1/gamma_2, no abs pos embed, "
     "avg pool + fc_norm"),
    ("beitv2", "beitv2_base_patch16_224", "in1k_ft_in1k", "BEiT v2 (same module, different init / tags)"),
    ("eva02", "eva02_tiny_patch14_336", "mim_in22k_ft_in1k",
     "EVA-02 tiny: RoPE (RotaryEmbeddingCat, ref_feat_shape), SwiGLU packed (GluMlp, gate first), q_bias/v_bias, "
     "abs pos embed, avg pool + fc_norm"),
    ("eva02_swiglu", "eva02_base_patch14_448", "mim_in22k_ft_in1k",
     "EVA-02 base: SwiGLU with separate fc1_g / fc1_x and scale_mlp (mlp.norm before fc2), unfused q/k/v "
     "projections (qkv_fused=False)"),
    ("rope_naver", "vit_small_patch16_rope_224", "naver_in1k",
     "RoPE-ViT (naver): Eva class, attn_type='rope' (AttentionRope: fused qkv WITH k bias), RotaryEmbeddingCat "
     "'xy' indexing, temperature 100, no abs pos embed, LayerScale gamma_1/gamma_2, token pool + final norm"),
    ("rope_naver_ape", "vit_small_patch16_rope_ape_224", "naver_in1k",
     "as rope_naver plus a learned abs pos embed over the patches only (no_embed_class=True)"),
    ("rope_mixed", "vit_small_patch16_rope_mixed_224", "naver_in1k",
     "RoPE-Mixed (naver): RotaryEmbeddingMixed, learned frequencies rope.freqs (2, depth, heads, head_dim/2), "
     "a different rotation per block and head, temperature 10, 'xy' grid, token pool"),
    ("rope_sbb", "vit_medium_patch16_rope_reg1_gap_256", "sbb_in1k",
     "timm sbb RoPE ViT: EvaAttention (q_bias/v_bias), RotaryEmbeddingCat 'ij', temperature 1e4, ref_feat_shape "
     "(16,16), no class token, 1 register, no abs pos embed, avg pool + fc_norm"),
    ("pe_core", "vit_pe_core_tiny_patch16_384", "fb",
     "Perception Encoder core: Eva class, norm_pre (patch conv without bias), AttentionRope, RotaryEmbeddingCat "
     "'xy' grid_offset 1 ref_feat_shape (24,24), abs pos embed, final norm, MAP head over ALL tokens (Eva does not "
     "drop the class token before attn_pool), LayerNorm eps 1e-5"),
    ("dinov3", "vit_small_patch16_dinov3", "lvd1689m",
     "DINOv3: RotaryEmbeddingDinoV3 (centred [-1,1] coords, periods 100^(4k/head_dim), angle 2*pi*coord/period, rotate_half), "
     "AttentionRope without qkv bias, 4 registers, no abs pos embed, LayerScale gamma_1/gamma_2, final norm then "
     "avg pool over the patches (use_fc_norm=False), dynamic_img_size"),
]


CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# The next three functions are copies of tools/make_fixtures.py's (same definitions, so the Swift tests read both
# fixture sets the same way); copied rather than imported because make_fixtures needs pypng.

def structured(h: int, w: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """Float image in [0, 1], shape [h, w, channels]."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((h, w, channels))
    for c in range(channels):
        ang = rng.uniform(0, 2 * math.pi)
        out[..., c] = 0.5 + 0.8 * ((x / w - 0.5) * math.cos(ang) + (y / h - 0.5) * math.sin(ang))
    for _ in range(int(rng.integers(3, 6))):
        colour = rng.uniform(0, 1, channels)
        if rng.random() < 0.5:
            x0, x1 = sorted(rng.integers(0, w + 1, 2))
            y0, y1 = sorted(rng.integers(0, h + 1, 2))
            m = (x >= x0) & (x < max(x1, x0 + 3)) & (y >= y0) & (y < max(y1, y0 + 3))
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            r = rng.uniform(3, max(4, min(h, w) / 2.5))
            m = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        out[m] = colour
    fa, fb = rng.uniform(-0.25, 0.25, 2)
    out += 0.08 * np.sin(2 * math.pi * (x * fa + y * fb))[..., None]
    out += rng.normal(0, 0.04, out.shape)
    return np.clip(out, 0, 1)


def rollout(att: np.ndarray, prefix: int, fusion: str, discard: float, has_cls: bool) -> np.ndarray:
    """Abnar & Zuidema 2020 attention rollout. att: [L, H, N, N] (float64). Row normalisation."""
    n = att.shape[-1]
    eye = np.eye(n)
    result = np.eye(n)
    for layer in att:
        if fusion == "mean":
            a = layer.mean(axis=0)
        elif fusion == "max":
            a = layer.max(axis=0)
        else:
            a = layer.min(axis=0)
        a = a.copy()
        if discard > 0:
            flat = a.reshape(-1)
            k = int(flat.size * discard)
            idx = np.argsort(flat, kind="stable")[:k]
            idx = idx[idx != 0]
            flat[idx] = 0
        a = a + eye
        a = a / a.sum(axis=-1, keepdims=True)
        result = a @ result
    if has_cls:
        row = result[0, prefix:]
    else:
        row = result[prefix:, prefix:].mean(axis=0)
    return row / row.max()


def last_layer_map(att: np.ndarray, prefix: int, has_cls: bool) -> np.ndarray:
    last = att[-1]  # [H, N, N]
    if has_cls:
        return last[:, 0, prefix:]
    return last[:, prefix:, prefix:].mean(axis=1)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def f32(t) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(t), dtype=torch.float32).contiguous()


def attention_tensors(case: str, att: torch.Tensor, prefix: int, has_cls: bool) -> OrderedDict:
    out = OrderedDict()
    a64 = att.numpy().astype(np.float64)
    for fusion, discard in (("mean", 0.0), ("mean", 0.5), ("max", 0.0), ("min", 0.0)):
        d = "0" if discard == 0 else "0.5"
        out[f"rollout.{case}.{fusion}.{d}"] = f32(rollout(a64, prefix, fusion, discard, has_cls))
    out[f"last.{case}"] = f32(last_layer_map(att.numpy(), prefix, has_cls))
    return out


def key_summary(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return OrderedDict((k, [v["dtype"], v["shape"]]) for k, v in sorted(header.items()))


def make_images(out: str) -> dict:
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    pil = OrderedDict()
    for name, w, h in IMAGES:
        rng = np.random.default_rng(seed_for("image:" + name))
        arr = (structured(h, w, 3, rng) * 255 + 0.5).astype(np.uint8)
        img = Image.fromarray(arr, "RGB")
        img.save(os.path.join(out, "images", f"{name}.png"), optimize=False)
        pil[name] = Image.open(os.path.join(out, "images", f"{name}.png")).convert("RGB")
    return pil


def timm_family(fam, out, pil, population) -> OrderedDict:
    name, arch, tag, what = fam
    full = f"{arch}.{tag}"
    mdir = os.path.join(out, name)
    shutil.rmtree(mdir, ignore_errors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the overlay matters for dynamic_img_size models (DINOv3: fixed_input_size False), whose eval transform
        # would otherwise stay at the tag's 256 px; for the others save_for_hf writes the model's 32 px anyway
        model = timm.create_model(full, pretrained=False, pretrained_cfg_overlay=dict(input_size=(3, 32, 32)), **TINY)
    model.eval()
    kept = randomize_model(model, seed_for("family:" + name))
    cfg = save_hub_style(model, mdir, keep_model_args=True)
    # what a user of the published files gets: timm's own loader from the directory
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = timm.create_model(f"local-dir:{mdir}", pretrained=True).eval()
    sd0, sd1 = model.state_dict(), loaded.state_dict()
    assert sd0.keys() == sd1.keys() and all(torch.equal(sd0[k], sd1[k]) for k in sd0), f"{name}: reload differs"
    data_cfg = timm.data.resolve_data_config({}, model=loaded)
    transform = timm.data.create_transform(**data_cfg)
    d = derive(loaded)
    prefix = loaded.num_prefix_tokens
    has_cls = getattr(loaded, "cls_token", None) is not None
    ref = OrderedDict()
    for case, img in pil.items():
        x = transform(img).unsqueeze(0)
        logits, att = capture_attention(loaded, x)
        with torch.no_grad():
            assert torch.allclose(model(x), logits, atol=0, rtol=0) or torch.allclose(model(x), logits, atol=1e-6)
        ref[f"pixel_values.{case}"] = f32(x[0])
        ref[f"logits.{case}"] = f32(logits[0])
        ref[f"attentions.{case}"] = f32(att[0])
        ref.update(attention_tensors(case, att[0], prefix, has_cls))
    save_file(ref, os.path.join(mdir, "reference.safetensors"))
    mod = type(loaded).__module__
    src = sys.modules[mod].__file__
    entry = OrderedDict(
        name=name, format="timm", dir=name, architecture=arch, tag=tag, what=what,
        timm_version=timm.__version__, timm_module=mod, timm_file="timm/" + src.split("/timm/", 1)[1],
        model_class=type(loaded).__name__, block=d.get("block"), attention=d.get("attn"),
        mlp=(d.get("mlp") or {}).get("class"), rope=(d.get("rope") or {}).get("class"),
        model_args=cfg.get("model_args"), pretrained_cfg=cfg.get("pretrained_cfg"),
        data_config={k: (list(v) if isinstance(v, tuple) else v) for k, v in data_cfg.items()},
        transform=repr(transform).replace("\n", " "),
        prefix_tokens=prefix, class_token=has_cls, grid=d["grid"], tokens=prefix + d["grid"][0] * d["grid"][1],
        num_classes=loaded.num_classes, cases=list(pil), derived=d,
        kept_as_initialised=kept, coverage_population=arch in population,
        coverage_checkpoint=f"bench-out/coverage/{arch}" if arch in population else None,
        weight_keys=key_summary(os.path.join(mdir, "model.safetensors")),
        reference="reference.safetensors",
        top1={c: int(torch.argmax(ref[f"logits.{c}"])) for c in pil},
    )
    return entry


def hf_family(kind: str, out: str, pil) -> OrderedDict:
    id2label = {i: CIFAR10[i] for i in range(10)}
    label2id = {v: k for k, v in id2label.items()}
    common = dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=3, intermediate_size=192, patch_size=8,
                  id2label=id2label, label2id=label2id)
    if kind == "hf_beit":
        config = BeitConfig(image_size=32, use_relative_position_bias=True, use_absolute_position_embeddings=False,
                            use_mean_pooling=True, layer_scale_init_value=0.1, **common)
        mcls, pcls = BeitForImageClassification, BeitImageProcessorPil
        # as microsoft/beit-base-patch16-224: squash-resize to the input size, bilinear, mean/std 0.5, no crop
        proc = pcls(do_resize=True, size={"height": 32, "width": 32}, resample=2, do_center_crop=False,
                    image_mean=[0.5] * 3, image_std=[0.5] * 3)
        prefix, what = 1, ("BeitForImageClassification: per-layer relative position bias, query/value bias and no key "
                           "bias (separate q/k/v Linear), lambda_1/lambda_2 LayerScale, mean pooling + pooler LayerNorm")
    elif kind == "hf_dinov2":
        # position embeddings for a 40x40 input (5x5 grid) run at 32x32 (4x4): Dinov2 always interpolates, as the Hub
        # checkpoints (image_size 518, processor crop 224) do
        config = Dinov2Config(image_size=40, mlp_ratio=4, layerscale_value=1.0, **{k: v for k, v in common.items()
                                                                                    if k != "intermediate_size"})
        mcls, pcls = Dinov2ForImageClassification, BitImageProcessorPil
        proc = pcls(do_resize=True, size={"shortest_edge": 36}, resample=3, do_center_crop=True,
                    crop_size={"height": 32, "width": 32}, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD,
                    do_convert_rgb=True)
        prefix, what = 1, ("Dinov2ForImageClassification: classifier on concat(cls, mean of patch tokens) (2D inputs), "
                           "LayerScale lambda1, position embeddings interpolated (bicubic, align_corners=False) from "
                           "the config's 5x5 grid to the input's 4x4")
    else:
        config = Dinov2WithRegistersConfig(image_size=40, mlp_ratio=4, layerscale_value=1.0, num_register_tokens=4,
                                           **{k: v for k, v in common.items() if k != "intermediate_size"})
        mcls, pcls = Dinov2WithRegistersForImageClassification, BitImageProcessorPil
        proc = pcls(do_resize=True, size={"shortest_edge": 36}, resample=3, do_center_crop=True,
                    crop_size={"height": 32, "width": 32}, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD,
                    do_convert_rgb=True)
        prefix, what = 5, ("Dinov2WithRegistersForImageClassification: 4 register tokens after the class token, "
                           "classifier on concat(cls, mean of patch tokens), position embeddings (class + patches, "
                           "no register rows) interpolated from 5x5 to 4x4")
    mdir = os.path.join(out, kind)
    shutil.rmtree(mdir, ignore_errors=True)
    model = mcls(config).eval()
    randomize_model(model, seed_for("family:" + kind))
    model.save_pretrained(mdir, safe_serialization=True)
    proc.save_pretrained(mdir)
    model = mcls.from_pretrained(mdir, attn_implementation="eager").eval()
    proc = AutoImageProcessor.from_pretrained(mdir, backend="pil")
    assert type(proc) is pcls, type(proc)
    ref = OrderedDict()
    for case, img in pil.items():
        pv = torch.from_numpy(proc(images=img, return_tensors="np")["pixel_values"][0])
        with torch.no_grad():
            o = model(pv[None], output_attentions=True)
        att = torch.stack([a[0] for a in o.attentions])
        rows = att.sum(-1)
        assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5)
        ref[f"pixel_values.{case}"] = f32(pv)
        ref[f"logits.{case}"] = f32(o.logits[0])
        ref[f"attentions.{case}"] = f32(att)
        ref.update(attention_tensors(case, att, prefix, True))
    save_file(ref, os.path.join(mdir, "reference.safetensors"))
    src = sys.modules[mcls.__module__].__file__
    return OrderedDict(
        name=kind, format="huggingface", dir=kind, what=what, transformers_version=transformers.__version__,
        transformers_file="transformers/" + src.split("/transformers/", 1)[1], model_class=mcls.__name__,
        processor_class=type(proc).__name__, prefix_tokens=prefix, class_token=True, grid=[4, 4],
        tokens=prefix + 16, num_classes=10, cases=list(pil),
        weight_keys=key_summary(os.path.join(mdir, "model.safetensors")), reference="reference.safetensors",
        top1={c: int(torch.argmax(ref[f"logits.{c}"])) for c in pil})


def coverage_population() -> set:
    """Architectures the coverage script measures (first classifier tag, <= 100 M parameters), from the table."""
    path = "Sources/ViTKit/Resources/timm_architectures.json"
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        table = json.load(f)["architectures"]
    out = set()
    for name, a in table.items():
        for t in a.get("tag_order", sorted(a["tags"])):
            c = a["tags"][t]
            if c["num_classes"] and c["num_classes"] > 0:
                if c.get("num_params", a["num_params"]) <= 100e6:
                    out.add(name)
                break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="Tests/ViTKitTests/Resources/fixtures/families")
    ap.add_argument("--only", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    out = a.out
    if a.only is None and os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    pil = make_images(out)
    population = coverage_population()
    entries = []
    for fam in TIMM_FAMILIES:
        if a.only and a.only not in fam[0]:
            continue
        e = timm_family(fam, out, pil, population)
        entries.append(e)
        print(f"{e['name']:18s} {e['architecture']:40s} {e['model_class']:18s} "
              f"{os.path.getsize(os.path.join(out, e['dir'], 'model.safetensors')) / 1e3:6.0f} KB", flush=True)
    for kind in ("hf_beit", "hf_dinov2", "hf_dinov2_reg"):
        if a.only and a.only not in kind:
            continue
        e = hf_family(kind, out, pil)
        entries.append(e)
        print(f"{e['name']:18s} {e['model_class']:59s} "
              f"{os.path.getsize(os.path.join(out, e['dir'], 'model.safetensors')) / 1e3:6.0f} KB", flush=True)
    manifest = OrderedDict(
        generator="tools/make_family_fixtures.py",
        versions=OrderedDict(torch=torch.__version__, timm=timm.__version__, transformers=transformers.__version__,
                             Pillow=PIL.__version__, numpy=np.__version__, safetensors=safetensors.__version__,
                             python=sys.version.split()[0]),
        tiny_overrides=TINY,
        images=[dict(name=n, file=f"images/{n}.png", width=w, height=h, mode="RGB", bit_depth=8) for n, w, h in IMAGES],
        conventions=OrderedDict(
            model_args=("timm configs carry model_args = the create_model() keyword overrides (plus in_chans, "
                        "num_classes, global_pool, img_size that save_for_hf adds); timm rebuilds with "
                        "entry_point(**model_args), so every argument not listed comes from the registered "
                        "architecture (timm_architectures.json 'args')."),
            weights=("every tensor redrawn (tools/timm_random.randomize_model): norm weight 1+N(0,.2), bias N(0,.1), "
                     "Linear/Conv N(0, g/sqrt(fan_in)) (g=2 for the patch conv), tokens/pos/latent N(0,.5), "
                     "LayerScale U(.5,1.5), relative_position_bias_table N(0,.5); rope.freqs kept as timm made them"),
            attentions=("timm: fused_attn off, forward hook on every block's attention attn_drop (input = "
                        "post-softmax probabilities, bias and RoPE applied); transformers: output_attentions=True "
                        "with attn_implementation='eager'. [L,H,N,N], token order [cls, (reg...), patches]"),
            rollout=("as tools/make_fixtures.py: result = I; per layer fuse heads, optional discard (flat index 0 "
                     "protected), A + I, row-normalise, result = A @ result; map = result[0, P:] / max with a class "
                     "token, else mean of rows P.. over columns P.., / max (P = prefix tokens)"),
            last="last layer, query row 0 over the patch keys (no class token: mean over the patch query rows)",
        ),
        families=entries,
    )
    write_json(os.path.join(out, "manifest.json"), manifest)
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("# Family parity fixtures\n\nGenerated by `tools/make_family_fixtures.py` (seeded random weights, no "
                "downloads); do not edit by hand:\n\n    .venv-tools/bin/python tools/make_family_fixtures.py\n\n"
                "The layout, the reference tensors and how they were computed are described in that script's "
                "docstring and in `manifest.json` (`conventions`, and per family: registered architecture, tag, timm "
                "module file and version, model / block / attention / MLP / RoPE classes, model_args, preprocessing, "
                "every tensor's dtype and shape).\n")
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(out) for f in fs)
    print(f"total {total / 1e6:.2f} MB in {out}")
    assert total < 8.5e6, "families/ larger than ~8 MB"


if __name__ == "__main__":
    main()
