#!/usr/bin/env python3
"""Reference logits of the reduced-precision schemes (vitclassify --precision bf16|int8) on the parity fixtures.

Run from the repository root (after tools/make_fixtures.py):

    /work/venv-tools/bin/python tools/make_precision_fixtures.py [--fixtures Tests/ViTKitTests/Resources/fixtures]

The models are the committed random-weight parity fixtures (timm and Hugging Face checkpoints); nothing is
downloaded. Each model runs in its own library (timm / transformers, fp32, single-threaded) with its linear layers
replaced by a NumPy emulation of the scheme written from the specification in
Sources/ViTKernels/include/vit_qgemm.h, not from the Swift or C code:

  BF16  weight and input rounded to bfloat16 (round to nearest even, subnormals to signed zero), the product in
        float64 of those values (exact products; the kernels' fp32 accumulation differs by at most K·2⁻²⁴ relative),
        rounded to fp32, + bias. Layers: patch embedding, qkv (query/key/value), proj, fc1, fc2. Head fp32.
  INT8  weight per output channel: s_w = amax/127, q_w = clamp(rint(w·(127/amax)), −127, 127);
        input per row: lo = min(0, min a), hi = max(0, max a), s_a = (hi−lo)/255, inv = 255/(hi−lo),
        zp = clamp(rint(−lo·inv), 0, 255), q_a = clamp(rint(a·inv) + zp, 0, 255);
        S = Σ q_a·q_w − zp·Σ q_w in int64, out = fp32(S)·fp32(s_a·s_w), + bias (fp32).
        Layers: qkv, proj, fc1, fc2 of every block. Patch embedding and head fp32.
  INT8R INT8 in the reduced range (the avx2-maddubs7 kernel): 63 in place of 127 in the weight quantiser and 127 in
        place of 255 in the input quantiser (7-bit weights and inputs).
  LayerScale (timm ls1/ls2) is folded into proj/fc2 before rounding, as vitclassify does at load.

Tolerance, derived from the scheme rather than from vitclassify's output: vitclassify's non-GEMM operations
(LayerNorm, softmax, attention, GELU) agree with the libraries to fp32 rounding (parity tests: 1e-4 on logits).
Those last-bit differences reach the quantisers, where an input on a rounding boundary can land one step
(one INT8 level or one BF16 ulp) away. The script measures that sensitivity of the scheme itself: it reruns the
emulation with every quantiser input multiplied by (1 + u·2⁻²⁰), u uniform in [−1, 1] (a few fp32 ulps), four times,
and stores tolerance = 1e-4 + 2 · max |Δlogit| over those runs and the cases. It also stores the scheme's own error
(max |logit − fp32 logit|), which the tolerance must stay well below for the test to tell the schemes apart.

Writes <fixtures>/precision/<model>.safetensors: logits.<precision>.<case> [classes], and per precision
tolerance.<precision>, scheme_error.<precision>, relative_error.<precision> ([1] each); and precision/manifest.json.
"""

from __future__ import annotations

import argparse
import json
import os

import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import png  # noqa: F401  (make_fixtures imports pypng for writing PNGs, which this script never does)
except ImportError:
    import types

    sys.modules["png"] = types.ModuleType("png")
import make_fixtures  # noqa: E402  (TIMM_MODELS: how each timm fixture was constructed)
from safetensors.numpy import save_file  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForImageClassification  # noqa: E402

PERTURB = 2.0**-20
RUNS = 4


