#!/usr/bin/env python3
"""Generate the small reference fixtures that the Swift tests (Tests/ViTKitTests) compare against.

Run from the repository root:

    .venv-tools/bin/python tools/make_fixtures.py [--out Tests/ViTKitTests/Resources/fixtures]

Needs torch, timm, transformers, safetensors, pillow, pypng, numpy (see .venv-tools).  Never downloads
anything: every model is built locally with seeded random weights.  The output is deterministic: running
the script twice on the same machine with the same package versions writes byte-identical files
(the script runs torch single-threaded for that reason).

What it writes (the layout is a contract with the Swift tests; see fixtures/README.md):
  manifest.json                  versions, image list, model list
  images/*.png                   PNGs written by the hand-rolled encoder below (exact control of colour type,
                                 bit depth, interlace, filters, chunks)
  decoded.safetensors            U8 [H,W,3] reference RGB samples per image (+ alpha composites)
  models/<name>/...              checkpoints in the real on-disk formats (timm Hub style / HF save_pretrained)
  reference/<name>.safetensors   pixel_values / logits / attentions / rollout / last-layer maps per case
  reference/<name>.resized.safetensors   same model run at 48x48 with resampled position embeddings
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import math
import os
import shutil
import struct
import sys
import warnings
import zlib
from collections import OrderedDict

import numpy as np
import png  # pypng
import PIL
from PIL import Image
import safetensors
from safetensors.torch import save_file, load_file
import torch
import torch.nn.functional as F
import timm
import timm.data
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn
from timm.models.deit import VisionTransformerDistilled
import torchvision
import transformers
from transformers import (
    ViTConfig, ViTForImageClassification, DeiTConfig, DeiTForImageClassificationWithTeacher,
    ViTImageProcessorPil, DeiTImageProcessorPil, AutoImageProcessor,
)

BASE_SEED = 20240611
BG = (10, 20, 30)
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def seed_for(name: str) -> int:
    return (BASE_SEED ^ zlib.crc32(name.encode())) & 0x7FFFFFFF


# ----------------------------------------------------------------------------------------------------------
# PNG encoder (zlib + struct), so colour type / bit depth / interlace / filters / chunks are exactly ours.
# ----------------------------------------------------------------------------------------------------------

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF)


def _pack_row(samples: np.ndarray, bit_depth: int) -> bytes:
    """samples: 1-D integer array (width*channels) -> packed scanline bytes (no filter byte)."""
    if bit_depth == 16:
        return samples.astype(">u2").tobytes()
    if bit_depth == 8:
        return samples.astype(np.uint8).tobytes()
    per = 8 // bit_depth
    n = len(samples)
    padded = np.zeros(((n + per - 1) // per) * per, dtype=np.int64)
    padded[:n] = samples
    padded = padded.reshape(-1, per)
    out = np.zeros(len(padded), dtype=np.int64)
    for i in range(per):
        out |= padded[:, i] << (8 - bit_depth * (i + 1))
    return out.astype(np.uint8).tobytes()


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    if pb <= pc:
        return b
    return c


def _filter_row(ft: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    out = bytearray(len(row))
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if ft == 0:
            p = 0
        elif ft == 1:
            p = a
        elif ft == 2:
            p = b
        elif ft == 3:
            p = (a + b) // 2
        else:
            p = _paeth(a, b, c)
        out[i] = (row[i] - p) & 0xFF
    return bytes([ft]) + bytes(out)


def _scanlines(img: np.ndarray, bit_depth: int, channels: int, filter_offset: int) -> bytes:
    """img: [h, w, channels] integer samples. Filter type of row r is (r + filter_offset) % 5."""
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        return b""
    bpp = max(1, channels * bit_depth // 8)
    raw = bytearray()
    prev = bytes(len(_pack_row(img[0].reshape(-1), bit_depth)))
    for r in range(h):
        row = _pack_row(img[r].reshape(-1), bit_depth)
        raw += _filter_row((r + filter_offset) % 5, row, prev, bpp)
        prev = row
    return bytes(raw)


def encode_png(samples: np.ndarray, color_type: int, bit_depth: int, *, interlaced: bool = False,
               palette: np.ndarray | None = None, trns: bytes | None = None, extra_chunks=(),
               filter_offset: int = 0, idat_split: int | None = None) -> bytes:
    """samples: [h, w, channels] raw sample values (palette indices for colour type 3)."""
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, ch = samples.shape
    assert ch == CHANNELS[color_type]
    assert samples.min() >= 0 and samples.max() < (1 << bit_depth)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlaced else 0)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
    for ctype, data in extra_chunks:  # ancillary chunks that must precede PLTE / IDAT (gAMA, cHRM, sRGB, iCCP)
        out += _chunk(ctype, data)
    if palette is not None:
        out += _chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    if trns is not None:
        out += _chunk(b"tRNS", trns)
    if interlaced:
        raw = b"".join(_scanlines(samples[ys::yst, xs::xst], bit_depth, ch, filter_offset + p)
                       for p, (xs, ys, xst, yst) in enumerate(ADAM7))
    else:
        raw = _scanlines(samples, bit_depth, ch, filter_offset)
    comp = zlib.compress(raw, 9)
    if idat_split:
        for i in range(0, len(comp), idat_split):
            out += _chunk(b"IDAT", comp[i:i + idat_split])
    else:
        out += _chunk(b"IDAT", comp)
    out += _chunk(b"IEND", b"")
    return out


# ----------------------------------------------------------------------------------------------------------
# Image content: gradients + shapes + texture + seeded noise.
# ----------------------------------------------------------------------------------------------------------

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


def quantize(v: np.ndarray, bits: int) -> np.ndarray:
    return np.round(v * ((1 << bits) - 1)).astype(np.int64)


def make_palette(n: int, rng: np.random.Generator) -> np.ndarray:
    """n colours along a smooth ramp through random anchors (so neighbouring indices look alike) + jitter."""
    anchors = rng.uniform(0, 255, (4, 3))
    t = np.linspace(0, 3, n)
    i = np.minimum(t.astype(int), 2)
    f = (t - i)[:, None]
    pal = anchors[i] * (1 - f) + anchors[i + 1] * f + rng.normal(0, 6, (n, 3))
    return np.clip(np.round(pal), 0, 255).astype(np.int64)


def add_exact_rect(img: np.ndarray, value, rng: np.random.Generator):
    h, w = img.shape[:2]
    y0 = int(rng.integers(0, h // 2)); x0 = int(rng.integers(0, w // 2))
    img[y0:y0 + max(4, h // 4), x0:x0 + max(4, w // 3)] = value


IMAGE_SPECS = [
    # name, color_type, bit_depth, w, h, options
    ("gray1_37x23", 0, 1, 37, 23, {}),
    ("gray2_23x41", 0, 2, 23, 41, {}),
    ("gray4_32x32", 0, 4, 32, 32, {}),
    ("gray8_45x61", 0, 8, 45, 61, {"idat_split": 200}),
    ("gray16_32x32", 0, 16, 32, 32, {}),
    ("gray16_23x41", 0, 16, 23, 41, {}),
    ("gray8_trns_23x41", 0, 8, 23, 41, {"trns": True}),
    ("rgb8_32x32", 2, 8, 32, 32, {}),
    ("rgb8_37x23", 2, 8, 37, 23, {}),
    ("rgb8_48x48", 2, 8, 48, 48, {}),
    ("rgb8_gama_32x32", 2, 8, 32, 32, {"gama": True}),
    ("rgb8_iccp_45x61", 2, 8, 45, 61, {"iccp": True}),
    ("rgb8_srgb_23x41", 2, 8, 23, 41, {"srgb": True}),
    ("rgb8_trns_32x32", 2, 8, 32, 32, {"trns": True}),
    ("rgb16_37x23", 2, 16, 37, 23, {}),
    ("rgb16_32x32", 2, 16, 32, 32, {}),
    ("pal8_32x32", 3, 8, 32, 32, {"ncolors": 200}),
    ("pal8_trns_37x23", 3, 8, 37, 23, {"ncolors": 150, "trns": True}),
    ("pal4_23x41", 3, 4, 23, 41, {"ncolors": 13}),
    ("pal4_trns_32x32", 3, 4, 32, 32, {"ncolors": 16, "trns": True}),
    ("graya8_32x32", 4, 8, 32, 32, {}),
    ("graya16_37x23", 4, 16, 37, 23, {}),
    ("rgba8_45x61", 6, 8, 45, 61, {}),
    ("rgba8_32x32", 6, 8, 32, 32, {}),
    ("rgba16_32x32", 6, 16, 32, 32, {}),
    ("rgb8_adam7_45x61", 2, 8, 45, 61, {"interlace": True}),
    ("rgb8_adam7_32x32", 2, 8, 32, 32, {"interlace": True}),
    ("gray4_adam7_37x23", 0, 4, 37, 23, {"interlace": True}),
    ("pal8_adam7_23x41", 3, 8, 23, 41, {"interlace": True, "ncolors": 90}),
    ("pal4_trns_adam7_5x3", 3, 4, 5, 3, {"interlace": True, "ncolors": 7, "trns": True}),
    ("rgba16_adam7_23x41", 6, 16, 23, 41, {"interlace": True}),
]

# a minimal (fake but well-formed at the chunk level) ICC profile payload: the decoder must ignore iCCP
FAKE_ICC = b"\x00\x00\x01\x00" + b"fixture-icc-profile-payload-not-a-real-profile" * 4


def make_image(name, color_type, bit_depth, w, h, opts):
    """Returns (png bytes, manifest entry, raw info for the reference computations)."""
    rng = np.random.default_rng(seed_for("image:" + name))
    chunks = []
    notes = []
    palette = None
    trns = None
    raw_trns = None
    if color_type in (0, 4):
        v = structured(h, w, 1, rng)
        s = quantize(v, bit_depth)
        if opts.get("trns"):
            key = int(rng.integers(0, 1 << bit_depth))
            s[s == key] = (key + 1) % (1 << bit_depth)
            add_exact_rect(s, key, rng)
            trns = struct.pack(">H", key)
            raw_trns = key
            notes.append(f"tRNS gray key {key}: pixels equal to it are fully transparent")
        if color_type == 4:
            a = quantize(structured(h, w, 1, rng), bit_depth)
            a[: max(1, h // 6)] = 0                       # fully transparent band
            a[-max(1, h // 6):] = (1 << bit_depth) - 1    # fully opaque band
            s = np.concatenate([s, a], axis=2)
    elif color_type in (2, 6):
        v = structured(h, w, 3, rng)
        s = quantize(v, bit_depth)
        if opts.get("trns"):
            key = [int(t) for t in rng.integers(0, 1 << bit_depth, 3)]
            match = np.all(s == key, axis=2)
            s[match, 0] = (key[0] + 1) % (1 << bit_depth)
            add_exact_rect(s, key, rng)
            trns = struct.pack(">HHH", *key)
            raw_trns = key
            notes.append(f"tRNS RGB key {tuple(key)}: pixels equal to it are fully transparent")
        if color_type == 6:
            a = quantize(structured(h, w, 1, rng), bit_depth)
            a[:, : max(1, w // 7)] = 0
            a[:, -max(1, w // 7):] = (1 << bit_depth) - 1
            s = np.concatenate([s, a], axis=2)
    else:  # palette
        n = opts["ncolors"]
        palette = make_palette(n, rng)
        v = structured(h, w, 1, rng)[..., 0]
        s = np.clip(np.floor(v * n), 0, n - 1).astype(np.int64)
        s = s[..., None]
        if opts.get("trns"):
            ntrns = max(1, n - 3)  # shorter than PLTE: the last entries have implicit alpha 255
            alphas = rng.integers(0, 256, ntrns)
            alphas[0] = 0
            if ntrns > 1:
                alphas[1] = 255
            trns = alphas.astype(np.uint8).tobytes()
            raw_trns = alphas
            notes.append(f"tRNS with {ntrns} alpha entries for a {n}-entry PLTE (entries >= {ntrns} opaque)")
        notes.append(f"PLTE with {n} entries")
    if opts.get("gama"):
        chunks.append((b"gAMA", struct.pack(">I", 100000)))
        chunks.append((b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)))
        notes.append("gAMA 100000 (gamma 1.0) + cHRM: must be ignored (stored samples are what the model sees)")
    if opts.get("iccp"):
        chunks.append((b"iCCP", b"fixture\x00\x00" + zlib.compress(FAKE_ICC, 9)))
        notes.append("iCCP chunk (fake profile payload): must be ignored")
    if opts.get("srgb"):
        chunks.append((b"sRGB", b"\x00"))
        chunks.append((b"gAMA", struct.pack(">I", 45455)))
        notes.append("sRGB (perceptual) + gAMA 45455: must be ignored")
    interlaced = bool(opts.get("interlace"))
    if interlaced:
        notes.append("Adam7 interlaced")
    filter_offset = int(rng.integers(0, 5))
    notes.append("rows use all five filter types in turn")
    if opts.get("idat_split"):
        notes.append(f"IDAT split into {opts['idat_split']}-byte chunks")
    data = encode_png(s, color_type, bit_depth, interlaced=interlaced, palette=palette, trns=trns,
                      extra_chunks=chunks, filter_offset=filter_offset, idat_split=opts.get("idat_split"))
    entry = OrderedDict(name=name, file=f"images/{name}.png", color_type=color_type, bit_depth=bit_depth,
                        interlaced=interlaced, width=w, height=h)
    info = dict(samples=s, palette=palette, trns=raw_trns, color_type=color_type, bit_depth=bit_depth)
    return data, entry, notes, info


# ----------------------------------------------------------------------------------------------------------
# Reference decode
# ----------------------------------------------------------------------------------------------------------

def to8(v: np.ndarray, bit_depth: int) -> np.ndarray:
    """Sample -> 8 bit. Sub-byte gray scales by 255/(2^b-1) (exact: 255, 85, 17); 16 bit takes the high byte."""
    v = v.astype(np.int64)
    if bit_depth == 16:
        return v >> 8
    if bit_depth == 8:
        return v
    return v * (255 // ((1 << bit_depth) - 1))


def expected_decode(info):
    """Independent expected RGB8 and alpha8 from our own source samples."""
    s, ct, bd = info["samples"], info["color_type"], info["bit_depth"]
    h, w = s.shape[:2]
    alpha = None
    if ct == 0:
        g = to8(s[..., 0], bd)
        rgb = np.stack([g] * 3, axis=2)
        if info["trns"] is not None:
            alpha = np.where(s[..., 0] == info["trns"], 0, 255)
    elif ct == 4:
        g = to8(s[..., 0], bd)
        rgb = np.stack([g] * 3, axis=2)
        alpha = to8(s[..., 1], bd)
    elif ct == 2:
        rgb = to8(s, bd)
        if info["trns"] is not None:
            alpha = np.where(np.all(s == np.array(info["trns"]), axis=2), 0, 255)
    elif ct == 6:
        rgb = to8(s[..., :3], bd)
        alpha = to8(s[..., 3], bd)
    else:
        idx = s[..., 0]
        rgb = info["palette"][idx]
        if info["trns"] is not None:
            full = np.full(len(info["palette"]), 255, dtype=np.int64)
            full[: len(info["trns"])] = info["trns"]
            alpha = full[idx]
    return rgb.astype(np.uint8), (None if alpha is None else alpha.astype(np.int64))


def pypng_raw(path):
    """Raw samples via pypng (independent decoder) -> [h, w, planes] int array and its info dict."""
    r = png.Reader(filename=path)
    w, h, rows, meta = r.read()
    arr = np.array([np.asarray(row, dtype=np.int64) for row in rows]).reshape(h, w, -1)
    return arr, meta


def composite(rgb8: np.ndarray, a8: np.ndarray) -> np.ndarray:
    c = rgb8.astype(np.int64)
    a = a8.astype(np.int64)[..., None]
    bg = np.array(BG, dtype=np.int64)
    num = c * a + bg * (255 - a)
    return ((num + 127) // 255).astype(np.uint8)  # exact integer rounding (no ties: 255 is odd)


# ----------------------------------------------------------------------------------------------------------
# Random weights
# ----------------------------------------------------------------------------------------------------------

TOKEN_NAMES = ("cls_token", "dist_token", "reg_token", "pos_embed", "position_embeddings", "distillation_token")


def randomize_state_dict(sd: "OrderedDict[str, torch.Tensor]", seed: int, ln_names, gamma_names=("gamma",)):
    rng = np.random.default_rng(seed)
    out = OrderedDict()
    for k, v in sd.items():
        shape = tuple(v.shape)
        leaf = k.split(".")[-1]
        if any(t in k for t in TOKEN_NAMES):
            a = rng.normal(0, 0.5, shape)
        elif leaf in gamma_names:
            a = rng.uniform(0.5, 1.5, shape)
        elif leaf == "weight" and any(n in k for n in ln_names) and len(shape) == 1:
            a = 1 + rng.normal(0, 0.2, shape)
        elif leaf == "bias":
            a = rng.normal(0, 0.1, shape)
        elif leaf == "weight" and len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            # patch embedding gets a gain of 2 so that the image (not the cls/pos embeddings) dominates
            gain = 2.0 if len(shape) == 4 else 1.0
            a = rng.normal(0, gain / math.sqrt(fan_in), shape)
        else:
            raise ValueError(f"no init rule for {k} {shape}")
        out[k] = torch.from_numpy(a.astype(np.float32))
    return out


def round_to(sd, dtype):
    return OrderedDict((k, v.to(dtype).to(torch.float32)) for k, v in sd.items())


# ----------------------------------------------------------------------------------------------------------
# Attention maps
# ----------------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------------
# Model definitions
# ----------------------------------------------------------------------------------------------------------

def vit_constructor_args(cls, overrides):
    """Every JSON-serialisable constructor argument of VisionTransformer with its value."""
    sig = inspect.signature(VisionTransformer.__init__)
    args = OrderedDict()
    for pname, p in sig.parameters.items():
        if pname in ("self", "device", "dtype") or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        val = overrides.get(pname, p.default)
        if callable(val) and not isinstance(val, (str, int, float, bool)):
            continue  # embed_layer / block_fn / mlp_layer / attn_layer classes
        args[pname] = val
    for k in overrides:
        assert k in args, k
    return args


TIMM_MODELS = [
    dict(name="timm_vit", arch="vit_micro_patch8_32", cls=VisionTransformer, dtype="float32",
         args=dict(img_size=32, patch_size=8, num_classes=10, global_pool="token", embed_dim=48, depth=3,
                   num_heads=4, mlp_ratio=3.0),
         mean=[0.5] * 3, std=[0.5] * 3, labels=CIFAR10, model_args=True,
         cases=["rgb8_32x32", "gray16_32x32", "pal4_23x41", "rgb8_37x23", "pal8_trns_37x23"],
         resized_cases=["rgb8_48x48", "rgb8_iccp_45x61"]),
    dict(name="timm_vit_noargs", arch="vit_tiny_patch8_32", cls=VisionTransformer, dtype="float16",
         args=dict(img_size=32, patch_size=8, num_classes=10, global_pool="token", embed_dim=48, depth=2,
                   num_heads=3, mlp_ratio=4.0),
         mean=[0.5] * 3, std=[0.5] * 3, labels=None, model_args=False,
         cases=["rgb8_gama_32x32", "graya8_32x32", "gray8_45x61", "rgb16_37x23"]),
    dict(name="timm_deit_distilled", arch="deit_micro_distilled_patch8_32", cls=VisionTransformerDistilled,
         dtype="float32",
         args=dict(img_size=32, patch_size=8, num_classes=10, global_pool="token", embed_dim=48, depth=2,
                   num_heads=2, mlp_ratio=2.0),
         mean=IMAGENET_MEAN, std=IMAGENET_STD, labels=CIFAR10, model_args=True,
         cases=["rgb8_32x32", "pal8_32x32", "rgb8_adam7_45x61", "gray2_23x41"]),
    dict(name="timm_deit3_layerscale", arch="deit3_micro_patch8_32", cls=VisionTransformer, dtype="bfloat16",
         args=dict(img_size=32, patch_size=8, num_classes=10, global_pool="token", embed_dim=32, depth=3,
                   num_heads=2, mlp_ratio=4.0, init_values=1e-6, no_embed_class=True),
         mean=IMAGENET_MEAN, std=IMAGENET_STD, labels=CIFAR10, model_args=True,
         cases=["rgba8_32x32", "rgb8_adam7_32x32", "gray1_37x23", "rgba8_45x61"],
         resized_cases=["rgb8_48x48", "gray8_45x61"]),
    dict(name="timm_vit_reg", arch="vit_micro_patch8_reg4_32", cls=VisionTransformer, dtype="float32", salt="1",
         args=dict(img_size=32, patch_size=8, num_classes=10, global_pool="token", embed_dim=48, depth=2,
                   num_heads=3, mlp_ratio=2.0, reg_tokens=4, no_embed_class=True),
         mean=[0.5] * 3, std=[0.5] * 3, labels=CIFAR10, model_args=True,
         cases=["rgb8_32x32", "pal4_trns_32x32", "rgb8_37x23", "gray4_adam7_37x23"]),
    dict(name="timm_vit_avgpool", arch="vit_micro_patch8_gap_32", cls=VisionTransformer, dtype="float32",
         args=dict(img_size=32, patch_size=8, num_classes=10, global_pool="avg", embed_dim=32, depth=2,
                   num_heads=4, mlp_ratio=4.0, class_token=False, fc_norm=True),
         mean=[0.5] * 3, std=[0.5] * 3, labels=CIFAR10, model_args=True,
         cases=["rgb8_32x32", "rgb16_32x32", "rgb8_srgb_23x41", "graya16_37x23"]),
    dict(name="timm_vit_1000", arch="vit_micro_patch8_32", cls=VisionTransformer, dtype="float32",
         args=dict(img_size=32, patch_size=8, num_classes=1000, global_pool="token", embed_dim=32, depth=2,
                   num_heads=2, mlp_ratio=2.0),
         mean=[0.5] * 3, std=[0.5] * 3, labels=None, model_args=True,
         cases=["rgb8_32x32", "gray4_32x32", "pal8_adam7_23x41", "rgb8_37x23"]),
]

HF_MODELS = [
    dict(name="hf_vit", kind="vit",
         config=dict(image_size=32, patch_size=8, hidden_size=48, num_hidden_layers=2, num_attention_heads=3,
                     intermediate_size=96, layer_norm_eps=1e-12),
         proc=dict(size={"height": 32, "width": 32}, resample=2, image_mean=[0.5] * 3, image_std=[0.5] * 3), salt="4",
         cases=["rgb8_32x32", "gray16_32x32", "pal8_32x32", "rgb8_37x23", "gray2_23x41"],
         resized_cases=["rgb8_48x48", "rgb8_37x23"]),
    dict(name="hf_vit_bicubic", kind="vit",
         config=dict(image_size=32, patch_size=8, hidden_size=48, num_hidden_layers=3, num_attention_heads=3,
                     intermediate_size=96, layer_norm_eps=1e-6),
         proc=dict(size={"height": 32, "width": 32}, resample=3, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD),
         salt="1",
         cases=["rgb8_32x32", "rgb16_32x32", "pal4_23x41", "gray8_45x61", "rgb8_adam7_45x61"]),
    dict(name="hf_deit_distilled", kind="deit",
         config=dict(image_size=32, patch_size=8, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=144, layer_norm_eps=1e-12),
         proc=dict(size={"height": 36, "width": 36}, crop_size={"height": 32, "width": 32}, resample=3,
                   do_center_crop=True, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD),
         cases=["rgb8_32x32", "gray16_23x41", "pal8_trns_37x23", "rgba16_32x32", "rgb8_37x23"]),
]


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------

def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def safetensors_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


def key_summary(path):
    hdr = safetensors_header(path)
    meta = hdr.pop("__metadata__", None)
    keys = OrderedDict((k, [v["dtype"], v["shape"]]) for k, v in sorted(hdr.items()))
    return keys, meta


def f32(t) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(t), dtype=torch.float32).contiguous()


def timm_forward(model, x):
    """Logits and [L, H, N, N] attention probabilities captured on blk.attn.attn_drop (its input)."""
    caps = []
    hooks = []
    for blk in model.blocks:
        blk.attn.fused_attn = False
        hooks.append(blk.attn.attn_drop.register_forward_hook(lambda m, inp, out: caps.append(inp[0].detach())))
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    att = torch.stack([c[0] for c in caps])  # [L, H, N, N]
    assert att.shape[0] == len(model.blocks)
    rows = att.sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5), "hook did not see softmax probabilities"
    return logits[0], att


def attention_tensors(prefix_key, att: torch.Tensor, prefix: int, has_cls: bool):
    out = OrderedDict()
    a64 = att.numpy().astype(np.float64)
    for fusion, discard in (("mean", 0.0), ("mean", 0.5), ("max", 0.0), ("min", 0.0)):
        d = "0" if discard == 0 else "0.5"
        out[f"rollout.{prefix_key}.{fusion}.{d}"] = f32(rollout(a64, prefix, fusion, discard, has_cls))
    out[f"last.{prefix_key}"] = f32(last_layer_map(att.numpy(), prefix, has_cls))
    return out


# ----------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="Tests/ViTKitTests/Resources/fixtures")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    out = args.out
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Palette images with Transparency")
    torch.manual_seed(0)
    transformers.logging.set_verbosity_error()
    try:
        transformers.utils.logging.disable_progress_bar()
    except Exception:
        pass

    def log(*a):
        if not args.quiet:
            print(*a, flush=True)

    if os.path.isdir(out):
        shutil.rmtree(out)
    for d in ("images", "models", "reference"):
        os.makedirs(os.path.join(out, d))

    # ---------------- images ----------------
    images = []
    decoded = OrderedDict()
    pil_rgb = {}
    for name, ct, bd, w, h, opts in IMAGE_SPECS:
        data, entry, notes, info = make_image(name, ct, bd, w, h, opts)
        path = os.path.join(out, entry["file"])
        with open(path, "wb") as f:
            f.write(data)
        # independent check with pypng: raw samples are what we wrote
        raw, meta = pypng_raw(path)
        if ct == 3:
            assert np.array_equal(raw[..., 0], info["samples"][..., 0])
        else:
            assert np.array_equal(raw, info["samples"]), name
        exp_rgb, exp_a = expected_decode(info)
        with Image.open(path) as im:
            im.load()
            pil_mode = im.mode
            pil = np.asarray(im.convert("RGB"))
        if ct == 0 and bd == 16:
            # Pillow opens 16-bit gray as mode I/I;16 and convert("RGB") clips at 255: not a reference to copy.
            assert not np.array_equal(pil, exp_rgb), "expected the Pillow 16-bit gray clipping quirk"
            ref = np.repeat((raw >> 8).astype(np.uint8), 3, axis=2)  # raw = pypng's 16-bit samples
            assert np.array_equal(ref, exp_rgb)
            notes.append(f"16-bit gray: Pillow opens it as mode {pil_mode} and convert('RGB') clips to 255; the "
                         "reference here is the high byte v >> 8 computed in numpy from the raw 16-bit samples "
                         "(the same rule Pillow applies to 16-bit RGB / RGBA / gray+alpha)")
        else:
            assert np.array_equal(pil, exp_rgb), f"{name}: Pillow convert('RGB') differs from expected decode"
            ref = pil
            if bd == 16:
                notes.append("16-bit: reference = high byte (v >> 8), identical to Pillow's convert('RGB')")
            if bd < 8 and ct == 0:
                notes.append(f"{bd}-bit gray scales to 0..255 by x{255 // ((1 << bd) - 1)}")
        entry["pillow_mode"] = pil_mode
        entry["has_alpha"] = exp_a is not None
        entry["note"] = "; ".join(notes)
        decoded[name] = torch.from_numpy(np.ascontiguousarray(ref.astype(np.uint8)))
        if exp_a is not None:
            decoded[f"{name}.background_10_20_30"] = torch.from_numpy(composite(exp_rgb, exp_a))
            if bd == 8 and ct in (4, 6):
                # cross-check the integer compositing with Pillow (8-bit alpha only; Pillow rounds the same way
                # up to +-1)
                with Image.open(path) as im:
                    rgba = im.convert("RGBA")
                    bgimg = Image.new("RGBA", rgba.size, BG + (255,))
                    pc = np.asarray(Image.alpha_composite(bgimg, rgba).convert("RGB")).astype(int)
                assert np.abs(pc - decoded[f"{name}.background_10_20_30"].numpy().astype(int)).max() <= 1
        pil_rgb[name] = Image.fromarray(ref.astype(np.uint8), "RGB")
        images.append(entry)
        log(f"image {name}: {w}x{h} ct={ct} bd={bd} mode={pil_mode} {len(data)} bytes")
    save_file(decoded, os.path.join(out, "decoded.safetensors"))

    manifest_models = []

    # ---------------- timm models ----------------
    for spec in TIMM_MODELS:
        name = spec["name"]
        mdir = os.path.join(out, "models", name)
        os.makedirs(mdir)
        cls = spec["cls"]
        margs = vit_constructor_args(cls, spec["args"])
        model = cls(**spec["args"]).eval()
        sd = randomize_state_dict(model.state_dict(), seed_for("weights:" + name + spec.get("salt", "")),
                                  ln_names=("norm",), gamma_names=("gamma",))
        tdtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[spec["dtype"]]
        sd = round_to(sd, tdtype)  # reference runs on exactly the stored values
        model.load_state_dict(sd)
        pcfg = OrderedDict(input_size=[3, 32, 32], interpolation="bicubic", crop_pct=0.875, crop_mode="center",
                           mean=spec["mean"], std=spec["std"], num_classes=spec["args"]["num_classes"],
                           first_conv="patch_embed.proj",
                           classifier=["head", "head_dist"] if cls is VisionTransformerDistilled else "head")
        cfg = OrderedDict(architecture=spec["arch"], num_classes=spec["args"]["num_classes"],
                          global_pool=spec["args"]["global_pool"])
        if spec["model_args"]:
            cfg["model_args"] = margs
        cfg["pretrained_cfg"] = pcfg
        if spec["labels"]:
            cfg["label_names"] = spec["labels"]
        write_json(os.path.join(mdir, "config.json"), cfg)
        wpath = os.path.join(mdir, "model.safetensors")
        save_file(OrderedDict((k, v.to(tdtype).contiguous()) for k, v in sd.items()), wpath)
        # reload from disk to be sure the file is what we computed with
        back = load_file(wpath)
        assert all(torch.equal(back[k].float(), sd[k]) for k in sd)

        model.pretrained_cfg = dict(pcfg)
        data_cfg = timm.data.resolve_data_config({}, model=model)
        transform = timm.data.create_transform(**data_cfg)
        prefix = model.num_prefix_tokens
        has_cls = model.cls_token is not None
        ref = OrderedDict()
        all_logits = []
        for case in sorted(pil_rgb):
            pv = transform(pil_rgb[case])
            logits, att = timm_forward(model, pv[None])
            all_logits.append(logits.numpy())
            if case in spec["cases"]:
                ref[f"pixel_values.{case}"] = pv.contiguous()
                ref[f"logits.{case}"] = logits.contiguous()
                ref[f"attentions.{case}"] = att.contiguous()
                ref.update(attention_tensors(case, att, prefix, has_cls))
        quality = logit_quality(name, np.array(all_logits))
        save_file(ref, os.path.join(out, "reference", f"{name}.safetensors"))
        top1 = top1_of(name, ref, spec["cases"], spec["labels"] or (imagenet_names() if spec["args"]["num_classes"] == 1000 else None))

        keys, meta = key_summary(wpath)
        entry = OrderedDict(
            name=name, dir=f"models/{name}", format="timm", variant=cls.__name__, image_size=32,
            prefix_tokens=prefix, grid=[4, 4], num_classes=spec["args"]["num_classes"], cases=spec["cases"],
            weights_dtype=spec["dtype"], reference=f"reference/{name}.safetensors",
            preprocessing=OrderedDict(library=f"timm {timm.__version__}",
                                      call="timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))",
                                      data_config=jsonable(data_cfg), transform=repr(transform).replace("\n", " ")),
            top1=top1, logit_spread=quality, weight_keys=keys)
        entry["notes"] = timm_notes(spec, model)
        if spec.get("resized_cases"):
            entry["resized"] = timm_resized(spec, cls, sd, pcfg, out, log)
        manifest_models.append(entry)
        log(f"model {name}: {os.path.getsize(wpath)} bytes, spread {quality}")

    # ---------------- Hugging Face models ----------------
    for spec in HF_MODELS:
        name = spec["name"]
        mdir = os.path.join(out, "models", name)
        id2label = {i: CIFAR10[i] for i in range(10)}
        if spec["kind"] == "vit":
            config = ViTConfig(**spec["config"], id2label=id2label, label2id={v: k for k, v in id2label.items()})
            mcls, pcls = ViTForImageClassification, ViTImageProcessorPil
            prefix = 1
        else:
            config = DeiTConfig(**spec["config"], id2label=id2label, label2id={v: k for k, v in id2label.items()})
            mcls, pcls = DeiTForImageClassificationWithTeacher, DeiTImageProcessorPil
            prefix = 2
        model = mcls(config).eval()
        sd = randomize_state_dict(model.state_dict(), seed_for("weights:" + name + spec.get("salt", "")),
                                  ln_names=("layernorm",), gamma_names=())
        model.load_state_dict(sd)
        model.save_pretrained(mdir, safe_serialization=True)
        proc = pcls(**spec["proc"])
        proc.save_pretrained(mdir)
        # reload both from disk, exactly as a user would (PIL backend = the former "slow" processor)
        model = mcls.from_pretrained(mdir, attn_implementation="eager").eval()
        proc = AutoImageProcessor.from_pretrained(mdir, backend="pil")
        assert type(proc) is pcls, type(proc)
        wpath = os.path.join(mdir, "model.safetensors")
        ref = OrderedDict()
        all_logits = []
        for case in sorted(pil_rgb):
            pv = torch.from_numpy(proc(images=pil_rgb[case], return_tensors="np")["pixel_values"][0])
            with torch.no_grad():
                o = model(pv[None], output_attentions=True)
            att = torch.stack([a[0] for a in o.attentions])
            rows = att.sum(-1)
            assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5)
            logits = o.logits[0]
            all_logits.append(logits.numpy())
            if case in spec["cases"]:
                ref[f"pixel_values.{case}"] = pv.contiguous()
                ref[f"logits.{case}"] = logits.contiguous()
                ref[f"attentions.{case}"] = att.contiguous()
                ref.update(attention_tensors(case, att, prefix, True))
        quality = logit_quality(name, np.array(all_logits))
        save_file(ref, os.path.join(out, "reference", f"{name}.safetensors"))
        top1 = top1_of(name, ref, spec["cases"], CIFAR10)
        keys, meta = key_summary(wpath)
        entry = OrderedDict(
            name=name, dir=f"models/{name}", format="huggingface", variant=mcls.__name__, image_size=32,
            prefix_tokens=prefix, grid=[4, 4], num_classes=10, cases=spec["cases"], weights_dtype="float32",
            reference=f"reference/{name}.safetensors",
            preprocessing=OrderedDict(
                library=f"transformers {transformers.__version__}",
                processor_class=type(proc).__name__,
                call=f"AutoImageProcessor.from_pretrained(dir, backend='pil') -> {type(proc).__name__}; "
                     "proc(images=PIL RGB image, return_tensors='np')",
                saved_image_processor_type=json.load(open(os.path.join(mdir, "preprocessor_config.json")))
                .get("image_processor_type")),
            top1=top1, logit_spread=quality, weight_keys=keys, safetensors_metadata=meta)
        entry["notes"] = hf_notes(spec, mdir)
        if spec.get("resized_cases"):
            entry["resized"] = hf_resized(spec, model, proc, pil_rgb, out, log)
        manifest_models.append(entry)
        log(f"model {name}: {os.path.getsize(wpath)} bytes, spread {quality}")

    manifest = OrderedDict(
        generator="tools/make_fixtures.py",
        versions=OrderedDict(torch=torch.__version__, timm=timm.__version__, transformers=transformers.__version__,
                             Pillow=PIL.__version__, numpy=np.__version__, torchvision=torchvision.__version__,
                             safetensors=safetensors.__version__, pypng=png.__version__,
                             python=sys.version.split()[0]),
        conventions=CONVENTIONS,
        images=images,
        models=manifest_models,
    )
    write_json(os.path.join(out, "manifest.json"), manifest)
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(README)

    total = 0
    for root, _, files in os.walk(out):
        for fn in files:
            total += os.path.getsize(os.path.join(root, fn))
    log(f"total fixtures size: {total} bytes")
    assert total < 4 * 1024 * 1024, "fixtures too large"


def imagenet_names():
    info = timm.data.ImageNetInfo()
    return [info.index_to_description(i) for i in range(1000)]


def top1_of(name, ref, cases, labels):
    """{case: [argmax index, label name or null]}; the cases must not all give the same class."""
    out = OrderedDict()
    for c in cases:
        i = int(torch.argmax(ref[f"logits.{c}"]))
        out[c] = [i, labels[i] if labels else None]
    assert len({v[0] for v in out.values()}) >= 2, f"{name}: every case has the same top-1 class"
    return out


def jsonable(d):
    return json.loads(json.dumps(d, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


def logit_quality(name, logits: np.ndarray):
    """std across images (per class, averaged) vs std across classes (per image, averaged)."""
    across_images = float(logits.std(axis=0).mean())
    across_classes = float(logits.std(axis=1).mean())
    ratio = across_images / across_classes
    argmaxes = len(set(np.argmax(logits, axis=1).tolist()))
    assert ratio > 0.25, f"{name}: logits hardly depend on the input: ratio {ratio}"
    assert argmaxes >= 3, f"{name}: classification hardly depends on the input: {argmaxes} distinct argmax"
    return OrderedDict(std_across_images=round(across_images, 4), std_across_classes=round(across_classes, 4),
                       ratio=round(ratio, 3), distinct_argmax_over_all_images=argmaxes,
                       images=int(logits.shape[0]))


def timm_notes(spec, model):
    a = spec["args"]
    n = []
    if not spec["model_args"]:
        n.append("config.json has NO model_args: embed dim / depth / patch / MLP width must be inferred from "
                 "tensor shapes, heads from the architecture name ('tiny' = 3 heads); no label_names")
    else:
        n.append("model_args (every JSON-serialisable VisionTransformer constructor argument) are authoritative; "
                 "the architecture name is not a registered timm model")
    if spec["dtype"] != "float32":
        n.append(f"weights stored as {spec['dtype']}; reference outputs were computed from exactly those values "
                 "converted to float32")
    if spec["cls"] is VisionTransformerDistilled:
        n.append("distilled: tokens [cls, dist, patches]; logits = (head(x[:,0]) + head_dist(x[:,1])) / 2")
    if a.get("init_values"):
        n.append("LayerScale: blocks.N.ls1.gamma / ls2.gamma randomised in U(0.5,1.5) (init_values is only the "
                 "constructor's initial value)")
    if a.get("no_embed_class"):
        n.append("no_embed_class: pos_embed covers only the 16 patch tokens and is added before the prefix "
                 "tokens are prepended")
    if a.get("reg_tokens"):
        n.append(f"reg_token (1,{a['reg_tokens']},D); token order [cls, reg x{a['reg_tokens']}, patches]")
    if a.get("global_pool") == "avg":
        n.append("no class token; global_pool avg over the patch tokens, then fc_norm; norm is Identity (no "
                 "norm.* keys). Rollout map = mean of the patch rows of the rollout over the patch columns / max; "
                 "last = mean over patch query rows of the last layer's attention over patch keys")
    if a["num_classes"] == 1000:
        n.append("1000 classes, no label_names: use the ImageNet-1k names (imageNet1kLabels)")
    n.append("LayerNorm eps 1e-6; GELU erf")
    return "; ".join(n)


def hf_notes(spec, mdir):
    cfg = json.load(open(os.path.join(mdir, "config.json")))
    n = [f"layer_norm_eps {cfg['layer_norm_eps']}", f"hidden_act {cfg['hidden_act']}",
         "config.json written by save_pretrained: 'dtype' (not 'torch_dtype'), id2label has string keys",
         "preprocessor_config.json says image_processor_type '" +
         json.load(open(os.path.join(mdir, 'preprocessor_config.json')))['image_processor_type'] +
         "' (save_pretrained strips the 'Pil' suffix); AutoImageProcessor without backend='pil' would give the "
         "torchvision-backend class; fixtures use the PIL backend"]
    if spec["kind"] == "deit":
        n.append("prefix deit.; tokens [cls, distillation, patches]; logits = (cls_classifier + "
                 "distillation_classifier) / 2; processor: PIL resize to 36x36 (bicubic), center crop 32 with "
                 "top = (36-32)//2, left = (36-32)//2 (floor division)")
    else:
        n.append("ViTForImageClassification has no pooler (no vit.pooler.* keys); classifier on token 0 after "
                 "vit.layernorm; processor: squash-resize to size (PIL, resample), *1/255 in float64 -> float32, "
                 "(x-mean)/std in float32")
    return "; ".join(n)


def timm_resized(spec, cls, sd32, pcfg, out, log):
    name = spec["name"]
    args48 = dict(spec["args"], img_size=48)
    model = cls(**args48).eval()
    pcfg48 = dict(pcfg, input_size=[3, 48, 48])
    model.pretrained_cfg = pcfg48
    # the state dict as read from disk, converted to float32 (what a float32 engine holds), through timm's filter
    filtered = checkpoint_filter_fn(OrderedDict(sd32), model)
    model.load_state_dict(filtered)
    pos = model.pos_embed.detach().clone()
    # check the call we document
    nprefix = 0 if spec["args"].get("no_embed_class") else model.num_prefix_tokens
    pe = sd32["pos_embed"]
    grid = pe[:, nprefix:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    manual = F.interpolate(grid, size=(6, 6), mode="bicubic", align_corners=None, antialias=True)
    manual = torch.cat([pe[:, :nprefix], manual.permute(0, 2, 3, 1).reshape(1, 36, -1)], dim=1)
    assert torch.equal(manual, pos), "timm resample differs from the documented call"
    noaa = F.interpolate(grid, size=(6, 6), mode="bicubic", align_corners=False, antialias=False)
    diff_noaa = float((noaa.permute(0, 2, 3, 1).reshape(1, 36, -1) - pos[:, nprefix:]).abs().max())
    data_cfg = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**data_cfg)
    ref = OrderedDict(pos_embed=pos.contiguous())
    for case in spec["resized_cases"]:
        img = Image.fromarray(load_decoded(out, case), "RGB")
        pv = transform(img)
        with torch.no_grad():
            logits = model(pv[None])[0]
        ref[f"pixel_values.{case}"] = pv.contiguous()
        ref[f"logits.{case}"] = logits.contiguous()
    note = ""
    if spec["dtype"] != "float32":
        # what timm's own pretrained loader would do with the raw bfloat16 state dict: resample in float32,
        # cast the result back to the checkpoint dtype
        native = checkpoint_filter_fn(OrderedDict((k, v.to(torch.bfloat16)) for k, v in sd32.items()), model)
        d = float((native["pos_embed"].float() - pos).abs().max())
        note = (f" Weights are {spec['dtype']}: these fixtures resample the float32-converted pos_embed; timm's own "
                f"loader, fed the raw {spec['dtype']} state dict, casts the resampled pos_embed back to "
                f"{spec['dtype']} (max abs difference {d:.3g}).")
    save_file(ref, os.path.join(out, "reference", f"{name}.resized.safetensors"))
    log(f"  resized {name}: pos_embed {tuple(pos.shape)} (vs no-antialias max diff {diff_noaa:.3g})")
    return OrderedDict(
        file=f"reference/{name}.resized.safetensors", image_size=48, grid=[6, 6], cases=spec["resized_cases"],
        pos_embed_shape=list(pos.shape),
        method=("VisionTransformer(img_size=48, ...) + timm.models.vision_transformer.checkpoint_filter_fn(state_dict, "
                "model) -> timm.layers.resample_abs_pos_embed(pos_embed, new_size=(6,6), old_size=(4,4), "
                f"num_prefix_tokens={nprefix}, interpolation='bicubic', antialias=True) which splits off the first "
                f"{nprefix} rows (prefix tokens{' - none: no_embed_class' if nprefix == 0 else ''}), reshapes the rest "
                "to [1,D,4,4] and calls torch.nn.functional.interpolate(x, size=(6,6), mode='bicubic', "
                "align_corners=None (=False), antialias=True) in float32 (the antialiased bicubic kernel, a=-0.5), "
                "then concatenates the prefix rows back. Preprocessing: create_transform at input_size 48, "
                f"crop_pct 0.875 (resize shorter side to floor(48/0.875)=54). Max abs difference to the same call "
                f"with antialias=False (a=-0.75): {diff_noaa:.3g}." + note))


def hf_resized(spec, model, proc, pil_rgb, out, log):
    name = spec["name"]
    emb = model.vit.embeddings
    D = spec["config"]["hidden_size"]
    with torch.no_grad():
        pos = emb.interpolate_pos_encoding(torch.zeros(1, 1 + 36, D), 48, 48).detach().clone()
    pe = emb.position_embeddings.detach()
    grid = pe[:, 1:].reshape(1, 4, 4, D).permute(0, 3, 1, 2)
    manual = F.interpolate(grid, size=(6, 6), mode="bicubic", align_corners=False)
    manual = torch.cat([pe[:, :1], manual.permute(0, 2, 3, 1).reshape(1, 36, D)], dim=1)
    assert torch.equal(manual, pos), "HF interpolation differs from the documented call"
    aa = F.interpolate(grid, size=(6, 6), mode="bicubic", align_corners=False, antialias=True)
    diff_aa = float((aa.permute(0, 2, 3, 1).reshape(1, 36, D) - pos[:, 1:]).abs().max())
    ref = OrderedDict(pos_embed=pos.contiguous())
    size48 = {"height": 48, "width": 48}
    for case in spec["resized_cases"]:
        pv = torch.from_numpy(proc(images=pil_rgb[case], size=size48, return_tensors="np")["pixel_values"][0])
        assert pv.shape == (3, 48, 48)
        with torch.no_grad():
            logits = model(pv[None], interpolate_pos_encoding=True).logits[0]
            # the embeddings output must equal patches + our pos_embed
            captured = []
            hk = emb.register_forward_hook(lambda m, i, o: captured.append(o))
            model(pv[None], interpolate_pos_encoding=True)
            hk.remove()
            patches = emb.patch_embeddings(pv[None])
            expect = torch.cat([emb.cls_token, patches], dim=1) + pos
            assert torch.allclose(captured[0], expect, atol=1e-6)
        ref[f"pixel_values.{case}"] = pv.contiguous()
        ref[f"logits.{case}"] = logits.contiguous()
    save_file(ref, os.path.join(out, "reference", f"{name}.resized.safetensors"))
    log(f"  resized {name}: pos_embed {tuple(pos.shape)} (vs antialias max diff {diff_aa:.3g})")
    return OrderedDict(
        file=f"reference/{name}.resized.safetensors", image_size=48, grid=[6, 6], cases=spec["resized_cases"],
        pos_embed_shape=list(pos.shape),
        method=("model(pixel_values, interpolate_pos_encoding=True) -> ViTEmbeddings.interpolate_pos_encoding: "
                "class row [:, :1] split off, patch rows reshaped to [1,4,4,D] -> permute to [1,D,4,4], "
                "torch.nn.functional.interpolate(x, size=(48//8, 48//8)=(6,6), mode='bicubic', align_corners=False) "
                "(antialias left at its default False: plain bicubic, a=-0.75; size=, not scale_factor), permute back, "
                "concat class row. Processor: proc(images, size={'height':48,'width':48}) (squash resize). "
                f"Max abs difference to the antialiased (timm-style, a=-0.5) call: {diff_aa:.3g}."))


def load_decoded(out, name):
    return load_file(os.path.join(out, "decoded.safetensors"))[name].numpy()


CONVENTIONS = OrderedDict(
    decoded=("decoded.safetensors: tensor <image> = U8 [H,W,3] RGB samples = np.asarray(PIL.Image.open(f)"
             ".convert('RGB')), except 16-bit gray where it is the high byte (v >> 8) of the raw samples; "
             "<image>.background_10_20_30 (images with alpha or tRNS) = (c*a + bg*(255-a) + 127) // 255 with the "
             "8-bit reduced c and a (16-bit: v >> 8), bg = (10,20,30); palette alpha from tRNS (missing entries "
             "255); gray/RGB tRNS: the matching raw colour has a = 0, else 255."),
    model_input=("every model's input image is PIL.Image.fromarray(decoded[<image>], 'RGB') (identical to "
                 "Image.open(f).convert('RGB') except for 16-bit gray)"),
    reference=("reference/<model>.safetensors (F32): pixel_values.<case> [3,S,S]; logits.<case> [classes] (distilled: "
               "mean of both heads); attentions.<case> [L,H,N,N] post-softmax; rollout.<case>.<fusion>.<discard> "
               "[GH*GW] for (mean,0) (mean,0.5) (max,0) (min,0); last.<case> [H, GH*GW]"),
    rollout=("float64 from the float32 attentions: result = I; per layer A = fuse heads (mean/max/min); if discard>0: "
             "flat = A.reshape(-1) (view), k = int(flat.size*discard), idx = argsort(flat, stable)[:k], drop idx 0, "
             "flat[idx] = 0; A = A + I; A = A / A.sum(-1, keepdims=True) (rows); result = A @ result. Map = "
             "result[0, P:] / max (P = prefix tokens). No class token (avgpool): mean over rows P..N-1 of "
             "result[:, P:], / max. The index-0 protection applies to flat index 0 even without a class token."),
    last=("last.<case> [H, GH*GW] = last layer attention, query row 0 (CLS) over the patch keys (prefix columns "
          "skipped); avgpool model: mean over the patch query rows; not normalised"),
    timm_preprocessing=("timm.data.create_transform(**resolve_data_config({}, model=model)) (eval): "
                        "torchvision Resize(floor(S/crop_pct)) = shorter side to floor(32/0.875)=36, long side "
                        "int(36*long/short) (truncated), PIL BICUBIC (antialiased, Pillow's own resize); "
                        "CenterCrop(S): top = int(round((H-S)/2)), left = int(round((W-S)/2)) with Python's "
                        "round (half to even: 12.5 -> 12); ToTensor (/255 float32); Normalize (x-mean)/std float32"),
)


README = """# Reference fixtures for ViTKit tests

