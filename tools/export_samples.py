#!/usr/bin/env python3
"""Write vitclassify's sample images (images/<class-slug>-{1,2}.png) from the Fashion-MNIST test split.

For each class the first two test images (in test-file order) of that class which the shipped
model (weights/fashion-mnist-vit) classifies correctly are written as 8-bit grayscale 28x28 PNGs,
and the test indices used are recorded in images/README.md.

The model's predictions are recomputed here from model.safetensors + config.json (fresh timm
model, eval mode, float32, exact config.json preprocessing) and cross-checked against
Tests/ViTKitTests/Resources/fashion-mnist/torch_predictions.txt when that file exists.

Usage (from the repository root, after tools/train_default_model.py):
  .venv-tools/bin/python tools/export_samples.py
"""

import argparse
import json
import os
import sys

import torch
from PIL import Image
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_default_model as tdm  # noqa: E402

SLUGS = ["t-shirt-top", "trouser", "pullover", "dress", "coat",
         "sandal", "shirt", "sneaker", "bag", "ankle-boot"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--weights-dir", default=os.path.join(tdm.REPO_ROOT, "weights", "fashion-mnist-vit"))
    ap.add_argument("--predictions", default=os.path.join(
        tdm.REPO_ROOT, "Tests", "ViTKitTests", "Resources", "fashion-mnist", "torch_predictions.txt"))
    ap.add_argument("--out-dir", default=os.path.join(tdm.REPO_ROOT, "images"))
    ap.add_argument("--per-class", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(2)

    x_test_u8, y_test = tdm.load_split(args.data_dir, "test")

    with open(os.path.join(args.weights_dir, "config.json")) as f:
        cfg = json.load(f)
    state = load_file(os.path.join(args.weights_dir, "model.safetensors"))
    model = tdm.build_vit(cfg["model_args"], tdm.is_distilled_state(state), num_classes=cfg["num_classes"])
    model.load_state_dict(state, strict=True)
    model = model.float().eval()
    pc = cfg["pretrained_cfg"]
    mean = torch.tensor(pc["mean"], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(pc["std"], dtype=torch.float32).view(1, 3, 1, 1)
    x = x_test_u8.to(torch.float32).unsqueeze(1).expand(-1, 3, -1, -1) / 255.0
    x = (x - mean) / std
    with torch.no_grad():
        preds = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    acc = (preds == y_test).float().mean().item()
    print(f"model test accuracy {acc * 100:.2f}%")

    if os.path.exists(args.predictions):
        with open(args.predictions) as f:
            ref = torch.tensor([int(line) for line in f if line.strip()])
        mismatches = int((ref != preds).sum())
        print(f"cross-check with {args.predictions}: {mismatches} mismatching predictions")
        if mismatches:
            sys.exit("predictions differ from torch_predictions.txt; re-run tools/train_default_model.py")

    os.makedirs(args.out_dir, exist_ok=True)
    chosen = {c: [] for c in range(10)}
    for i in range(len(y_test)):
        c = int(y_test[i])
        if len(chosen[c]) < args.per_class and int(preds[i]) == c:
            chosen[c].append(i)
    rows = []
    for c in range(10):
        assert len(chosen[c]) == args.per_class, f"class {c}: not enough correct images"
        for k, idx in enumerate(chosen[c], start=1):
            name = f"{SLUGS[c]}-{k}.png"
            Image.fromarray(x_test_u8[idx].numpy(), mode="L").save(os.path.join(args.out_dir, name))
            # how many earlier test images of this class were skipped because misclassified
            skipped = sum(1 for j in range(idx) if int(y_test[j]) == c and int(preds[j]) != c)
            rows.append((name, tdm.LABEL_NAMES[c], idx, skipped))
            print(f"{name}: test index {idx} ({tdm.LABEL_NAMES[c]})")

    all_idx = ", ".join(str(r[2]) for r in rows)
    lines = [
        "# Sample images",
        "",
        f"Sample images: Fashion-MNIST test split (Zalando Research, MIT licence), test indices {all_idx}; "
        "chosen as the first two correctly classified test images of each class.",
        "",
        "Each file is the original 28x28 8-bit grayscale test image, unmodified, saved as PNG. "
        "Test indices are 0-based positions in `t10k-images-idx3-ubyte`. The selection is "
        "deliberately biased towards images the default model (`weights/fashion-mnist-vit`, "
        f"{acc * 100:.2f}% test accuracy) gets right, so the samples demo well; they are not a "
        "random or representative sample (the model is wrong on "
        f"{int((preds != y_test).sum())} of the 10,000 test images).",
        "",
        "| File | Class | Test index | Earlier test images of this class skipped (misclassified) |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{n}` | {lbl} | {idx} | {sk} |" for n, lbl, idx, sk in rows]
    lines += [
        "",
        "Regenerate with `.venv-tools/bin/python tools/export_samples.py` (after "
        "`tools/train_default_model.py`).",
        "",
        "Fashion-MNIST: Han Xiao, Kashif Rasul, Roland Vollgraf, *Fashion-MNIST: a Novel Image "
        "Dataset for Benchmarking Machine Learning Algorithms*, arXiv:1708.07747 (2017), "
        "https://github.com/zalandoresearch/fashion-mnist, MIT licence, Copyright (c) 2017 Zalando SE.",
        "",
    ]
    with open(os.path.join(args.out_dir, "README.md"), "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {len(rows)} PNGs and README.md to {args.out_dir}")


if __name__ == "__main__":
    main()
