#!/usr/bin/env python3
"""Reference for running a BEiT checkpoint at another input size (--image-size): timm's own path, i.e. the family
fixture's state dict loaded into a Beit built at the new size through timm.models.beit.checkpoint_filter_fn, which
resamples each block's relative position bias table (timm.layers.pos_embed_rel.resize_rel_pos_bias_table).

Writes Tests/ViTKitTests/Resources/fixtures/families/beit/reference.resized.safetensors: pixel_values.<image> at the
new size (timm's eval transform for it) and logits.<image>.

    .venv-tools/bin/python tools/make_beit_resize_fixture.py [--size 48]
"""
import argparse
import json
import os

import numpy as np
import timm
import torch
from PIL import Image
from safetensors.numpy import save_file
from safetensors.torch import load_file

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Tests", "ViTKitTests", "Resources",
                    "fixtures", "families")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=48)
    args = ap.parse_args()
    torch.set_num_threads(1)
    folder = os.path.join(ROOT, "beit")
    config = json.load(open(os.path.join(folder, "config.json")))
    model_args = dict(config["model_args"], img_size=[args.size, args.size])
    model = timm.create_model(config["architecture"], pretrained=False, **model_args).eval()
    state = timm.models.beit.checkpoint_filter_fn(load_file(os.path.join(folder, "model.safetensors")), model)
    model.load_state_dict(state)
    data = timm.data.resolve_data_config({"input_size": (3, args.size, args.size), **{
        k: config["pretrained_cfg"][k] for k in ("interpolation", "mean", "std", "crop_pct", "crop_mode")}})
    transform = timm.data.create_transform(**data)
    out = {}
    for image in json.load(open(os.path.join(ROOT, "manifest.json")))["images"]:
        pixels = transform(Image.open(os.path.join(ROOT, image["file"])).convert("RGB"))
        with torch.inference_mode():
            logits = model(pixels.unsqueeze(0))[0]
        out[f"pixel_values.{image['name']}"] = pixels.numpy().astype(np.float32)
        out[f"logits.{image['name']}"] = logits.numpy().astype(np.float32)
    save_file(out, os.path.join(folder, "reference.resized.safetensors"),
              metadata={"timm": timm.__version__, "image_size": str(args.size)})
    print("wrote", os.path.join(folder, "reference.resized.safetensors"))


if __name__ == "__main__":
    main()