def bf16_round(x: np.ndarray) -> np.ndarray:
    """fp32 → nearest-even bfloat16 (as fp32), subnormals to signed zero, NaN kept."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    e = u & 0x7F800000
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    r = np.where(e == 0, u & 0x80000000, r)
    r = np.where((e == 0x7F800000) & ((u & 0x7FFFFF) != 0), (u | 0x400000) & 0xFFFF0000, r)
    return (r & 0xFFFFFFFF).astype(np.uint32).view(np.float32)


def q8_weights(w: np.ndarray, qmax: int = 127):
    """[N, K] fp32 → int8 values (as int64) in [−qmax, qmax] and per-row (output channel) scales."""
    w = w.astype(np.float32)
    amax = np.abs(w).max(axis=1).astype(np.float32)
    zero = amax < np.float32(1e-30)
    safe = np.where(zero, np.float32(1), amax)
    mult = (np.float32(qmax) / safe).astype(np.float32)
    q = np.clip(np.rint((w * mult[:, None]).astype(np.float32)), -qmax, qmax)
    q[zero] = 0
    s = np.where(zero, np.float32(0), (amax / np.float32(qmax)).astype(np.float32)).astype(np.float32)
    return q.astype(np.int64), s


def q8_rows(a: np.ndarray, levels: int = 255):
    """[M, K] fp32 → uint8 values in [0, levels] (as int64), zero points, scales."""
    a = a.astype(np.float32)
    lo = np.minimum(np.float32(0), a.min(axis=1)).astype(np.float32)
    hi = np.maximum(np.float32(0), a.max(axis=1)).astype(np.float32)
    rng = (hi - lo).astype(np.float32)
    tiny = ~(rng >= np.float32(1e-30))
    safe = np.where(tiny, np.float32(1), rng).astype(np.float32)
    scale = np.where(tiny, np.float32(0), (safe / np.float32(levels)).astype(np.float32)).astype(np.float32)
    inv = np.where(tiny, np.float32(0), (np.float32(levels) / safe).astype(np.float32)).astype(np.float32)
    zp = np.clip(np.rint((-lo * inv).astype(np.float32)), 0, levels).astype(np.int64)
    q = np.clip(np.rint((a * inv[:, None]).astype(np.float32)).astype(np.int64) + zp[:, None], 0, levels)
    zp = np.where(tiny, 0, zp)
    q = np.where(tiny[:, None], 0, q)
    return q, zp, scale


class Emulated(torch.nn.Module):
    """A linear map x·Wᵀ + b computed by the NumPy emulation of one scheme (on the last dimension of x)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, scheme: str, state: dict):
        super().__init__()
        self.w = weight.astype(np.float32)  # [N, K]
        self.b = None if bias is None else bias.astype(np.float32)
        self.scheme, self.state = scheme, state
        if scheme in ("int8", "int8r"):
            self.qw, self.sw = q8_weights(self.w, 127 if scheme == "int8" else 63)
            self.colsum = self.qw.sum(axis=1)
        else:
            self.wb = bf16_round(self.w).astype(np.float64)

    def matmul(self, a: np.ndarray) -> np.ndarray:
        rng = self.state.get("rng")
        if rng is not None:
            a = (a * (1 + rng.uniform(-1, 1, a.shape) * PERTURB)).astype(np.float32)
        if self.scheme in ("int8", "int8r"):
            q, zp, sa = q8_rows(a, 255 if self.scheme == "int8" else 127)
            s = q @ self.qw.T - zp[:, None] * self.colsum[None, :]
            out = s.astype(np.float32) * (sa[:, None] * self.sw[None, :]).astype(np.float32)
        else:
            out = (bf16_round(a).astype(np.float64) @ self.wb.T).astype(np.float32)
        out = out.astype(np.float32)
        if self.b is not None:
            out = (out + self.b[None, :]).astype(np.float32)
        return out

    def forward(self, x):
        shape = x.shape
        a = x.detach().reshape(-1, shape[-1]).numpy().astype(np.float32)
        return torch.from_numpy(self.matmul(a).reshape(*shape[:-1], -1))


class EmulatedPatchEmbedding(torch.nn.Module):
    """A non-overlapping patch convolution (stride = kernel) as a linear map on flattened patches."""

    def __init__(self, conv: torch.nn.Conv2d, scheme: str, state: dict):
        super().__init__()
        w = conv.weight.detach().numpy()
        self.p = conv.kernel_size[0]
        self.out = w.shape[0]
        b = None if conv.bias is None else conv.bias.detach().numpy()
        self.linear = Emulated(w.reshape(w.shape[0], -1), b, scheme, state)
        self.weight = conv.weight  # transformers reads the projection's dtype from it

    def forward(self, x):
        n, c, h, w = x.shape
        p = self.p
        gh, gw = h // p, w // p
        patches = x[:, :, : gh * p, : gw * p].reshape(n, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5)
        y = self.linear(patches.reshape(n, gh, gw, c * p * p))
        return y.permute(0, 3, 1, 2).contiguous()


def linear_of(module: torch.nn.Linear, scheme, state, scale=None):
    w = module.weight.detach().numpy().astype(np.float32)
    b = None if module.bias is None else module.bias.detach().numpy().astype(np.float32)
    if scale is not None:  # LayerScale folded: γ ⊙ (xWᵀ + b) = x(γ⊙W)ᵀ + γ⊙b, in fp32 as vitclassify folds it
        w = (w * scale[:, None]).astype(np.float32)
        b = (np.zeros_like(scale) if b is None else b * scale).astype(np.float32)
    return Emulated(w, b, scheme, state)