Generated by `tools/make_fixtures.py` (deterministic, seeded, no downloads; random weights only):

    .venv-tools/bin/python tools/make_fixtures.py            # writes Tests/ViTKitTests/Resources/fixtures

Do not edit by hand. Versions of the reference libraries are in `manifest.json` (`versions`).
Re-running reproduces byte-identical files (same package versions; torch runs single-threaded).
The ImageNet-1k label list (`Sources/ViTKit/Checkpoint/ImageNetLabels.swift`) comes from
`tools/make_imagenet_labels.py`.

## Files
- `manifest.json` — `images` (one entry per PNG: colour type, bit depth, interlace, size, Pillow mode, note),
  `models` (one per checkpoint: format, variant, prefix tokens, grid, classes, cases, weight dtype, every
  on-disk tensor name with dtype and shape in `weight_keys`, preprocessing facts, `resized` block for the
  48x48 runs, notes), `conventions` (exact definitions of every reference tensor).
- `images/*.png` — hand-encoded PNGs: gray 1/2/4/8/16, RGB 8/16, palette 8/4 bit with and without tRNS,
  gray+alpha 8/16, RGBA 8/16, gray/RGB + tRNS, Adam7 (RGB8, gray4, palette8, palette4+tRNS 5x3, RGBA16),
  gAMA+cHRM and iCCP files (to be ignored), all five row filters, a file with split IDAT chunks.
