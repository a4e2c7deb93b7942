#!/usr/bin/env python3
"""Reference gradients and class-specific explanation maps for Tests/ViTKitTests/ExplanationTests.swift.

Run from the repository root (after tools/make_fixtures.py and tools/make_family_fixtures.py, whose checkpoints and
preprocessed inputs it reuses):

    /work/venv-tools/bin/python tools/make_explain_fixtures.py [--out Tests/ViTKitTests/Resources/explain]

No downloads: the models are the committed random-weight fixture checkpoints (timm and Hugging Face, every pre-norm
variant), plus one Hugging Face ViT with the tanh GELU (``hidden_act="gelu_pytorch_tanh"``) written here. The model
input of each case is the fixture's own ``pixel_values.<case>`` (so preprocessing is not under test here).

Everything runs in PyTorch autograd in float64 (the model is cast with ``.double()``): the reference is the exact
maths, and the Swift float32 engine is measured against it. The target is the class's pre-softmax logit (distilled
models: the mean of both heads' logits, as at inference), as in the reference implementations.

For each model, case and target (the top-1 class and the runner-up) it writes, in ``<model>.safetensors`` (F32):
  logits.<case>                           [classes]
  attention_grad.<case>.<t>              [L, H, N, N]  d logit_t / d A (post-softmax probabilities)
  token_grad.<case>.<t>                  [L, N, D]     d logit_t / d x at each block's input
  transformer_attribution.<case>.<t>     [P]           raw relevance (class token's row over the patches)
  grad_rollout.<case>.<t>.<discard>      [P]           discard 0 and 0.5, divided by the max
  gradcam.<case>.<t>                     [P]           raw ReLU'd CAM
  input_gradient.<case>.<t>              [S*S]         gradient x input summed over channels

The algorithms follow:
  - transformer attribution: hila-chefer/Transformer-MM-Explainability @ 58eaea85ac9c34aff052f368514b35d2e4c8dd3c,
    Transformer_MM_explainability_ViT.ipynb (``avg_heads``, ``apply_self_attention_rules``, ``generate_relevance``):
    R = I; per block in forward order cam = (grad * attn).clamp(min=0).mean(heads); R += cam @ R; R[0, 1:].
    Here the row is R[0, P:] (P = prefix tokens: the distillation token and registers are skipped, where the notebook
    assumes P = 1); without a class token, the mean of rows P.. over columns P.. (as for rollout).
  - gradient rollout: jacobgil/vit-explain @ 15a81d355a5aa6128ea4e71bbd56c28888d0f33b, vit_grad_rollout.py
    (``grad_rollout``), as described, its defects fixed: gradients of the probabilities (its hook on attn_drop sees
    the softmax's input gradient), layer i paired with its own gradient (its list is in backward order), rows
    re-normalised (its ``a / a.sum(dim=-1)`` divides columns), entry [0, 0] never discarded; discard by a stable
    ascending argsort (as tools/make_fixtures.py's rollout), then (A + I)/2, rows to sum 1, result = A @ result;
    map = class row over the patches / max.
  - Grad-CAM: jacobgil/pytorch-grad-cam @ 084273b3f30b54ad0c64cf8020a4337d979a66e0, pytorch_grad_cam/grad_cam.py
    (``get_cam_weights``: mean of the gradients over the spatial grid) and base_cam.py (``get_cam_image``: ReLU of the
    channel-weighted sum) with a ViT ``reshape_transform`` (prefix tokens dropped, patches folded into the grid). The
    target is the *input* of the last block's norm1 (issue 12), not the module output pytorch-grad-cam hooks when
    given ``blocks[-1].norm1``. Its ``scale_cam_image`` min-max normalisation is left to the display.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections import OrderedDict

import numpy as np
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import png  # noqa: F401  (make_fixtures needs pypng only to write images, which this script does not)
except ImportError:
    import types
    sys.modules["png"] = types.ModuleType("png")
import make_fixtures as mf  # noqa: E402  (TIMM_MODELS, HF_MODELS, randomize_state_dict)

import timm  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForImageClassification, DeiTForImageClassificationWithTeacher, ViTConfig, ViTForImageClassification,
)

FIX = "Tests/ViTKitTests/Resources/fixtures"
TIMM_FIXTURES = ["timm_vit", "timm_vit_noargs", "timm_deit_distilled", "timm_deit3_layerscale", "timm_vit_reg",
                 "timm_vit_avgpool"]
HF_FIXTURES = ["hf_vit", "hf_vit_bicubic", "hf_deit_distilled"]
FAMILY_TIMM = ["clip", "clip_quickgelu", "dinov2_reg"]
FAMILY_HF = ["hf_dinov2", "hf_dinov2_reg"]
CASES_PER_MODEL = 2


def f32(t) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(t), dtype=torch.float32).contiguous()


# ----------------------------------------------------------------------------------------------------------
# Forward with gradients kept: attention probabilities and block inputs
# ----------------------------------------------------------------------------------------------------------

def timm_traced(model, x):
    """logits, [L] attention tensors (retain_grad), [L] block inputs (retain_grad)."""
    atts, ins, hooks = [], [], []

    def keep_attention(module, inp, out):
        o = out.clone()
        o.retain_grad()
        atts.append(o)
        return o

    def keep_input(module, args):
        t = args[0].clone()
        t.retain_grad()
        ins.append(t)
        return (t,) + tuple(args[1:])

    for blk in model.blocks:
        blk.attn.fused_attn = False
        hooks.append(blk.attn.attn_drop.register_forward_hook(keep_attention))
        hooks.append(blk.register_forward_pre_hook(keep_input))
    logits = model(x)
    for h in hooks:
        h.remove()
    assert len(atts) == len(model.blocks) and len(ins) == len(model.blocks)
    rows = atts[0].sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-9), "hook did not see probabilities"
    return logits[0], atts, ins


def hf_traced(model, x):
    out = model(pixel_values=x, output_attentions=True, output_hidden_states=True)
    atts = list(out.attentions)
    ins = list(out.hidden_states[:len(atts)])  # hidden_states[i] = input of layer i
    for t in atts + ins:
        t.retain_grad()
    rows = atts[0].sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-9)
    return out.logits[0], atts, ins


# ----------------------------------------------------------------------------------------------------------
# The methods
# ----------------------------------------------------------------------------------------------------------

def class_row(r: torch.Tensor, prefix: int, has_cls: bool) -> torch.Tensor:
    if has_cls:
        return r[0, prefix:]
    return r[prefix:, prefix:].mean(0)


def transformer_attribution(atts, grads, prefix, has_cls):
    # Transformer_MM_explainability_ViT.ipynb: avg_heads + apply_self_attention_rules + generate_relevance
    def avg_heads(cam, grad):
        cam = cam.reshape(-1, cam.shape[-2], cam.shape[-1])
        grad = grad.reshape(-1, grad.shape[-2], grad.shape[-1])
        cam = grad * cam
        return cam.clamp(min=0).mean(dim=0)

    n = atts[0].shape[-1]
    r = torch.eye(n, dtype=torch.float64)
    for cam, grad in zip(atts, grads):
        r = r + torch.matmul(avg_heads(cam, grad), r)
    return class_row(r, prefix, has_cls)


def grad_rollout(atts, grads, prefix, has_cls, discard):
    n = atts[0].shape[-1]
    result = np.eye(n)
    for att, grad in zip(atts, grads):  # layer i with its own gradient
        a = (att * grad).mean(axis=0)
        a[a < 0] = 0
        if discard > 0:
            flat = a.reshape(-1)
            k = int(flat.size * discard)
            idx = np.argsort(flat, kind="stable")[:k]
            idx = idx[idx != 0]
            flat[idx] = 0
        a = (a + np.eye(n)) / 2
        a = a / a.sum(axis=-1, keepdims=True)
        result = a @ result
    row = class_row(torch.from_numpy(result), prefix, has_cls).numpy()
    return row / row.max()


def gradcam(act, grad, prefix):
    # reshape_transform: drop the prefix tokens; grad_cam.get_cam_weights: mean over the grid; base_cam: ReLU(sum)
    a, g = act[prefix:], grad[prefix:]
    weights = g.mean(axis=0)
    return np.maximum((a * weights[None, :]).sum(axis=1), 0)


# ----------------------------------------------------------------------------------------------------------

def explain_case(model, traced, x, prefix, has_cls, out, key, log):
    x = x.clone().double().requires_grad_(True)
    logits, atts, ins = traced(model, x[None])
    order = torch.argsort(logits.detach(), descending=True, stable=True)
    targets = [int(order[0]), int(order[1])]
    out[f"logits.{key}"] = f32(logits.detach().numpy())
    for i, t in enumerate(targets):
        retain = i < len(targets) - 1
        for tensor in atts + ins + [x]:
            tensor.grad = None
        logits[t].backward(retain_graph=retain)
        att = [a.detach()[0] for a in atts]
        grad = [a.grad[0] for a in atts]
        out[f"attention_grad.{key}.{t}"] = f32(torch.stack(grad).numpy())
        out[f"token_grad.{key}.{t}"] = f32(torch.stack([s.grad[0] for s in ins]).numpy())
        out[f"transformer_attribution.{key}.{t}"] = f32(transformer_attribution(att, grad, prefix, has_cls).numpy())
        for d in (0.0, 0.5):
            out[f"grad_rollout.{key}.{t}.{'0' if d == 0 else '0.5'}"] = f32(
                grad_rollout([a.numpy() for a in att], [g.numpy() for g in grad], prefix, has_cls, d))
        act = ins[-1].detach()[0].numpy()
        out[f"gradcam.{key}.{t}"] = f32(gradcam(act, ins[-1].grad[0].numpy(), prefix))
        out[f"input_gradient.{key}.{t}"] = f32((x.grad * x.detach()).sum(0).reshape(-1).numpy())
    log(f"  {key}: targets {targets}")
    return targets


def timm_fixture(name):
    spec = next(s for s in mf.TIMM_MODELS if s["name"] == name)
    model = spec["cls"](**spec["args"]).eval()
    sd = load_file(os.path.join(FIX, "models", name, "model.safetensors"))
    model.load_state_dict({k: v.float() for k, v in sd.items()})
    ref = load_file(os.path.join(FIX, "reference", f"{name}.safetensors"))
    prefix = model.num_prefix_tokens
    return model, ref, spec["cases"][:CASES_PER_MODEL], prefix, model.cls_token is not None, \
        os.path.join(FIX, "models", name)


def family_timm(name):
    mdir = os.path.join(FIX, "families", name)
    cfg = json.load(open(os.path.join(mdir, "config.json")))
    model = timm.create_model(cfg["architecture"], pretrained=False, **cfg["model_args"]).eval()
    sd = load_file(os.path.join(mdir, "model.safetensors"))
    model.load_state_dict({k: v.float() for k, v in sd.items()})
    ref = load_file(os.path.join(mdir, "reference.safetensors"))
    cases = sorted({k.split(".", 1)[1] for k in ref if k.startswith("pixel_values.")})[:CASES_PER_MODEL]
    return model, ref, cases, model.num_prefix_tokens, model.cls_token is not None, mdir


def hf_model(mdir):
    cfg = json.load(open(os.path.join(mdir, "config.json")))
    if cfg["architectures"][0] == "DeiTForImageClassificationWithTeacher":
        cls = DeiTForImageClassificationWithTeacher
    else:
        cls = AutoModelForImageClassification
    return cls.from_pretrained(mdir, attn_implementation="eager").eval(), cfg


def hf_prefix(cfg):
    p = 1
    if cfg["architectures"][0] == "DeiTForImageClassificationWithTeacher":
        p += 1
    return p + int(cfg.get("num_register_tokens", 0) or 0)


def make_tanh_model(out, log):
    """A Hugging Face ViT with the tanh GELU, random weights as make_fixtures.py draws them."""
    spec = next(s for s in mf.HF_MODELS if s["name"] == "hf_vit")
    config = ViTConfig(**spec["config"], num_labels=10, hidden_act="gelu_pytorch_tanh",
                       id2label={i: n for i, n in enumerate(mf.CIFAR10)},
                       label2id={n: i for i, n in enumerate(mf.CIFAR10)})
    torch.manual_seed(0)
    model = ViTForImageClassification(config).eval()
    sd = mf.randomize_state_dict(model.state_dict(), mf.seed_for("weights:hf_vit_tanh"),
                                 ln_names=("layernorm",))
    model.load_state_dict(sd)
    mdir = os.path.join(out, "models", "hf_vit_tanh")
    model.save_pretrained(mdir)
    shutil.copy(os.path.join(FIX, "models", "hf_vit", "preprocessor_config.json"), mdir)
    log("hf_vit_tanh written")
    return mdir


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="Tests/ViTKitTests/Resources/explain")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()

    def log(*a):
        if not args.quiet:
            print(*a, flush=True)

    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(os.path.join(args.out, "models"))
    manifest = OrderedDict(
        generator="tools/make_explain_fixtures.py",
        versions=dict(torch=torch.__version__, timm=timm.__version__, transformers=transformers.__version__),
        dtype="float64 autograd, stored as F32",
        models=[])

    jobs = []
    for name in TIMM_FIXTURES:
        jobs.append((name, "timm", lambda n=name: timm_fixture(n)))
    for name in FAMILY_TIMM:
        jobs.append((name, "timm", lambda n=name: family_timm(n)))
    hf_dirs = [(n, os.path.join(FIX, "models", n), os.path.join(FIX, "reference", f"{n}.safetensors"))
               for n in HF_FIXTURES]
    hf_dirs += [(n, os.path.join(FIX, "families", n), os.path.join(FIX, "families", n, "reference.safetensors"))
                for n in FAMILY_HF]
    tanh_dir = make_tanh_model(args.out, log)
    hf_dirs.append(("hf_vit_tanh", tanh_dir, os.path.join(FIX, "reference", "hf_vit.safetensors")))
    for name, mdir, refpath in hf_dirs:
        def load(mdir=mdir, refpath=refpath, name=name):
            model, cfg = hf_model(mdir)
            ref = load_file(refpath)
            cases = sorted({k.split(".", 1)[1] for k in ref if k.startswith("pixel_values.")})[:CASES_PER_MODEL]
            return model, ref, cases, hf_prefix(cfg), True, mdir
        jobs.append((name, "huggingface", load))

    for name, fmt, load in jobs:
        model, ref, cases, prefix, has_cls, mdir = load()
        model = model.double()
        traced = timm_traced if fmt == "timm" else hf_traced
        log(f"{name} ({fmt}, prefix {prefix}, class token {has_cls})")
        out = OrderedDict()
        entry = OrderedDict(name=name, format=fmt, dir=os.path.relpath(mdir, os.path.dirname(args.out.rstrip("/"))),
                            reference=f"{name}.safetensors", prefix_tokens=prefix, class_token=has_cls, cases=[])
        for case in cases:
            x = ref[f"pixel_values.{case}"].double()
            targets = explain_case(model, traced, x, prefix, has_cls, out, case, log)
            # the engine's logits must agree with the reference's own (float32) logits to trust the inputs
            if f"logits.{case}" in ref and name != "hf_vit_tanh":
                assert torch.allclose(out[f"logits.{case}"], ref[f"logits.{case}"].float(), atol=1e-4), name
            entry["cases"].append(OrderedDict(name=case, targets=targets, pixel_values=f"pixel_values.{case}"))
            out[f"pixel_values.{case}"] = f32(x.numpy())
        save_file(out, os.path.join(args.out, f"{name}.safetensors"))
        manifest["models"].append(entry)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