def emulate_timm(model, scheme, state):
    if scheme == "bf16":
        model.patch_embed.proj = EmulatedPatchEmbedding(model.patch_embed.proj, scheme, state)
    for blk in model.blocks:
        ls1 = getattr(blk, "ls1", None)
        ls2 = getattr(blk, "ls2", None)
        g1 = ls1.gamma.detach().numpy().astype(np.float32) if hasattr(ls1, "gamma") else None
        g2 = ls2.gamma.detach().numpy().astype(np.float32) if hasattr(ls2, "gamma") else None
        blk.attn.qkv = linear_of(blk.attn.qkv, scheme, state)
        blk.attn.proj = linear_of(blk.attn.proj, scheme, state, g1)
        blk.mlp.fc1 = linear_of(blk.mlp.fc1, scheme, state)
        blk.mlp.fc2 = linear_of(blk.mlp.fc2, scheme, state, g2)
        if g1 is not None:
            blk.ls1 = torch.nn.Identity()
        if g2 is not None:
            blk.ls2 = torch.nn.Identity()


def emulate_hf(model, scheme, state):
    """Every Linear of the encoder (query/key/value or q/k/v_proj, output, intermediate/fc1, fc2): the classifiers are
    outside `model.vit` / `model.deit`, so they stay fp32."""
    base = model.vit if hasattr(model, "vit") else model.deit
    if scheme == "bf16":
        pe = base.embeddings.patch_embeddings
        pe.projection = EmulatedPatchEmbedding(pe.projection, scheme, state)
    replaced = 0
    for parent in list(base.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(parent, name, linear_of(child, scheme, state))
                replaced += 1
    assert replaced > 0 and replaced % 6 == 0, replaced


def load_model(spec, root):
    folder = os.path.join(root, spec["dir"])
    if spec["format"] == "timm":
        # The constructor arguments make_fixtures.py built the checkpoint with (its arch names are not registered).
        timm_spec = next(m for m in make_fixtures.TIMM_MODELS if m["name"] == spec["name"])
        model = timm_spec["cls"](**timm_spec["args"])
        model.load_state_dict({k: v.float() for k, v in load_file(os.path.join(folder, "model.safetensors")).items()})

        def forward(x):
            return model(x)

        return model.eval(), forward, emulate_timm
    model = AutoModelForImageClassification.from_pretrained(folder, attn_implementation="eager").eval()

    def forward(x):
        return model(pixel_values=x).logits

    return model, forward, emulate_hf


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixtures", default="Tests/ViTKitTests/Resources/fixtures")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    root = args.fixtures
    manifest = json.load(open(os.path.join(root, "manifest.json")))
    out_dir = os.path.join(root, "precision")
    os.makedirs(out_dir, exist_ok=True)
    summary = {"perturbation": PERTURB, "runs": RUNS, "models": []}
    for spec in manifest["models"]:
        reference = load_file(os.path.join(root, spec["reference"]))
        tensors = {}
        entry = {"name": spec["name"], "file": f"precision/{spec['name']}.safetensors", "cases": spec["cases"]}
        for scheme in ("bf16", "int8", "int8r"):
            model, forward, emulate = load_model(spec, root)
            state: dict = {}
            emulate(model, scheme, state)
            spread, scheme_error, largest = 0.0, 0.0, 0.0
            for case in spec["cases"]:
                x = reference[f"pixel_values.{case}"].float()[None]
                fp32 = reference[f"logits.{case}"].numpy().astype(np.float32)
                with torch.no_grad():
                    state.pop("rng", None)
                    logits = forward(x)[0].numpy().astype(np.float32)
                    for run in range(RUNS):
                        state["rng"] = np.random.default_rng(1000 * run + 17)
                        perturbed = forward(x)[0].numpy().astype(np.float32)
                        spread = max(spread, float(np.abs(perturbed - logits).max()))
                    state.pop("rng", None)
                tensors[f"logits.{scheme}.{case}"] = logits
                scheme_error = max(scheme_error, float(np.abs(logits - fp32).max()))
                largest = max(largest, float(np.abs(fp32).max()))
            tolerance = 1e-4 + 2 * spread
            tensors[f"tolerance.{scheme}"] = np.array([tolerance], dtype=np.float32)
            tensors[f"scheme_error.{scheme}"] = np.array([scheme_error], dtype=np.float32)
            tensors[f"relative_error.{scheme}"] = np.array([scheme_error / largest], dtype=np.float32)
            entry[scheme] = {
                "tolerance": tolerance, "perturbation_spread": spread, "scheme_error": scheme_error,
                "relative_error": scheme_error / largest,
            }
            print(f"{spec['name']:24s} {scheme}: scheme error {scheme_error:.3e} (relative {scheme_error / largest:.2e}), "
                  f"spread {spread:.2e}, tolerance {tolerance:.2e}")
        path = os.path.join(out_dir, f"{spec['name']}.safetensors")
        save_file(tensors, path)
        os.chmod(path, 0o644)
        summary["models"].append(entry)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