- `decoded.safetensors` — `<image>`: U8 [H,W,3] expected RGB samples (= Pillow `convert("RGB")`, except
  16-bit gray = high byte `v >> 8`); `<image>.background_10_20_30`: U8 [H,W,3] alpha composite over
  (10,20,30), `(c*a + bg*(255-a) + 127) // 255` on 8-bit values (images with alpha channel or tRNS).
- `models/<name>/` — timm: `config.json` (Hub style) + `model.safetensors` (state_dict keys; F32, F16 for
  `timm_vit_noargs`, BF16 for `timm_deit3_layerscale`). Hugging Face: `config.json`, `model.safetensors`,
  `preprocessor_config.json` exactly as `save_pretrained` wrote them.
- `reference/<name>.safetensors` (all F32), per case `C` (an image name):
  - `pixel_values.C` [3,32,32] — the library's preprocessing (timm eval transform / HF PIL-backend processor)
    applied to `Image.fromarray(decoded[C])`.
  - `logits.C` [classes] — eval-mode logits (distilled models: mean of the two heads).
  - `attentions.C` [L,H,N,N] — post-softmax attention of every layer and head.
  - `rollout.C.<fusion>.<discard>` [16] — attention rollout, fusion mean/max/min, discard 0 (and 0.5 for mean),
    normalised to max 1 (definition in `manifest.json` → `conventions.rollout`).
  - `last.C` [H,16] — last layer, CLS query row over patch keys (avgpool model: mean over patch query rows).
- `reference/<name>.resized.safetensors` (timm_vit, timm_deit3_layerscale, hf_vit) — the same weights run at
  48x48 (6x6 grid): `pos_embed` [1,tokens,D] = the resampled position embedding the library used;
  `pixel_values.C` [3,48,48]; `logits.C`. The exact resampling call is in the manifest (`resized.method`).
"""


if __name__ == "__main__":
    main()
