#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets from the committed test inputs: python3 Fuzz/make_seed_corpus.py

  corpus/safetensors/  every small .safetensors of the broken corpus, and the fixture checkpoints cut to their
                       header plus the first 4 KB of data (the fuzzer's -max_len is 64 KB)
  corpus/config/       one input per checkpoint the config target knows (selector byte = its index, see
                       FuzzConfig.swift), with its own config.json (+ NUL + preprocessor_config.json), and the
                       broken corpus's configs against the tiny controls
  corpus/png/          the fixture PNGs and the broken PNGs (the 49 KB bomb included)
  corpus/jpeg/         the JPEG corpus of tools/make_jpeg_fixtures.py (images, orientation files, broken files)
  corpus/overlay/      a few encoder-path inputs (layout in FuzzOverlay.swift): 28x28 as the default model sees
                       it, 1x4500 and 4500x1 (the overlay that crashed the writer), 1x1, the budget's edges, maps
                       with NaN and infinities
Run tools/make_broken_inputs.py first if the broken corpus changed. Names are content hashes, as libFuzzer's.
"""
import hashlib
import math
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests/ViTKitTests/Resources/fixtures")
BROKEN = os.path.join(ROOT, "Tests/ViTKitTests/Resources/broken")
JPEG = os.path.join(ROOT, "Tests/ViTKitTests/Resources/jpeg")
OUT = os.path.join(ROOT, "Fuzz/corpus")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(target, data):
    folder = os.path.join(OUT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def overlay_seed(width, height, grid=(7, 7), flags=0, resize=28, crop=(28, 28), alpha=128, side=1024,
                 pixels=4096, heads=4, seed=7, sizes=(1, 1), values=()):
    """One input of the overlay target; sizes are the values the harness derives (1 + v % n)."""
    header = struct.pack("<HHBBBBBBHHBB", width - 1, height - 1, (grid[0] - 1) | (grid[1] - 1) << 4, flags,
                         resize - 1, crop[0] - 1, crop[1] - 1, alpha, (side - 1) % 1024, (pixels - 1) % 4096,
                         heads - 1, seed)
    return header + struct.pack("<II", sizes[0] - 1, sizes[1] - 1) + b"".join(struct.pack("<f", v) for v in values)


def overlay_seeds():
    standard, grid = 16, 32
    ramp = [float(i % 7) / 6 for i in range(49)]
    return [
        overlay_seed(28, 28, values=ramp),
        overlay_seed(28, 28, flags=standard | grid | 8, values=ramp),
        overlay_seed(1, 4096, flags=standard, sizes=(1, 4500), values=ramp),
        overlay_seed(4096, 1, flags=standard | grid, sizes=(4500, 1), values=ramp),
        overlay_seed(1, 1, flags=standard | 64, grid=(1, 1), sizes=(2**31 - 1, 1), values=[1.0]),
        overlay_seed(60, 60, flags=2, side=8, pixels=64, sizes=(8193, 2048), values=ramp),
        overlay_seed(64, 60, flags=3 | grid, side=100, pixels=4000, heads=9, sizes=(4097, 4097),
                     values=[math.nan, math.inf, -math.inf, -1.0, 0.0, 5e-324, 1.0]),
    ]


def jpeg_seeds():
    """The JPEG corpus of tools/make_jpeg_fixtures.py, images and broken files (all under 64 KB)."""
    for folder in [os.path.join(JPEG, "images"), os.path.join(JPEG, "broken")]:
        for name in sorted(os.listdir(folder)):
            yield read(os.path.join(folder, name))


def main():
    for target in ["safetensors", "config", "png", "overlay", "jpeg"]:
        shutil.rmtree(os.path.join(OUT, target), ignore_errors=True)
    models = sorted(os.listdir(os.path.join(FIXTURES, "models")))
    checkpoints = [os.path.join(FIXTURES, "models", m) for m in models] + \
        [os.path.join(BROKEN, "checkpoints", c) for c in ["valid_timm", "valid_hf"]]
    assert len(checkpoints) == 12, checkpoints
    for folder in checkpoints:
        data = read(os.path.join(folder, "model.safetensors"))
        header_end = 8 + int.from_bytes(data[:8], "little")
        write("safetensors", data[:header_end + 4096] if len(data) > 65536 else data)
    for dirpath, _, names in sorted(os.walk(os.path.join(BROKEN, "checkpoints"))):
        for name in sorted(names):
            data = read(os.path.join(dirpath, name))
            if name.endswith(".safetensors") and len(data) <= 65536:
                write("safetensors", data)
    for index, folder in enumerate(checkpoints):
        data = bytes([index]) + read(os.path.join(folder, "config.json"))
        preprocessor = os.path.join(folder, "preprocessor_config.json")
        if os.path.exists(preprocessor):
            data += b"\0" + read(preprocessor)
        write("config", data)
    timm_index, hf_index = 10, 11
    for case in sorted(os.listdir(os.path.join(BROKEN, "checkpoints"))):
        folder = os.path.join(BROKEN, "checkpoints", case)
        if not os.path.exists(os.path.join(folder, "config.json")):
            continue
        data = read(os.path.join(folder, "config.json"))
        preprocessor = os.path.join(folder, "preprocessor_config.json")
        if os.path.exists(preprocessor):
            write("config", bytes([hf_index]) + data + b"\0" + read(preprocessor))
        else:
            write("config", bytes([hf_index if case.startswith("hf_") else timm_index]) + data)
    for folder in [os.path.join(FIXTURES, "images"), os.path.join(BROKEN, "png")]:
        for name in sorted(os.listdir(folder)):
            write("png", read(os.path.join(folder, name)))
    for data in overlay_seeds():
        write("overlay", data)
    for data in jpeg_seeds():
        write("jpeg", data)
    for target in ["safetensors", "config", "png", "overlay", "jpeg"]:
        folder = os.path.join(OUT, target)
        size = sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))
        print(f"{target}: {len(os.listdir(folder))} seeds, {size} bytes")


if __name__ == "__main__":
    main()
