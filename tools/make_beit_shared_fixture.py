#!/usr/bin/env python3
"""A BEiT with one relative position bias shared by every block (timm Beit(use_shared_rel_pos_bias=True): the table
`rel_pos_bias.relative_position_bias_table`), small and with random weights (tools/timm_random.py), saved as the Hub
publishes timm checkpoints plus model_args, with timm's logits and attention for the family images.

Writes Tests/ViTKitTests/Resources/fixtures/families/beit_shared/{model.safetensors, config.json, reference.safetensors}.

    .venv-tools/bin/python tools/make_beit_shared_fixture.py
"""
import json
import os
import sys

import numpy as np
import timm
import torch
from PIL import Image
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timm_random  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Tests", "ViTKitTests", "Resources",
                    "fixtures", "families")


def main():
    torch.set_num_threads(1)
    args = dict(img_size=[32, 32], patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=10, in_chans=3,
                global_pool="avg", use_rel_pos_bias=False, use_shared_rel_pos_bias=True)
    model = timm.create_model("beit_base_patch16_224", pretrained=False, **args).eval()
    timm_random.randomize_model(model, timm_random.seed_for("beit_shared"))
    out = os.path.join(ROOT, "beit_shared")
    timm_random.save_hub_style(model, out, keep_model_args=True)
    config = json.load(open(os.path.join(out, "config.json")))
    config["model_args"] = dict(config.get("model_args", {}), **args)
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=2)
    data = timm.data.resolve_data_config({"input_size": (3, 32, 32)}, model=model)
    transform = timm.data.create_transform(**data)
    ref = {}
    for image in json.load(open(os.path.join(ROOT, "manifest.json")))["images"]:
        pixels = transform(Image.open(os.path.join(ROOT, image["file"])).convert("RGB"))
        logits, attention = timm_random.capture_attention(model, pixels.unsqueeze(0))
        ref[f"pixel_values.{image['name']}"] = pixels.numpy().astype(np.float32)
        ref[f"logits.{image['name']}"] = logits[0].detach().numpy().astype(np.float32)
        ref[f"attentions.{image['name']}"] = attention[0].detach().numpy().astype(np.float32) if attention.dim() == 5 \
            else attention.detach().numpy().astype(np.float32)
    save_file(ref, os.path.join(out, "reference.safetensors"), metadata={"timm": timm.__version__})
    print("wrote", out, {k: v.shape for k, v in ref.items()})


if __name__ == "__main__":
    main()
