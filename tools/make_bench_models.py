#!/usr/bin/env python3
"""Build the benchmark checkpoints for tools/bench_compare.py (random weights, never downloads).

For each model (ti, s, b = vit_{tiny,small,base}_patch16_224) this writes, once, into OUT/<arch>/:
  model.safetensors   timm state_dict, float32 (seeded random weights, re-initialised so logits are not flat)
  config.json         timm Hub-style config (architecture, num_classes, global_pool, model_args, pretrained_cfg)
  model.onnx          the same model exported from timm (eval mode, opset 17, dynamic batch axis, TorchScript
                      exporter: torch.onnx.export(..., dynamo=False); the dynamo exporter needs onnxscript)
  meta.json           what was built with which versions (a changed seed/version rebuilds)

Existing outputs whose meta.json matches are reused, so repeated benchmark runs cost nothing here.

Usage (from the repository root):
  .venv-tools/bin/python tools/make_bench_models.py [--models ti,s,b] [--out bench-out/models]
"""

import argparse
import json
import os
import sys
import time
import warnings

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "bench-out", "models")

MODELS = {
    "ti": ("vit_tiny_patch16_224", dict(patch_size=16, embed_dim=192, depth=12, num_heads=3)),
    "s": ("vit_small_patch16_224", dict(patch_size=16, embed_dim=384, depth=12, num_heads=6)),
    "b": ("vit_base_patch16_224", dict(patch_size=16, embed_dim=768, depth=12, num_heads=12)),
}
LABELS = {"ti": "ViT-Ti/16", "s": "ViT-S/16", "b": "ViT-B/16"}
IMG = 224
NUM_CLASSES = 1000
SEED = 20240611
OPSET = 17
FORMAT_VERSION = 1  # bump to force a rebuild of every cached model


def model_dir(out, key):
    return os.path.join(out, MODELS[key][0])


def build_model(key):
    """timm model with seeded weights: timm's own init plus perturbed norms/biases so nothing is trivially zero."""
    import torch
    import timm

    arch, _ = MODELS[key]
    torch.manual_seed(SEED + list(MODELS).index(key))
    model = timm.create_model(arch, pretrained=False, num_classes=NUM_CLASSES)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias") or name in ("norm.bias", "fc_norm.bias"):
                p.normal_(0.0, 0.02)
            elif "norm" in name and name.endswith(".weight"):
                p.normal_(1.0, 0.1)
            elif name == "head.weight":
                p.normal_(0.0, 0.05)  # timm may zero the head; keep logits spread out
    return model.float().eval()


def config_for(key):
    arch, args = MODELS[key]
    return {
        "architecture": arch,
        "num_classes": NUM_CLASSES,
        "global_pool": "token",
        "model_args": dict(args, img_size=IMG),
        "pretrained_cfg": {
            "input_size": [3, IMG, IMG],
            "interpolation": "bicubic",
            "crop_pct": 0.9,
            "crop_mode": "center",
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
        },
    }


def ensure(key, out=DEFAULT_OUT, log=print):
    """Write (or reuse) OUT/<arch>/{model.safetensors, config.json, model.onnx}; returns the folder."""
    import torch
    import timm
    from safetensors.torch import save_file

    d = model_dir(out, key)
    meta_path = os.path.join(d, "meta.json")
    want = {"format": FORMAT_VERSION, "key": key, "seed": SEED, "opset": OPSET,
            "torch": torch.__version__, "timm": timm.__version__}
    files = ["model.safetensors", "config.json", "model.onnx"]
    if os.path.exists(meta_path) and all(os.path.exists(os.path.join(d, f)) for f in files):
        with open(meta_path) as f:
            if json.load(f).get("build") == want:
                return d
    os.makedirs(d, exist_ok=True)
    t0 = time.time()
    model = build_model(key)
    sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config_for(key), f, indent=2)
        f.write("\n")
    x = torch.randn(1, 3, IMG, IMG)
    onnx_tmp = os.path.join(d, "model.onnx.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), onnx_tmp, dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          do_constant_folding=True)
    os.replace(onnx_tmp, os.path.join(d, "model.onnx"))
    # Sanity: ORT reproduces torch on a batch of 2 (also proves the batch axis is dynamic).
    import numpy as np
    import onnxruntime as ort
    x2 = torch.randn(2, 3, IMG, IMG)
    with torch.inference_mode():
        ref = model(x2).numpy()
    sess = ort.InferenceSession(os.path.join(d, "model.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x2.numpy()})[0]
    err = float(np.abs(got - ref).max())
    if err > 1e-3 * max(1.0, float(np.abs(ref).max())):
        raise RuntimeError(f"{key}: ONNX export disagrees with torch (max abs diff {err:.3g})")
    nparams = sum(v.numel() for v in sd.values())
    with open(meta_path, "w") as f:
        json.dump({"build": want, "params": nparams, "fp32_weight_bytes": 4 * nparams,
                   "onnx_vs_torch_max_abs_diff": err, "logit_std": float(ref.std())}, f, indent=2)
        f.write("\n")
    log(f"built {LABELS[key]} in {d} ({nparams / 1e6:.1f} M params, ONNX vs torch max |diff| {err:.2e}, "
        f"{time.time() - t0:.1f} s)")
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="ti,s,b")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    import torch
    torch.set_num_threads(2)
    for key in args.models.split(","):
        if key not in MODELS:
            sys.exit(f"unknown model '{key}' (known: {', '.join(MODELS)})")
        print(ensure(key, args.out, log=lambda m: print(m, file=sys.stderr)))


if __name__ == "__main__":
    main()
