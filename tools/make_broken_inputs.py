#!/usr/bin/env python3
"""Write the corpus of hostile inputs that Tests/ViTKitTests/HostileInputTests.swift runs through the decoder,
the checkpoint loader and the CLI.

Run from the repository root (pure standard library, no third-party packages):

    python3 tools/make_broken_inputs.py [--out Tests/ViTKitTests/Resources/broken]

Deterministic: small images are stored with uncompressed ("stored") deflate blocks and the only compressed
stream (the decompression bomb: a run of zeros at level 9) does not depend on the zlib version in practice, so
two runs write byte-identical files.  The whole corpus stays well under 1 MB.

Layout (a contract with the Swift tests):
  manifest.json         {"pngs": [...], "checkpoints": [...]}; every case has
                          name    unique identifier
                          path    relative to this folder (a PNG file, or a checkpoint folder)
                          expect  a substring the one-line error message must contain
                          names   (checkpoints) the file inside the folder the message must name ("" = the folder)
                          error   the ViTError case expected (imageDecodingFailed, imageTooLarge, invalidCheckpoint,
                                  invalidConfiguration, missingWeight, shapeMismatch, unusedWeights, modelNotFound,
                                  fileUnreadable)
                          what    a human description
                        plus "valid": the controls built the same way, which must load ("png", "checkpoints"), and
                        "hostile_pngs": valid files built to exhaust a careless decoder, which must decode fast.
  png/*.png             broken PNGs (and valid.png, the control they are all derived from)
  checkpoints/<name>/   model.safetensors + config.json (+ preprocessor_config.json), broken in one way each;
                        checkpoints/valid_timm and checkpoints/valid_hf are the tiny controls.
  regressions/          inputs found by fuzzing (Fuzz/), each also listed in the manifest.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------------- PNG pieces
def chunk(kind: bytes, data: bytes, crc: int | None = None, length: int | None = None) -> bytes:
    """One chunk: length, type, data, CRC (CRC and length may be forced to wrong values)."""
    if crc is None:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data) if length is None else length) + kind + data + struct.pack(">I", crc)


def ihdr(width: int, height: int, depth: int = 8, color: int = 2, compression: int = 0, filtering: int = 0,
         interlace: int = 0) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color, compression, filtering, interlace))


def stored(raw: bytes) -> bytes:
    """A zlib stream of stored (uncompressed) blocks: identical bytes on every zlib."""
    return zlib.compress(raw, 0)


def rgb_rows(width: int, height: int, filter_byte: int = 0) -> bytes:
    out = bytearray()
    for y in range(height):
        out.append(filter_byte)
        for x in range(width):
            out += bytes(((x * 31) & 255, (y * 29) & 255, ((x + y) * 13) & 255))
    return bytes(out)


def iend() -> bytes:
    return chunk(b"IEND", b"")


def valid_png_parts() -> list[bytes]:
    """The control image, 8x8 RGB8, with its image data split over two IDAT chunks."""
    z = stored(rgb_rows(8, 8))
    half = len(z) // 2
    return [PNG_SIGNATURE, ihdr(8, 8), chunk(b"IDAT", z[:half]), chunk(b"IDAT", z[half:]), iend()]


def png(*chunks: bytes) -> bytes:
    return PNG_SIGNATURE + b"".join(chunks)


def image_data(width: int, height: int, bytes_per_row: int) -> bytes:
    return chunk(b"IDAT", stored(b"".join(b"\x00" + bytes(bytes_per_row) for _ in range(height))))


def png_cases() -> list[tuple[str, bytes, str, str, str]]:
    """(name, bytes, expected substring, expected error, description)"""
    parts = valid_png_parts()
    valid = b"".join(parts)
    cases: list[tuple[str, bytes, str, str, str]] = []

    def add(name, data, expect, what, error="imageDecodingFailed"):
        cases.append((name, data, expect, error, what))

    add("empty", b"", "file is empty", "zero bytes")
    add("not_png_text", b"hello, I am not a picture\n", "not a PNG file (bad signature)", "a text file named .png")
    add("not_png_jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9",
        "not a PNG file (bad signature)", "a JPEG header")
    add("signature_prefix", PNG_SIGNATURE[:5], "not a PNG file", "the first 5 bytes of the signature")
    add("signature_corrupt_crlf", PNG_SIGNATURE[:4] + b"\n\x1a\n" + valid[7:], "not a PNG file",
        "a signature mangled by a text-mode transfer (CRLF -> LF)")

    # Truncated at every chunk boundary (after the signature, IHDR, first IDAT, second IDAT = no IEND).
    offset = 0
    for index, part in enumerate(parts[:-1]):
        offset += len(part)
        label = ["signature", "IHDR", "IDAT1", "IDAT2"][index]
        add(f"truncated_after_{label}", valid[:offset], f"file is truncated (unexpected end of data after {offset} bytes)",
            f"ends right after the {label} {'chunk' if index else ''}".strip() + f" ({offset} bytes)")
    # ... and inside chunks: the length field, the type, the data, the CRC.
    starts = [sum(len(p) for p in parts[:i]) for i in range(len(parts))]
    for index, (label, inside) in enumerate([("IHDR", 2), ("IHDR", 6), ("IHDR", 15), ("IHDR", 23),
                                              ("IDAT1", 30), ("IDAT2", 9), ("IDAT2", len(parts[3]) - 2),
                                              ("IEND", 4), ("IEND", 10)]):
        part_index = ["IHDR", "IDAT1", "IDAT2", "IEND"].index(label) + 1
        end = starts[part_index] + inside
        add(f"truncated_in_{label}_at_{inside}", valid[:end], f"file is truncated (unexpected end of data after {end} bytes)",
            f"ends {inside} bytes into the {label} chunk ({end} bytes)")

    # Bad CRCs on each critical chunk.
    for index, label in [(1, "IHDR"), (2, "IDAT"), (4, "IEND")]:
        broken = bytearray(valid)
        crc_at = starts[index] + len(parts[index]) - 1
        broken[crc_at] ^= 0x55
        add(f"bad_crc_{label}", bytes(broken), f"{label}: CRC error", f"the {label} chunk's CRC is wrong")
    flipped = bytearray(valid)
    flipped[starts[2] + 8 + 10] ^= 0x01  # one bit of the image data flipped: the IDAT CRC catches it
    add("bit_flip_in_IDAT", bytes(flipped), "IDAT: CRC error", "one flipped bit inside the image data")

    add("missing_IEND", b"".join(parts[:-1]), "truncated", "no IEND chunk (the file ends after the last IDAT)")
    add("IEND_then_garbage_missing", b"".join(parts[:-1]) + chunk(b"tEXt", b"Comment\x00no IEND follows"),
        "truncated", "a tEXt chunk where IEND should be, then the end of the file")

    # IHDR problems.
    add("zero_width", png(ihdr(0, 8), parts[2], parts[3], iend()), "Invalid IHDR data (Image width is zero in IHDR)", "IHDR width 0")
    add("zero_height", png(ihdr(8, 0), parts[2], parts[3], iend()), "Invalid IHDR data (Image height is zero in IHDR)", "IHDR height 0")
    add("width_over_2_31", png(ihdr(0x80000000, 1), image_data(1, 1, 3), iend()), "PNG unsigned integer out of range",
        "IHDR width 2^31 (PNG's limit is 2^31-1)")
    add("absurd_100000x100000", png(ihdr(100000, 100000), image_data(1, 1, 3), iend()),
        "100000×100000 = 10000000000 pixels, over the limit of 100000000",
        "IHDR says 100000x100000, almost no data", "imageTooLarge")
    # The decompression bomb: 20000x20000 1-bit gray = 400 megapixels; 50 MB of zero rows deflate to ~49 KB.
    bomb_rows = b"".join(b"\x00" + bytes(2500) for _ in range(20000))
    add("bomb_400_megapixels", png(ihdr(20000, 20000, 1, 0), chunk(b"IDAT", zlib.compress(bomb_rows, 9)), iend()),
        "20000×20000 = 400000000 pixels, over the limit of 100000000",
        "decompression bomb: a ~49 KB file holding 400 megapixels of zeros (1.2 GB as RGB)", "imageTooLarge")
    for depth, color, name in [(4, 2, "rgb_depth4"), (16, 3, "palette_depth16"), (3, 0, "gray_depth3"),
                               (1, 6, "rgba_depth1"), (2, 4, "gray_alpha_depth2"), (0, 0, "depth0")]:
        add(f"bad_depth_{name}", png(ihdr(8, 8, depth, color), parts[2], parts[3], iend()),
            "Invalid color type/bit depth combination in IHDR" if depth in (4, 16, 1, 2) and color != 0
            else "Invalid IHDR data (Invalid bit depth in IHDR)",
            f"bit depth {depth} with colour type {color}")
    add("bad_color_type_5", png(ihdr(8, 8, 8, 5), parts[2], parts[3], iend()), "Invalid IHDR data (Invalid color type in IHDR)", "colour type 5")
    add("bad_color_type_7", png(ihdr(8, 8, 8, 7), parts[2], parts[3], iend()), "Invalid IHDR data (Invalid color type in IHDR)", "colour type 7")
    add("bad_interlace_method", png(ihdr(8, 8, interlace=2), parts[2], parts[3], iend()),
        "Unknown interlace method in IHDR", "interlace method 2")
    add("bad_compression_method", png(ihdr(8, 8, compression=1), parts[2], parts[3], iend()),
        "Unknown compression method in IHDR", "compression method 1")
    add("bad_filter_method", png(ihdr(8, 8, filtering=1), parts[2], parts[3], iend()),
        "Unknown filter method in IHDR", "filter method 1 (only 0 exists)")
    add("IHDR_too_short", png(chunk(b"IHDR", b"\x00\x00\x00\x08\x00\x00\x00\x08\x08"), parts[2], iend()),
        "IHDR: invalid", "a 9-byte IHDR (13 needed)")

    # Chunk order and missing chunks.
    palette_rows = b"".join(b"\x00" + bytes(8) for _ in range(8))
    add("palette_without_PLTE", png(ihdr(8, 8, 8, 3), chunk(b"IDAT", stored(palette_rows)), iend()),
        "IDAT: Missing PLTE before IDAT", "colour type 3 (palette) with no PLTE chunk")
    add("PLTE_too_long", png(ihdr(8, 8, 8, 3), chunk(b"PLTE", bytes(3 * 300)), chunk(b"IDAT", stored(palette_rows)),
                             iend()), "PLTE: invalid", "a PLTE with 300 entries (at most 256)")
    add("IDAT_before_IHDR", png(parts[2], parts[1], parts[3], iend()), "IDAT: Missing IHDR before IDAT",
        "the first chunk is IDAT")
    add("no_IDAT", png(parts[1], iend()), "IEND: out of place", "IHDR then IEND, no image data")
    add("unknown_critical_chunk", png(parts[1], chunk(b"QWRT", b"1234"), parts[2], parts[3], iend()),
        "QWRT: unhandled critical chunk", "an unknown critical chunk (upper-case first letter)")
    add("chunk_length_past_end", png(parts[1], chunk(b"IDAT", parts[2][8:-4], length=0x7FFFFF00)), "file is truncated (unexpected end of data after 150 bytes)",
        "an IDAT whose length field says 2 GB")
    add("chunk_length_over_2_31", png(parts[1], chunk(b"IDAT", parts[2][8:-4], length=0xFFFFFFF0)),
        "PNG unsigned integer out of range", "a length field above 2^31-1")

    # Image data problems.
    short = stored(rgb_rows(8, 3))  # a complete zlib stream holding 3 of the 8 rows
    add("IDAT_too_short", png(parts[1], chunk(b"IDAT", short), iend()), "Not enough image data",
        "a complete zlib stream with 3 of 8 rows")
    add("IDAT_not_zlib", png(parts[1], chunk(b"IDAT", b"this is not a zlib stream at all"), iend()),
        "IDAT: incorrect header check", "IDAT data that is not a zlib stream")
    add("IDAT_zlib_cut", png(parts[1], chunk(b"IDAT", zlib.compress(rgb_rows(8, 8), 9)[:20]), iend()),
        "Not enough image data", "a deflate stream cut after 20 bytes")
    add("bad_row_filter", png(parts[1], chunk(b"IDAT", stored(rgb_rows(8, 8, filter_byte=9))), iend()),
        "bad adaptive filter value", "row filter type 9 (only 0-4 exist)")
    return cases


def hostile_valid_pngs() -> list[tuple[str, bytes, int, int, str]]:
    """Valid files built to exhaust a careless decoder: they must decode, fast and in little memory."""
    parts = valid_png_parts()
    text = zlib.compress(b"a" * (15 << 20), 9)  # 15 MB of text in a ~15 KB zTXt chunk
    bomb = b"".join(chunk(b"zTXt", b"Comment%d\x00\x00" % i + text) for i in range(6))
    return [("text_chunk_bomb", parts[0] + parts[1] + bomb + b"".join(parts[2:]), 8, 8,
             "six zTXt chunks of 15 MB text each (~92 KB file): skipped, not inflated and kept")]


# ------------------------------------------------------------------------------------------------ safetensors
def f32(values) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def numel(shape) -> int:
    return math.prod(shape)


def tensor_values(name: str, shape) -> list[float]:
    """Deterministic small weights: LayerNorm weights 1, everything else a smooth pattern."""
    n = numel(shape)
    if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight" \
            or name.endswith("layernorm_before.weight") or name.endswith("layernorm_after.weight") \
            or name.endswith("layernorm.weight"):
        return [1.0] * n
    seed = sum(map(ord, name))
    return [round(0.05 * math.sin(0.37 * i + seed), 6) for i in range(n)]


def safetensors_file(tensors: list[tuple[str, str, list[int], bytes]], metadata: dict | None = None,
                     header_override: dict | None = None) -> bytes:
    """tensors: (name, dtype, shape, data); offsets are laid out in order. header_override edits entries."""
    header: dict = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    data = b""
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    if header_override:
        for key, value in header_override.items():
            if value is None:
                header.pop(key, None)
            else:
                header[key] = value
    text = json.dumps(header, separators=(",", ":"), sort_keys=False).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


D, DEPTH, HEADS, MLP, PATCH, IMG, CLASSES = 8, 1, 2, 16, 4, 8, 3
TOKENS = (IMG // PATCH) ** 2 + 1


def timm_shapes() -> list[tuple[str, list[int]]]:
    shapes = [("cls_token", [1, 1, D]), ("pos_embed", [1, TOKENS, D]),
              ("patch_embed.proj.weight", [D, 3, PATCH, PATCH]), ("patch_embed.proj.bias", [D])]
    for i in range(DEPTH):
        b = f"blocks.{i}"
        shapes += [(f"{b}.norm1.weight", [D]), (f"{b}.norm1.bias", [D]),
                   (f"{b}.attn.qkv.weight", [3 * D, D]), (f"{b}.attn.qkv.bias", [3 * D]),
                   (f"{b}.attn.proj.weight", [D, D]), (f"{b}.attn.proj.bias", [D]),
                   (f"{b}.norm2.weight", [D]), (f"{b}.norm2.bias", [D]),
                   (f"{b}.mlp.fc1.weight", [MLP, D]), (f"{b}.mlp.fc1.bias", [MLP]),
                   (f"{b}.mlp.fc2.weight", [D, MLP]), (f"{b}.mlp.fc2.bias", [D])]
    shapes += [("norm.weight", [D]), ("norm.bias", [D]), ("head.weight", [CLASSES, D]), ("head.bias", [CLASSES])]
    return shapes


def timm_tensors() -> list[tuple[str, str, list[int], bytes]]:
    return [(n, "F32", s, f32(tensor_values(n, s))) for n, s in timm_shapes()]


def hf_tensors() -> list[tuple[str, str, list[int], bytes]]:
    out = [("vit.embeddings.cls_token", [1, 1, D]), ("vit.embeddings.position_embeddings", [1, TOKENS, D]),
           ("vit.embeddings.patch_embeddings.projection.weight", [D, 3, PATCH, PATCH]),
           ("vit.embeddings.patch_embeddings.projection.bias", [D])]
    for i in range(DEPTH):
        layer = f"vit.encoder.layer.{i}"
        for part in ["weight", "bias"]:
            shape = [D, D] if part == "weight" else [D]
            out += [(f"{layer}.layernorm_before.{part}", [D]), (f"{layer}.layernorm_after.{part}", [D])]
            out += [(f"{layer}.attention.attention.{q}.{part}", shape) for q in ["query", "key", "value"]]
            out += [(f"{layer}.attention.output.dense.{part}", shape),
                    (f"{layer}.intermediate.dense.{part}", [MLP, D] if part == "weight" else [MLP]),
                    (f"{layer}.output.dense.{part}", [D, MLP] if part == "weight" else [D])]
    out += [("vit.layernorm.weight", [D]), ("vit.layernorm.bias", [D]),
            ("classifier.weight", [CLASSES, D]), ("classifier.bias", [CLASSES])]
    return [(n, "F32", s, f32(tensor_values(n, s))) for n, s in out]


def timm_config(**changes) -> dict:
    config = {
        "architecture": "vit_test_tiny_patch4_8",
        "num_classes": CLASSES,
        "global_pool": "token",
        "model_args": {"img_size": IMG, "patch_size": PATCH, "embed_dim": D, "depth": DEPTH, "num_heads": HEADS,
                       "mlp_ratio": MLP / D, "class_token": True, "qkv_bias": True},
        "pretrained_cfg": {"input_size": [3, IMG, IMG], "interpolation": "bicubic", "crop_pct": 0.875,
                           "crop_mode": "center", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        "label_names": ["zero", "one", "two"],
    }
    for key, value in changes.items():
        path = key.split("__")
        target = config
        for part in path[:-1]:
            target = target[part]
        if value is None:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
    return config


def hf_config(**changes) -> dict:
    config = {
        "architectures": ["ViTForImageClassification"], "model_type": "vit", "hidden_size": D,
        "num_hidden_layers": DEPTH, "num_attention_heads": HEADS, "intermediate_size": MLP, "image_size": IMG,
        "patch_size": PATCH, "num_channels": 3, "qkv_bias": True, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        "id2label": {"0": "zero", "1": "one", "2": "two"}, "label2id": {"zero": 0, "one": 1, "two": 2},
    }
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


HF_PREPROCESSOR = {
    "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
    "image_processor_type": "ViTImageProcessor", "image_std": [0.5, 0.5, 0.5], "resample": 2,
    "rescale_factor": 0.00392156862745098, "size": {"height": IMG, "width": IMG},
}


def dumps(value) -> bytes:
    return (json.dumps(value, indent=1, ensure_ascii=False) + "\n").encode()


def checkpoint_cases():
    """(name, files {relative: bytes | None (= a folder)}, expect, names, error, description)"""
    timm = timm_tensors()
    hf = hf_tensors()
    valid_weights = safetensors_file(timm)
    valid_config = dumps(timm_config())
    cases = []

    def add(name, expect, names, error, what, weights=valid_weights, config=valid_config, extra=None):
        files = {"model.safetensors": weights}
        if config is not None:
            files["config.json"] = config
        files.update(extra or {})
        cases.append((name, files, expect, names, error, what))

    def header_only(header_bytes: bytes, data: bytes = b"") -> bytes:
        return struct.pack("<Q", len(header_bytes)) + header_bytes + data

    st, bad_st = "model.safetensors", "invalidCheckpoint"
    # --- the safetensors container
    add("st_empty", "file is empty", st, bad_st, "a zero-byte model.safetensors", weights=b"")
    add("st_too_short", "too short for a header", st, bad_st, "5 bytes", weights=b"\x10\x00\x00\x00\x00")
    add("st_header_past_end", "runs past the end of the file", st, bad_st,
        "header length 4096 in a 64-byte file", weights=struct.pack("<Q", 4096) + b"{" + b" " * 55)
    add("st_header_near_2_64", "exceeds the limit of 104857600 bytes", st, bad_st,
        "header length 2^64-16", weights=struct.pack("<Q", 2**64 - 16) + b"{}      ")
    add("st_header_over_limit", "exceeds the limit of 104857600 bytes", st, bad_st,
        "header length 200 MB (file is 16 bytes): refused before reading", weights=struct.pack("<Q", 200 << 20) + b"{}      ")
    add("st_header_not_json", "header is not valid JSON", st, bad_st, "the header is prose",
        weights=header_only(b"this is not JSON at all!"))
    add("st_header_not_utf8", "header is not valid JSON", st, bad_st, "the header is not UTF-8",
        weights=header_only(b'{"a\xff\xfe": 1}   '))
    add("st_header_truncated_json", "header is not valid JSON", st, bad_st, "the JSON stops half way",
        weights=header_only(b'{"head.weight": {"dtype": "F32", "sha'))
    add("st_header_array", "header is not a JSON object", st, bad_st, "the header is a JSON array",
        weights=header_only(b"[1, 2, 3]"))
    add("st_header_deep_nesting", "header is not valid JSON", st, bad_st, "10000 nested arrays",
        weights=header_only(b"[" * 10000 + b"]" * 10000))
    add("st_metadata_not_object", "__metadata__ is not an object", st, bad_st, "__metadata__ is a number",
        weights=safetensors_file(timm, header_override={"__metadata__": 5}))
    add("st_entry_not_object", "entry 'head.bias' is not an object", st, bad_st, "a tensor entry is a string",
        weights=safetensors_file(timm, header_override={"head.bias": "F32"}))
    add("st_no_dtype", "tensor 'head.bias' has no dtype", st, bad_st, "an entry without dtype",
        weights=safetensors_file(timm, header_override={"head.bias": {"shape": [3], "data_offsets": [0, 12]}}))
    add("st_name_with_newline", "tensor 'bad\\nname' has no dtype", st, bad_st,
        "a tensor name with a newline: escaped, the message stays one line",
        weights=safetensors_file(timm, header_override={"bad\nname": {"shape": [1], "data_offsets": [0, 4]}}))
    add("st_shape_long_string", "has an invalid shape", st, bad_st, "a 10000-character string as a dimension: shortened",
        weights=safetensors_file(timm, header_override={"head.bias": {"dtype": "F32", "shape": ["x" * 10000], "data_offsets": [0, 12]}}))
    add("st_unknown_dtype", "unsupported dtype F8_E4M3", st, bad_st, "an FP8 tensor",
        weights=safetensors_file(timm[:-1] + [("head.bias", "F8_E4M3", [3], b"\x00\x00\x00")]))
    add("st_dtype_lowercase", "unsupported dtype f32", st, bad_st, "dtype spelled f32",
        weights=safetensors_file(timm[:-1] + [("head.bias", "f32", [3], bytes(12))]))
    for name, shape, what in [("negative", [-3], "a negative dimension"), ("fraction", [1.5, 2], "a fractional dimension"),
                              ("string", ["3"], "a dimension given as a string"), ("huge", [2**40], "a dimension of 2^40"),
                              ("not_list", 3, "shape is a number")]:
        entry = {"dtype": "F32", "shape": shape, "data_offsets": [0, 12]}
        add(f"st_shape_{name}", "tensor 'head.bias' has " + ("no shape" if name == "not_list" else "an invalid shape"),
            st, bad_st, what, weights=safetensors_file(timm, header_override={"head.bias": entry}))
    size = len(b"".join(t[3] for t in timm))
    for name, offsets, expect, what in [
        ("past_end", [size - 8, size + 4], "outside the", "end offset 4 bytes past the data section"),
        ("reversed", [12, 0], "outside the", "begin after end"),
        ("negative", [-12, 0], "outside the", "a negative begin"),
        ("huge", [0, 18446744073709551615], "invalid data_offsets", "end offset 2^64-1"),
        ("one_number", [0], "invalid data_offsets", "one offset instead of two"),
        ("strings", ["0", "12"], "invalid data_offsets", "offsets given as strings"),
    ]:
        entry = {"dtype": "F32", "shape": [3], "data_offsets": offsets}
        add(f"st_offsets_{name}", expect, st, bad_st, what,
            weights=safetensors_file(timm, header_override={"head.bias": entry}))
    add("st_offsets_overlap", "overlap in the data section", st, bad_st, "head.bias shares bytes with head.weight",
        weights=safetensors_file(timm, header_override={"head.bias": {"dtype": "F32", "shape": [3], "data_offsets": [size - 24, size - 12]}}))
    add("st_shape_bytes_mismatch", "needs 24 bytes but data_offsets span 12", st, bad_st,
        "shape [6] F32 over a 12-byte range",
        weights=safetensors_file(timm, header_override={"head.bias": {"dtype": "F32", "shape": [6], "data_offsets": [size - 12, size]}}))
    add("st_shape_overflow", "overflows", st, bad_st, "shape [2^31-1]*3: the byte count overflows 64 bits",
        weights=safetensors_file(timm, header_override={"head.bias": {"dtype": "F32", "shape": [2147483647] * 3, "data_offsets": [size - 12, size]}}))
    add("st_shape_zero_dim_huge", "needs 0 bytes but data_offsets span 12", st, bad_st,
        "shape [0, 2^31-1, 2^31-1, 2^31-1]: zero bytes, no overflow, but not the 12 bytes given",
        weights=safetensors_file(timm, header_override={"head.bias": {"dtype": "F32", "shape": [0] + [2147483647] * 3, "data_offsets": [size - 12, size]}}))
    add("st_truncated_data", "is the file truncated?", st, bad_st, "the last 100 bytes of tensor data are missing",
        weights=valid_weights[:-100])
    add("st_is_a_directory", "is a directory", st, "fileUnreadable", "model.safetensors is a folder",
        weights=None, extra={"model.safetensors/README": b"a folder, not a file\n"})
    # --- tensors vs. the configuration
    without_head_bias = [t for t in timm if t[0] != "head.bias"]
    add("missing_tensor_head_bias", "missing tensor 'head.bias'", st, "missingWeight", "head.bias is absent",
        weights=safetensors_file(without_head_bias))
    add("missing_tensor_patch_embed", "missing tensor 'patch_embed.proj.weight'", st, "missingWeight",
        "no patch embedding", weights=safetensors_file([t for t in timm if t[0] != "patch_embed.proj.weight"]))
    add("missing_all_tensors", "missing tensor 'patch_embed.proj.weight'", st, "missingWeight",
        "an empty header {}", weights=header_only(b"{}      "))
    add("tensor_wrong_shape", "tensor 'head.weight' has shape [4, 8], expected [3, 8]", st, "shapeMismatch",
        "head.weight has 4 rows; config says 3 classes",
        weights=safetensors_file(timm[:-2] + [("head.weight", "F32", [4, D], f32([0.0] * 4 * D)), ("head.bias", "F32", [3], f32([0.0] * 3))]))
    add("tensor_unused", "1 unexpected tensor(s) the model does not use: 'extra.weight'", st, "unusedWeights",
        "an extra tensor", weights=safetensors_file(timm + [("extra.weight", "F32", [2], f32([1.0, 2.0]))]))
    # --- config.json
    cj, bad_cfg = "config.json", "invalidConfiguration"
    add("config_missing", "no config.json next to model.safetensors", "", "modelNotFound", "no config.json", config=None)
    add("config_empty", "not valid JSON", cj, bad_cfg, "a zero-byte config.json", config=b"")
    add("config_truncated", "not valid JSON", cj, bad_cfg, "config.json cut in half", config=valid_config[:len(valid_config) // 2])
    add("config_not_utf8", "not valid JSON", cj, bad_cfg, "Latin-1 bytes", config=b'{"architecture": "vit_\xe9"}')
    add("config_array", "top level is not a JSON object", cj, bad_cfg, "a JSON array", config=b"[]\n")
    add("config_no_dialect", "neither a timm config", cj, bad_cfg, "an empty object", config=b"{}\n")
    add("config_architecture_number", "field 'architecture' must be a string", cj, bad_cfg, "architecture: 5",
        config=dumps(timm_config(architecture=5)))
    add("config_num_heads_string", "field 'model_args.num_heads' must be a number", cj, bad_cfg, "num_heads: \"two\"",
        config=dumps(timm_config(model_args__num_heads="two")))
    add("config_num_heads_fraction", "field 'model_args.num_heads' must be an integer", cj, bad_cfg, "num_heads: 2.5",
        config=dumps(timm_config(model_args__num_heads=2.5)))
    add("config_num_heads_huge", "field 'model_args.num_heads' must be an integer", cj, bad_cfg, "num_heads: 1e300",
        config=b'{"architecture": "vit", "model_args": {"num_heads": 1e300}}')
    add("config_heads_not_divisor", "hidden size 8 is not divisible by 3 heads", cj, bad_cfg, "8 dims over 3 heads",
        config=dumps(timm_config(model_args__num_heads=3)))
    add("config_depth_negative", "depth is -1", cj, bad_cfg, "depth: -1", config=dumps(timm_config(model_args__depth=-1)))
    add("config_crop_pct_string", "field 'pretrained_cfg.crop_pct' must be a number", cj, bad_cfg, "crop_pct: \"87%\"",
        config=dumps(timm_config(pretrained_cfg__crop_pct="87%")))
    add("config_std_zero", "std > 0", cj, bad_cfg, "std has a zero", config=dumps(timm_config(pretrained_cfg__std=[0.5, 0, 0.5])))
    add("config_global_pool", "global_pool 'max' is not supported", cj, bad_cfg, "global_pool: max",
        config=dumps(timm_config(global_pool="max", model_args__global_pool="max")))
    add("config_label_count", "2 label names for a classifier with 3 classes", cj, bad_cfg, "2 labels, 3 classes",
        config=dumps(timm_config(label_names=["a", "b"])))
    add("config_num_classes_mismatch", "tensor 'head.weight' has shape [3, 8], expected [7, 8]", st, "shapeMismatch",
        "num_classes 7, head has 3 rows", config=dumps(timm_config(num_classes=7)))
    add("config_image_size_not_multiple", "is not a multiple of the patch size 4", cj, bad_cfg, "img_size 10",
        config=dumps(timm_config(model_args__img_size=10)))
    # --- Hugging Face dialect
    hf_weights = safetensors_file(hf)
    hf_pre = dumps(HF_PREPROCESSOR)

    def add_hf(name, expect, names, error, what, config=None, pre=hf_pre, weights=hf_weights):
        extra = {} if pre is None else {"preprocessor_config.json": pre}
        add(name, expect, names, error, what, weights=weights, config=config or dumps(hf_config()), extra=extra)

    add_hf("hf_model_type", "model_type 'bert' is not supported", cj, bad_cfg, "model_type bert",
           config=dumps(hf_config(model_type="bert")))
    add_hf("hf_hidden_act", "field 'hidden_act' 'relu' is not supported", cj, bad_cfg, "hidden_act relu",
           config=dumps(hf_config(hidden_act="relu")))
    add_hf("hf_id2label_bad_key", "field 'id2label.two' must map a class index to a label", cj, bad_cfg,
           "id2label keyed by name", config=dumps(hf_config(id2label={"0": "zero", "1": "one", "two": "2"})))
    add_hf("hf_id2label_newline_key", "field 'id2label.1\\n2' must map a class index to a label", cj, bad_cfg,
           "an id2label key with a newline: escaped", config=dumps(hf_config(id2label={"0": "zero", "1\n2": "one", "2": "two"})))
    add_hf("hf_id2label_count", "id2label has 4 entries for 3 classes", cj, bad_cfg, "4 labels, 3 classes",
           config=dumps(hf_config(id2label={str(i): f"c{i}" for i in range(4)})))
    add_hf("hf_missing_query", "missing tensor 'vit.encoder.layer.0.attention.attention.query.weight'", st, "missingWeight",
           "the query projection is absent",
           weights=safetensors_file([t for t in hf if t[0] != "vit.encoder.layer.0.attention.attention.query.weight"]))
    add_hf("hf_missing_classifier", "missing tensor 'classifier.weight'", st, "missingWeight", "no classifier",
           weights=safetensors_file([t for t in hf if not t[0].startswith("classifier.")]))
    pj = "preprocessor_config.json"
    add_hf("hf_preprocessor_not_json", "not valid JSON", pj, bad_cfg, "preprocessor_config.json is not JSON", pre=b"{size: 8}")
    add_hf("hf_preprocessor_empty", "not valid JSON", pj, bad_cfg, "a zero-byte preprocessor_config.json", pre=b"")
    add_hf("hf_preprocessor_size", "field 'size' must have positive 'height' and 'width'", pj, bad_cfg,
           "size: {shortest_edge: 8}", pre=dumps({**HF_PREPROCESSOR, "size": {"shortest_edge": 8}}))
    add_hf("hf_preprocessor_resample", "field 'resample' 42 is not a PIL filter", pj, bad_cfg, "resample 42",
           pre=dumps({**HF_PREPROCESSOR, "resample": 42}))
    add_hf("hf_preprocessor_output_size", "the processor produces 16×16 images but the model takes 8×8", pj, bad_cfg,
           "size 16x16 for an 8x8 model", pre=dumps({**HF_PREPROCESSOR, "size": {"height": 16, "width": 16}}))
    # --- Regressions found by fuzzing and review (each once crashed, hung or gave a multi-line message); `where`
    # records the code that was fixed.
    def regression(name, where, expect, names, error, what, **kwargs):
        add(name, expect, names, error, what, **kwargs)

    no_depth = timm_config()
    del no_depth["model_args"]["depth"]
    regression("regression_timm_mlp_ratio_huge", "TimmDialect.swift: Int(Double(embedDim) * ratio) traps",
            "field 'model_args.mlp_ratio'", cj, bad_cfg, "mlp_ratio 1e300", config=dumps(timm_config(model_args__mlp_ratio=1e300)))
    regression("regression_timm_img_size_empty", "TimmDialect.swift: size[0] of an empty img_size list traps",
            "field 'model_args.img_size'", cj, bad_cfg, "img_size []", config=dumps(timm_config(model_args__img_size=[])))
    regression("regression_timm_embed_dim_huge", "TensorStore.take: reserveCapacity(2^46 floats) before the shape check",
            "tensor 'patch_embed.proj.weight' has shape [8, 3, 4, 4]", st, "shapeMismatch",
            "embed_dim 2^20, patch 2^10: the expected patch embedding is 3·2^40 floats",
            config=dumps(timm_config(model_args__embed_dim=1 << 20, model_args__patch_size=1 << 10, model_args__img_size=1 << 10,
                                     model_args__num_heads=1, model_args__mlp_ratio=0.5)))
    regression("regression_timm_block_index_overflow", "TimmDialect.swift: blockIndices.max() + 1 overflows",
            "unexpected tensor(s) the model does not use: 'blocks.9223372036854775807.x'", st, "unusedWeights",
            "a tensor named blocks.9223372036854775807.x and no model_args.depth",
            weights=safetensors_file(timm + [("blocks.9223372036854775807.x", "F32", [1], f32([0.0]))]), config=dumps(no_depth))
    regression("regression_timm_head_scalar", "TimmDialect.swift: shape(\"head.weight\")[0] of a 0-d tensor traps",
            "head.weight", st, "shapeMismatch", "head.weight is a 0-d tensor (shape [])",
            weights=safetensors_file(timm[:-2] + [("head.weight", "F32", [], f32([0.0])), ("head.bias", "F32", [3], f32([0.0] * 3))]))
    regression("regression_timm_reg_token_1d", "TimmDialect.swift: store.shape(\"reg_token\")?[1] of a 1-d tensor traps",
            "'reg_token'", st, "unusedWeights", "reg_token of shape [8], no model_args.reg_tokens",
            weights=safetensors_file(timm + [("reg_token", "F32", [D], f32([0.0] * D))]),
            config=dumps(timm_config(model_args__reg_tokens=None)))
    regression("regression_timm_global_pool_newline", "TimmDialect.swift: config strings are put in messages unescaped",
            "global_pool 'max\\nrm -rf' is not supported", cj, bad_cfg, "global_pool with a newline: a two-line message",
            config=dumps(timm_config(global_pool="max\nrm -rf", model_args__global_pool="max\nrm -rf")))
    regression("regression_unused_tensor_newline", "ViTError.swift: unusedWeights prints file keys unescaped",
            "'extra\\nline'", st, "unusedWeights", "an unused tensor whose name has a newline",
            weights=safetensors_file(timm + [("extra\nline", "F32", [1], f32([0.0]))]))
    hf_regression = dict(weights=hf_weights, extra={"preprocessor_config.json": hf_pre})
    regression("regression_hf_num_hidden_layers_huge", "HuggingFaceDialect.swift: a loop over 2^31 layers before any check",
            "field 'num_hidden_layers'", cj, bad_cfg, "num_hidden_layers 2000000000 (hangs for minutes, then runs out of memory)",
            config=dumps(hf_config(num_hidden_layers=2000000000)), **hf_regression)
    regression("regression_hf_image_size_empty", "HuggingFaceDialect.swift: imageSize[0] of an empty list traps",
            "field 'image_size'", cj, bad_cfg, "image_size []", config=dumps(hf_config(image_size=[])), **hf_regression)
    regression("regression_hf_classifier_scalar", "HuggingFaceDialect.swift: headShape[0] of a 0-d tensor traps",
            "classifier.weight", st, "shapeMismatch", "classifier.weight is a 0-d tensor",
            config=dumps(hf_config()), extra={"preprocessor_config.json": hf_pre},
            weights=safetensors_file([t for t in hf if not t[0].startswith("classifier.")]
                                     + [("classifier.bias", "F32", [3], f32([0.0] * 3)), ("classifier.weight", "F32", [], f32([0.0]))]))
    regression("regression_timm_one_channel", "Classifier.logits: a 1-channel model met 3-channel input (precondition)",
            "only RGB (3-channel) models are supported", cj, bad_cfg, "in_chans 1",
            config=dumps(timm_config(model_args__in_chans=1)),
            weights=safetensors_file([t if t[0] != "patch_embed.proj.weight" else
                                      (t[0], "F32", [D, 1, PATCH, PATCH], f32([0.01] * (D * PATCH * PATCH))) for t in timm]))
    controls = [("valid_timm", {"model.safetensors": valid_weights, "config.json": valid_config}),
                ("valid_hf", {"model.safetensors": hf_weights, "config.json": dumps(hf_config()),
                              "preprocessor_config.json": hf_pre})]
    return cases, controls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="Tests/ViTKitTests/Resources/broken")
    args = parser.parse_args()
    out = args.out
    regressions = os.path.join(out, "regressions")
    # Keep committed fuzzing regressions (added by hand with their manifest entries in REGRESSIONS below).
    for sub in ["png", "checkpoints"]:
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    os.makedirs(os.path.join(out, "png"), exist_ok=True)
    os.makedirs(regressions, exist_ok=True)

    manifest = {"generator": "tools/make_broken_inputs.py", "pngs": [], "checkpoints": [],
                "valid": {"png": "png/valid.png", "checkpoints": [], "hostile_pngs": []}}
    with open(os.path.join(out, "png", "valid.png"), "wb") as f:
        f.write(b"".join(valid_png_parts()))
    for name, data, expect, error, what in png_cases():
        relative = f"png/{name}.png"
        with open(os.path.join(out, relative), "wb") as f:
            f.write(data)
        manifest["pngs"].append({"name": name, "path": relative, "expect": expect, "error": error, "what": what})
    for name, data, width, height, what in hostile_valid_pngs():
        relative = f"png/{name}.png"
        with open(os.path.join(out, relative), "wb") as f:
            f.write(data)
        manifest["valid"]["hostile_pngs"].append({"name": name, "path": relative, "width": width, "height": height,
                                                  "what": what})
    cases, controls = checkpoint_cases()
    for name, files, expect, names, error, what, *where in cases + [(n, f, None, None, None, None) for n, f in controls]:
        folder = os.path.join(out, "checkpoints", name)
        os.makedirs(folder, exist_ok=True)
        for relative, data in files.items():
            if data is None:
                continue
            os.makedirs(os.path.dirname(os.path.join(folder, relative)), exist_ok=True)
            with open(os.path.join(folder, relative), "wb") as f:
                f.write(data)
        if expect is None:
            manifest["valid"]["checkpoints"].append(f"checkpoints/{name}")
        else:
            manifest["checkpoints"].append({"name": name, "path": f"checkpoints/{name}", "expect": expect,
                                            "names": names, "error": error, "what": what})
    for entry in REGRESSIONS:
        if not os.path.exists(os.path.join(out, entry["path"])):
            raise SystemExit(f"missing regression input {entry['path']}")
        manifest["pngs" if entry["path"].endswith(".png") else "checkpoints"].append(entry)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(out) for n in ns)
    print(f"wrote {len(manifest['pngs'])} PNG and {len(manifest['checkpoints'])} checkpoint cases, {total} bytes, to {out}")


# Inputs found by fuzzing (Fuzz/README.md): the files live in regressions/ and are committed as found.
REGRESSIONS: list[dict] = []

if __name__ == "__main__":
    main()
