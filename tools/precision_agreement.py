#!/usr/bin/env python3
"""Which layers keep fp32 under INT8: top-1 agreement with fp32 and accuracy of the default model (weights/
fashion-mnist-vit) on the Fashion-MNIST test split, for several INT8 layer choices and BF16, through the NumPy
emulation of the schemes (tools/make_precision_fixtures.py, checked against vitclassify by Tests/ViTKitTests/
PrecisionTests.swift), beside ONNX Runtime's quantize_dynamic of the same model (per-channel QInt8 weights, as
bench_compare.py quantises it).

    /work/venv-tools/bin/python tools/precision_agreement.py [--dataset /usr/share/datasets/fashion-mnist]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_precision_fixtures as mpf  # noqa: E402
from timm.models.vision_transformer import VisionTransformer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_split(folder):
    with gzip.open(os.path.join(folder, "t10k-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(folder, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return images, labels


def build():
    folder = os.path.join(ROOT, "weights/fashion-mnist-vit")
    config = json.load(open(os.path.join(folder, "config.json")))
    args = dict(config["model_args"])
    model = VisionTransformer(num_classes=config["num_classes"], **args).eval()
    model.load_state_dict({k: v.float() for k, v in load_file(os.path.join(folder, "model.safetensors")).items()})
    cfg = config["pretrained_cfg"]
    return model, np.array(cfg["mean"], np.float32), np.array(cfg["std"], np.float32)


def emulate(model, scheme, layers, patch):
    """INT8/BF16 on the named block layers (subset of qkv, proj, fc1, fc2), optionally the patch embedding."""
    state: dict = {}
    if patch:
        model.patch_embed.proj = mpf.EmulatedPatchEmbedding(model.patch_embed.proj, scheme, state)
    for blk in model.blocks:
        if "qkv" in layers:
            blk.attn.qkv = mpf.linear_of(blk.attn.qkv, scheme, state)
        if "proj" in layers:
            blk.attn.proj = mpf.linear_of(blk.attn.proj, scheme, state)
        if "fc1" in layers:
            blk.mlp.fc1 = mpf.linear_of(blk.mlp.fc1, scheme, state)
        if "fc2" in layers:
            blk.mlp.fc2 = mpf.linear_of(blk.mlp.fc2, scheme, state)
    return model


def predict(model, x):
    with torch.no_grad():
        return torch.cat([model(x[i:i + 1000]) for i in range(0, len(x), 1000)]).numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    torch.set_num_threads(2)
    images, labels = load_split(args.dataset)
    model, mean, std = build()
    x = ((images.astype(np.float32) / 255)[:, None].repeat(3, axis=1) - mean[None, :, None, None]) / std[None, :, None, None]
    x = torch.from_numpy(x.astype(np.float32))
    fp32 = predict(model, x)
    top = fp32.argmax(1)

    def report(name, logits):
        p = logits.argmax(1)
        print(f"| {name} | {(p == labels).mean() * 100:.2f} | {(p == top).mean() * 100:.2f} | "
              f"{np.abs(logits - fp32).max():.3f} |")

    print("| variant | accuracy % | top-1 agreement with fp32 % | max abs logit change |")
    print("|---|---:|---:|---:|")
    report("fp32", fp32)
    all4 = ("qkv", "proj", "fc1", "fc2")
    for name, layers, patch in [
        ("int8: qkv, proj, fc1, fc2 + patch embedding", all4, True),
        ("int8: qkv, proj, fc1, fc2 (patch embedding fp32) — the shipped choice", all4, False),
        ("int8: qkv, proj, fc1 (fc2 fp32)", ("qkv", "proj", "fc1"), False),
        ("int8: qkv, fc1 (proj, fc2 fp32)", ("qkv", "fc1"), False),
    ]:
        report(name, predict(emulate(build()[0], "int8", layers, patch), x))
    report("int8r (AVX2 without VNNI: 7-bit weights and activations): qkv, proj, fc1, fc2",
           predict(emulate(build()[0], "int8r", all4, False), x))
    report("bf16: patch embedding, qkv, proj, fc1, fc2", predict(emulate(build()[0], "bf16", all4, True), x))

    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as d:
        f32, q8 = os.path.join(d, "m.onnx"), os.path.join(d, "m.int8.onnx")
        torch.onnx.export(model, x[:1], f32, input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}},
                          opset_version=17, dynamo=False)
        quantize_dynamic(f32, q8, weight_type=QuantType.QInt8, per_channel=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        session = ort.InferenceSession(q8, options, providers=["CPUExecutionProvider"])
        logits = np.concatenate([session.run(None, {"x": x[i:i + 1000].numpy()})[0] for i in range(0, len(x), 1000)])
        report(f"ONNX Runtime {ort.__version__} quantize_dynamic (QInt8 per channel)", logits)


if __name__ == "__main__":
    main()
