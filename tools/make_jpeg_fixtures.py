#!/usr/bin/env python3
"""Generate the JPEG (and EXIF orientation) fixtures of the Swift tests (Tests/ViTKitTests/JPEGDecodingTests.swift).

Run from the repository root:

    .venv-tools/bin/python tools/make_jpeg_fixtures.py [--out Tests/ViTKitTests/Resources/jpeg]

Needs Pillow, numpy and safetensors (.venv-tools), and a C compiler with the system libjpeg-turbo headers
(Debian: libjpeg62-turbo-dev): tools/libjpeg_tool.c is compiled into a temporary folder. Deterministic (seeded
numpy images, fixed encoder settings): re-running with the same Pillow and libjpeg-turbo writes identical files.

Encoders: Pillow (its bundled libjpeg-turbo) for the usual settings; the system libjpeg-turbo through libjpeg_tool
for what Pillow cannot write (YCCK, 4:4:0, arithmetic coding, incomplete progressive scans, > 500 scans, CMYK
without an Adobe marker, two components).

References: every image decoded by Pillow, `Image.open(f).convert("RGB")`, and for the orientation fixtures
`ImageOps.exif_transpose(Image.open(f)).convert("RGB")` too. Each image is also decoded by the system libjpeg-turbo
(libjpeg_tool decode, the settings of Sources/JPEGIO) and the difference from Pillow's samples is recorded in the
manifest (`libjpeg_difference`), with the system decoder's samples where they differ.

Output (the layout is a contract with the Swift tests; see README.md there):
  manifest.json        versions, images, exif_blocks, broken
  images/*             the decodable corpus (JPEG, and PNG with eXIf/XMP for orientation; two files whose
                       extension lies about their format)
  broken/*.jpg         truncated, corrupt and hostile files, each with the error it must give
  decoded.safetensors  U8 [H,W,3]: <name> (Pillow, stored orientation), <name>.transposed (Pillow's
                       exif_transpose), <name>.libjpeg (system libjpeg-turbo, only where it differs from Pillow)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import warnings
import zlib

import numpy as np
import PIL
from PIL import Image, ImageOps, PngImagePlugin, features
import safetensors
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 20240611


def structured(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    """Gradients, noise, saturated blocks, a fine checkerboard and a diagonal: chroma subsampling, upsampling and
    the IDCT all have something to get wrong."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.stack([x * 255 / max(1, width - 1), y * 255 / max(1, height - 1), (x + 2 * y) * 9 % 256], -1)
    img += rng.normal(0, 18, img.shape)
    img[height // 4:height // 2, width // 5:width // 2] = [235, 20, 40]
    img[height // 2:, width // 2:width // 2 + max(1, width // 6)] = [20, 40, 230]
    checker = ((x.astype(int) + y.astype(int)) % 2 == 0) & (y > height * 2 // 3) & (x < width // 3)
    img[checker] = [250, 250, 30]
    img[np.abs(x - y * width / max(1, height)) < 1.0] = [0, 0, 0]
    rgb = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    return rgb if mode == "RGB" else rgb.convert(mode)


def orientation_source(width: int, height: int) -> Image.Image:
    """No symmetry: every one of the 8 orientations gives different pixels."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x * 3 + y * 5) * 11 % 256], -1)
    img[0, 0] = [255, 255, 255]
    img[0, 1] = [255, 0, 0]
    img[1, 0] = [0, 255, 0]
    return Image.fromarray(img.astype(np.uint8), "RGB")


def pillow_jpeg(image: Image.Image, **settings) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **settings)
    return buffer.getvalue()


class LibJPEG:
    """tools/libjpeg_tool.c, built against the system libjpeg-turbo."""

    def __init__(self, folder: str):
        self.folder = folder
        self.binary = os.path.join(folder, "libjpeg_tool")
        subprocess.run(["cc", "-O2", "-Wall", os.path.join(ROOT, "tools/libjpeg_tool.c"), "-ljpeg", "-o", self.binary],
                       check=True)
        version = subprocess.run(["pkg-config", "--modversion", "libjpeg"], capture_output=True, text=True, check=True)
        self.version = version.stdout.strip()

    def encode(self, image: Image.Image | np.ndarray, in_cs: str, out_cs: str, quality: int, sampling: str,
               scans: int = 0, arith: int = 0, restart_rows: int = 0, adobe: int = -1) -> bytes:
        samples = np.asarray(image, dtype=np.uint8)
        height, width = samples.shape[:2]
        raw, out = os.path.join(self.folder, "in.raw"), os.path.join(self.folder, "out.jpg")
        samples.tofile(raw)
        subprocess.run([self.binary, "encode", raw, out, str(width), str(height), in_cs, out_cs, str(quality), sampling,
                        str(scans), str(arith), str(restart_rows), str(adobe)], check=True)
        with open(out, "rb") as f:
            return f.read()

    def with_pillows_library(self) -> "LibJPEG | None":
        """The same program run against the libjpeg-turbo bundled in Pillow's wheel (pillow.libs/libjpeg-*.so*, on
        Linux): if it reproduces Pillow's samples where the system library does not, the difference is the library's."""
        libs = os.path.join(os.path.dirname(os.path.dirname(PIL.__file__)), "pillow.libs")
        found = sorted(n for n in os.listdir(libs) if n.startswith("libjpeg")) if os.path.isdir(libs) else []
        if not found:
            return None
        folder = os.path.join(self.folder, "pillow-libjpeg")
        os.makedirs(folder, exist_ok=True)
        os.symlink(os.path.join(libs, found[0]), os.path.join(folder, "libjpeg.so.62"))
        other = LibJPEG.__new__(LibJPEG)
        other.folder, other.binary, other.version = self.folder, self.binary, "pillow's"
        other.environment = dict(os.environ, LD_LIBRARY_PATH=folder)
        return other

    environment = None

    def decode_rgb(self, data: bytes) -> np.ndarray:
        """The system libjpeg-turbo's samples, converted to RGB as Pillow converts its own (gray replicated, CMYK
        inverted and through Pillow's CMYK -> RGB)."""
        path, raw = os.path.join(self.folder, "decode.jpg"), os.path.join(self.folder, "decode.raw")
        with open(path, "wb") as f:
            f.write(data)
        subprocess.run([self.binary, "decode", path, raw], check=True, env=self.environment)
        with open(raw, "rb") as f:
            blob = f.read()
        width, height, components = struct.unpack("<3i", blob[:12])
        samples = np.frombuffer(blob[12:], np.uint8).reshape(height, width, components)
        if components == 1:
            return np.repeat(samples, 3, axis=2)
        if components == 4:
            inverted = Image.frombytes("CMYK", (width, height), (255 - samples).tobytes())
            return np.asarray(inverted.convert("RGB"))
        return samples.copy()


def jpeg_facts(data: bytes) -> dict:
    """What the markers say, read independently of libjpeg: frame type, sampling, restart interval, Adobe code."""
    facts = {"progressive": False, "arithmetic": False, "restart_interval": 0, "adobe_transform": None, "scans": 0}
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF or marker == 0x00 or 0xD0 <= marker <= 0xD8:
            i += 2 if marker != 0xFF else 1
            continue
        if marker == 0xD9:
            break
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        body = data[i + 4:i + 2 + length]
        if marker in (0xC0, 0xC1, 0xC2, 0xC9, 0xCA):
            facts["progressive"] = marker in (0xC2, 0xCA)
            facts["arithmetic"] = marker in (0xC9, 0xCA)
            facts["height"], facts["width"] = struct.unpack(">HH", body[1:5])
            count = body[5]
            facts["components"] = count
            facts["sampling"] = [f"{body[6 + 3 * k + 1] >> 4}x{body[6 + 3 * k + 1] & 15}" for k in range(count)]
        elif marker == 0xDD and facts["scans"] == 0:  # the interval of the first scan (later scans may differ)
            facts["restart_interval"] = struct.unpack(">H", body[:2])[0]
        elif marker == 0xEE and body.startswith(b"Adobe"):
            facts["adobe_transform"] = body[11]
        elif marker == 0xDA:
            facts["scans"] += 1
            # Skip the entropy-coded data: up to the next marker that is not a stuffed zero or RSTn.
            j = i + 2 + length
            while j + 1 < len(data) and not (data[j] == 0xFF and data[j + 1] not in (0x00, *range(0xD0, 0xD8))):
                j += 1
            i = j
            continue
        i += 2 + length
    return facts


def pillow_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def pillow_outcome(data: bytes) -> str:
    try:
        Image.open(io.BytesIO(data)).convert("RGB")
        return "decodes"
    except Exception as error:  # noqa: BLE001 - recorded as information
        text = re.sub(r" <_io\.BytesIO object at 0x[0-9a-f]+>", "", str(error))
        return f"error: {type(error).__name__}: {text}"


def pillow_transposed(data: bytes) -> tuple[np.ndarray | None, int | None, str | None]:
    """exif_transpose's pixels, the orientation getexif() reports, and the error if exif_transpose fails."""
    image = Image.open(io.BytesIO(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            orientation = image.getexif().get(0x0112)
            transposed = ImageOps.exif_transpose(image)
        except Exception as error:  # noqa: BLE001
            return None, None, f"{type(error).__name__}: {error}"
    return np.asarray(transposed.convert("RGB")), orientation if isinstance(orientation, int) else None, None


def exif_with_orientation(value: int, endian: str = "<", typ: int = 3) -> bytes:
    """A minimal EXIF block: TIFF header, IFD0 with the one tag."""
    head = (b"II*\x00" if endian == "<" else b"MM\x00*") + struct.pack(endian + "I", 8)
    field = struct.pack(endian + "HH", value, 0) if typ == 3 else struct.pack(endian + "I", value)
    return b"Exif\x00\x00" + head + struct.pack(endian + "HHHI", 1, 0x0112, typ, 1) + field + struct.pack(endian + "I", 0)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, i = [], 8
    while i < len(data):
        length = struct.unpack(">I", data[i:i + 4])[0]
        chunks.append((data[i + 4:i + 8], data[i + 8:i + 8 + length]))
        i += 12 + length
    return chunks


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(png_chunk(kind, body) for kind, body in chunks)


# ---------------------------------------------------------------------------------------------------------------
# The EXIF blocks of the orientation parser's table: each is written into a JPEG by Pillow, and the orientation
# Pillow's exif_transpose applies to it is recorded (1 when it applies none).
# ---------------------------------------------------------------------------------------------------------------

def exif_blocks() -> list[tuple[str, bytes]]:
    def entry(tag, typ, count, value4, e="<"):
        return struct.pack(e + "HHI", tag, typ, count) + value4

    def tiff(entries, e="<", offset=8, tail=b""):
        head = (b"II*\x00" if e == "<" else b"MM\x00*") + struct.pack(e + "I", offset)
        return head + b"\0" * (offset - 8) + struct.pack(e + "H", len(entries)) + b"".join(entries) \
            + struct.pack(e + "I", 0) + tail

    def short(v, e="<"):
        return struct.pack(e + "HH", v, 0)

    def out_of_line(typ, count, payload, e="<"):  # one entry whose value follows the IFD
        return tiff([entry(0x112, typ, count, struct.pack(e + "I", 8 + 2 + 12 + 4), e)], e, tail=payload)

    x = b"Exif\x00\x00"
    t6 = tiff([entry(0x112, 3, 1, short(6))])
    blocks = [
        ("short_6", x + t6),
        ("short_6_big_endian", x + tiff([entry(0x112, 3, 1, short(6, ">"), ">")], ">")),
        ("long_6", x + tiff([entry(0x112, 4, 1, struct.pack("<I", 6))])),
        ("sbyte_6", x + tiff([entry(0x112, 6, 1, b"\x06\0\0\0")])),
        ("sshort_8", x + tiff([entry(0x112, 8, 1, short(8))])),
        ("slong_3", x + tiff([entry(0x112, 9, 1, struct.pack("<i", 3))])),
        ("float_6", x + tiff([entry(0x112, 11, 1, struct.pack("<f", 6.0))])),
        ("float_6_5", x + tiff([entry(0x112, 11, 1, struct.pack("<f", 6.5))])),
        ("rational_12_over_2", x + out_of_line(5, 1, struct.pack("<II", 12, 2))),
        ("rational_6_over_0", x + out_of_line(5, 1, struct.pack("<II", 6, 0))),
        ("srational_8_big_endian", x + out_of_line(10, 1, struct.pack(">ii", 8, 1), ">")),
        ("double_7", x + out_of_line(12, 1, struct.pack("<d", 7.0))),
        ("short_3_values_first_7", x + out_of_line(3, 3, struct.pack("<HHH", 7, 1, 1))),
        ("rational_offset_outside", x + tiff([entry(0x112, 5, 1, struct.pack("<I", 5000))])),
        ("byte_6", x + tiff([entry(0x112, 1, 1, b"\x06\0\0\0")])),
        ("undefined_6", x + tiff([entry(0x112, 7, 1, b"\x06\0\0\0")])),
        ("ascii_6", x + tiff([entry(0x112, 2, 2, b"6\0\0\0")])),
        ("short_2_values_first_6", x + tiff([entry(0x112, 3, 2, struct.pack("<HH", 6, 3))])),
        ("short_count_0", x + tiff([entry(0x112, 3, 0, short(6))])),
        ("short_9", x + tiff([entry(0x112, 3, 1, short(9))])),
        ("short_0", x + tiff([entry(0x112, 3, 1, short(0))])),
        ("short_262", x + tiff([entry(0x112, 3, 1, short(262))])),
        ("sshort_minus_2", x + tiff([entry(0x112, 8, 1, struct.pack("<hh", -2, 0))])),
        ("two_tags_first_3", x + tiff([entry(0x112, 3, 1, short(3)), entry(0x112, 3, 1, short(6))])),
        ("unknown_type_then_8", x + tiff([entry(0x112, 99, 1, short(6)), entry(0x112, 3, 1, short(8))])),
        ("byte_then_8", x + tiff([entry(0x112, 1, 1, b"\x06\0\0\0"), entry(0x112, 3, 1, short(8))])),
        ("other_tag_first_5", x + tiff([entry(0x10F, 2, 4, b"abc\0"), entry(0x112, 3, 1, short(5))])),
        ("ifd_at_20_7", x + tiff([entry(0x112, 3, 1, short(7))], offset=20)),
        ("ifd_outside", x + t6[:4] + struct.pack("<I", 999) + t6[8:]),
        ("truncated_after_entry", x + t6[:8 + 2 + 12]),
        ("truncated_inside_entry", x + t6[:8 + 2 + 8]),
        ("count_5_one_entry_present", x + t6[:8] + struct.pack("<H", 5) + t6[10:22]),
        ("huge_earlier_value_then_6",
         x + tiff([entry(0x10F, 2, 10_000, struct.pack("<I", 8)), entry(0x112, 3, 1, short(6))])),
        ("double_exif_prefix", x + x + t6),
        ("no_exif_prefix", t6),
        ("bad_byte_order", x + b"XX*\x00" + t6[4:]),
        ("bigtiff_header", x + b"II+\x00" + t6[4:]),
        ("empty", x),
    ]
    return blocks


def readme(manifest: dict) -> str:
    versions = manifest["versions"]
    rows = "\n".join(
        f"| `{d['name']}` | {d['max']} | {d['differing_pixels']} ({100 * d['share']:.1f} %) |"
        for d in manifest["summary"]["differing_from_pillow"])
    complete = sum(1 for i in manifest["images"] if i["format"] == "JPEG" and not i.get("incomplete_scans"))
    return f"""# JPEG and EXIF orientation fixtures

Generated by `tools/make_jpeg_fixtures.py` (do not edit; this file too):

    .venv-tools/bin/python tools/make_jpeg_fixtures.py      # writes Tests/ViTKitTests/Resources/jpeg

Pillow {versions['pillow']} (bundling libjpeg-turbo {versions['pillow_libjpeg_turbo']}) writes most files and decodes all
of them for the references; the system libjpeg-turbo {versions['system_libjpeg_turbo']} (`tools/libjpeg_tool.c`) writes
what Pillow cannot (YCCK, 4:4:0, arithmetic coding, incomplete progressive scans, > 500 scans, CMYK without an Adobe
marker, two components) and decodes every file a second time, as `Sources/JPEGIO` does, to measure where the two
libjpeg-turbo versions differ.

## Files
- `manifest.json`: `versions`; `images` (file, encoder and settings, what it exercises, size, Pillow mode, the marker
  facts: components, sampling, progressive, arithmetic, restart interval, Adobe transform, scans; the EXIF orientation
  Pillow reads; `libjpeg_difference` against Pillow); `exif_blocks` (hex EXIF blocks and the orientation Pillow's
  `exif_transpose` applies to a JPEG carrying each); `broken` (the error each file must give, and what Pillow does).
- `images/`: the decodable corpus; `broken/`: truncated, corrupt and hostile files.
- `decoded.safetensors`: U8 [H,W,3] per image: `<name>` = `Image.open(f).convert("RGB")`; `<name>.transposed` =
  `ImageOps.exif_transpose(Image.open(f)).convert("RGB")` where that differs; `<name>.libjpeg` = the system
  libjpeg-turbo's samples where they differ from Pillow's.

## Pillow's libjpeg-turbo against the system's
All {complete} files whose progressive scans (if any) deliver every DCT coefficient decode to identical samples:
baseline and progressive, Huffman and arithmetic, 4:4:4, 4:2:2, 4:2:0, 4:4:0 and mixed sampling, restart markers,
gray, RGB, CMYK, YCCK. The libraries differ only in block smoothing, which libjpeg runs on progressive files whose scans
leave coefficients out (never the case for files an encoder writes with its standard scan script). Block-smoothing
bugs were fixed in libjpeg-turbo after {versions['system_libjpeg_turbo']} (issues #700: components two blocks wide; #721:
vertical smoothing with 4:2:0), and the differing fixtures are those cases. The same decoding program run against the
libjpeg-turbo inside Pillow's wheel gives Pillow's samples exactly (`same_program_with_pillows_libjpeg` in the manifest,
where the wheel's library is found): the difference is the library's. Largest sample difference and pixels with any
difference:

| fixture | max | pixels |
|---|---|---|
{rows}

`JPEGDecodingTests` holds every other file to exact equality and these to the measured figures, and checks that ViTKit's
samples are then exactly the system libjpeg-turbo's (the difference is the library's, not the wrapper's).
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "Tests/ViTKitTests/Resources/jpeg"))
    args = parser.parse_args()
    # Pillow warns about every malformed EXIF block of the table; the outcomes are what is recorded.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
    out = args.out
    if os.path.exists(out):
        shutil.rmtree(out)
    for sub in ("images", "broken"):
        os.makedirs(os.path.join(out, sub))
    scratch = tempfile.mkdtemp(prefix="jpeg-fixtures-")
    libjpeg = LibJPEG(scratch)
    pillows = libjpeg.with_pillows_library()
    decoded: dict[str, np.ndarray] = {}
    images, broken = [], []

    def add(name: str, data: bytes, encoder: str, settings: dict, what: str, ext: str = "jpg",
            incomplete_scans: bool = False):
        path = f"images/{name}.{ext}"
        with open(os.path.join(out, path), "wb") as f:
            f.write(data)
        reference = pillow_rgb(data)
        decoded[name] = reference
        entry = dict(name=name, file=path, encoder=encoder, settings=settings, what=what,
                     width=int(reference.shape[1]), height=int(reference.shape[0]),
                     pillow_mode=Image.open(io.BytesIO(data)).mode, format="PNG" if data[:4] == b"\x89PNG" else "JPEG")
        if entry["format"] == "JPEG":
            entry.update(jpeg_facts(data))
            system = libjpeg.decode_rgb(data)
            differing = np.abs(system.astype(int) - reference.astype(int)).max(axis=2)
            entry["incomplete_scans"] = incomplete_scans
            entry["libjpeg_difference"] = dict(
                max=int(differing.max()), differing_pixels=int((differing > 0).sum()),
                share=round(float((differing > 0).mean()), 6))
            if differing.max() > 0:
                decoded[f"{name}.libjpeg"] = system
                if pillows is not None:  # the same decoding program with Pillow's library: Pillow's samples?
                    again = np.abs(pillows.decode_rgb(data).astype(int) - reference.astype(int)).max()
                    entry["libjpeg_difference"]["same_program_with_pillows_libjpeg"] = int(again)
        transposed, orientation, error = pillow_transposed(data)
        entry["exif_orientation"] = orientation
        entry["exif_transpose_error"] = error
        if transposed is not None and not np.array_equal(transposed, reference):
            decoded[f"{name}.transposed"] = transposed
            entry["transposed"] = True
        else:
            entry["transposed"] = False
        images.append(entry)
        return data

    # ----- Pillow's encoder: subsampling, quality, progressive, restart markers, optimised tables -----
    rgb = structured(37, 29, SEED)
    for name, settings, what in [
        ("rgb_q95_444", dict(quality=95, subsampling=0), "4:4:4 baseline, high quality"),
        ("rgb_q90_422", dict(quality=90, subsampling=1), "4:2:2 baseline"),
        ("rgb_q75_420", dict(quality=75, subsampling=2), "4:2:0 baseline (Pillow's default)"),
        ("rgb_q75_420_progressive", dict(quality=75, subsampling=2, progressive=True), "4:2:0 progressive"),
        ("rgb_q85_444_progressive", dict(quality=85, subsampling=0, progressive=True), "4:4:4 progressive"),
        ("rgb_q60_422_progressive_optimized", dict(quality=60, subsampling=1, progressive=True, optimize=True),
         "4:2:2 progressive with optimised Huffman tables"),
        ("rgb_q80_420_restart_blocks3", dict(quality=80, subsampling=2, restart_marker_blocks=3),
         "restart marker every 3 MCUs"),
        ("rgb_q80_444_restart_rows1_progressive",
         dict(quality=80, subsampling=0, progressive=True, restart_marker_rows=1),
         "progressive with a restart marker every MCU row"),
        ("rgb_q85_420_optimized", dict(quality=85, subsampling=2, optimize=True), "optimised Huffman tables"),
        ("rgb_q1_420", dict(quality=1, subsampling=2), "quality 1: coarse quantisation, large coefficients"),
        ("rgb_q100_444", dict(quality=100, subsampling=0), "quality 100: all quantisers 1"),
        ("rgb_q90_keep_rgb", dict(quality=90, keep_rgb=True), "RGB stored without YCbCr (Adobe transform 0)"),
        ("rgb_q70_411", dict(quality=70, subsampling="4:1:1"), "Pillow's '4:1:1' (written as 4:2:0)"),
        ("rgb_q70_smooth", dict(quality=70, smooth=50), "encoder-side smoothing"),
    ]:
        add(name, pillow_jpeg(rgb, **settings), "pillow", {k: str(v) for k, v in settings.items()}, what)
    add("rgb_1x1", pillow_jpeg(structured(1, 1, SEED + 1), quality=90), "pillow", {"quality": "90"},
        "a single pixel")
    add("rgb_17x9_420", pillow_jpeg(structured(17, 9, SEED + 2), quality=80, subsampling=2), "pillow",
        {"quality": "80", "subsampling": "2"}, "odd size, partial MCUs on both edges")
    add("rgb_160x120_420", pillow_jpeg(structured(160, 120, SEED + 3), quality=75), "pillow", {"quality": "75"},
        "rows long enough for libjpeg-turbo's SIMD paths")
    gray = structured(37, 29, SEED + 4, "L")
    add("gray_q90", pillow_jpeg(gray, quality=90), "pillow", {"quality": "90"}, "grayscale baseline")
    add("gray_q70_progressive", pillow_jpeg(gray, quality=70, progressive=True), "pillow",
        {"quality": "70", "progressive": "True"}, "grayscale progressive")
    cmyk = structured(37, 29, SEED + 5, "CMYK")
    add("cmyk_q90", pillow_jpeg(cmyk, quality=90), "pillow", {"quality": "90"},
        "CMYK as Pillow writes it (inverted, Adobe marker, transform 0)")
    add("cmyk_q75_progressive", pillow_jpeg(cmyk, quality=75, progressive=True), "pillow",
        {"quality": "75", "progressive": "True"}, "CMYK progressive")

    # ----- the system libjpeg-turbo: what Pillow cannot write -----
    cmyk_samples = np.asarray(cmyk)
    for name, source, args, what, incomplete in [
        ("ycck_q90", cmyk_samples, ("cmyk", "ycck", 90, "1x1,1x1,1x1,1x1"), "YCCK (Adobe transform 2)", False),
        ("ycck_q75_420_progressive", cmyk_samples, ("cmyk", "ycck", 75, "2x2,1x1,1x1,2x2", 1),
         "YCCK 4:2:0 progressive", False),
        ("cmyk_q90_no_adobe", cmyk_samples, ("cmyk", "cmyk", 90, "1x1,1x1,1x1,1x1", 0, 0, 0, 0),
         "CMYK without an Adobe marker (Pillow still takes it as inverted)", False),
        ("rgb_q85_440", rgb, ("rgb", "ycbcr", 85, "1x2,1x1,1x1"), "4:4:0 (vertical subsampling only)", False),
        ("rgb_q85_440_progressive", rgb, ("rgb", "ycbcr", 85, "1x2,1x1,1x1", 1), "4:4:0 progressive", False),
        ("rgb_q80_arithmetic", rgb, ("rgb", "ycbcr", 80, "2x2,1x1,1x1", 0, 1), "arithmetic coding", False),
        ("rgb_q80_arithmetic_progressive_restart", rgb, ("rgb", "ycbcr", 80, "2x1,1x1,1x1", 1, 1, 2),
         "arithmetic coding, progressive, restart every 2 MCU rows", False),
        ("rgb_q80_mixed_sampling", rgb, ("rgb", "ycbcr", 80, "2x2,2x1,1x2"), "chroma planes sampled differently",
         False),
        ("rgb_q80_stored_rgb_420", rgb, ("rgb", "rgb", 80, "2x2,1x1,1x1"), "RGB stored, G and B subsampled", False),
        ("gray_q80_arithmetic_restart", np.asarray(gray), ("gray", "gray", 80, "1x1", 0, 1, 1),
         "grayscale, arithmetic, restart every row", False),
        ("rgb_q80_444_dc_only", rgb, ("rgb", "ycbcr", 80, "1x1,1x1,1x1", 2),
         "progressive with DC scans only (AC never sent: block smoothing)", True),
        ("rgb_q80_420_dc_only", rgb, ("rgb", "ycbcr", 80, "2x2,1x1,1x1", 2),
         "progressive 4:2:0, DC scans only (block smoothing of vertically subsampled components)", True),
        ("rgb_16x16_422_dc_only", structured(16, 16, SEED + 6), ("rgb", "ycbcr", 80, "2x1,1x1,1x1", 2),
         "progressive 4:2:2, 2 blocks wide, DC scans only", True),
        ("rgb_17x9_420_partial_ac", structured(17, 9, SEED + 2), ("rgb", "ycbcr", 80, "2x2,1x1,1x1", 3),
         "progressive 4:2:0, DC then AC 1-5 of luma only", True),
    ]:
        settings = dict(zip(["in", "out", "quality", "sampling", "scans", "arith", "restart_rows", "adobe"],
                            [str(a) for a in args]))
        add(name, libjpeg.encode(source, *args), "libjpeg-turbo " + libjpeg.version, settings, what, "jpg",
            incomplete)

    # ----- EXIF orientation: all 8, in JPEG and PNG, and the ways the tag can be stored -----
    small = orientation_source(13, 7)
    for value in range(1, 9):
        add(f"orientation_{value}", pillow_jpeg(small, quality=95, subsampling=0, exif=exif_with_orientation(value)),
            "pillow", {"quality": "95", "subsampling": "0", "exif": f"IFD0 Orientation={value}"},
            f"EXIF orientation {value}")
    add("orientation_6_big_endian", pillow_jpeg(small, quality=95, subsampling=0,
                                                exif=exif_with_orientation(6, ">")),
        "pillow", {"exif": "big-endian TIFF, Orientation=6"}, "big-endian EXIF")
    add("orientation_8_long", pillow_jpeg(small, quality=95, subsampling=0, exif=exif_with_orientation(8, "<", 4)),
        "pillow", {"exif": "Orientation=8 stored as LONG"}, "orientation as a LONG")
    add("orientation_9_invalid", pillow_jpeg(small, quality=95, subsampling=0, exif=exif_with_orientation(9)),
        "pillow", {"exif": "Orientation=9"}, "out-of-range orientation: none applied")
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description tiff:Orientation="8"/></rdf:RDF></x:xmpmeta>'
    add("orientation_xmp_8", pillow_jpeg(small, quality=95, subsampling=0, xmp=xmp), "pillow",
        {"xmp": 'tiff:Orientation="8"'}, "orientation in XMP only")
    add("orientation_exif_3_xmp_6",
        pillow_jpeg(small, quality=95, subsampling=0, exif=exif_with_orientation(3), xmp=xmp.replace(b'"8"', b'"6"')),
        "pillow", {"exif": "Orientation=3", "xmp": 'tiff:Orientation="6"'}, "EXIF wins over XMP")
    add("orientation_bad_tiff_header", pillow_jpeg(small, quality=95, subsampling=0,
                                                   exif=b"Exif\x00\x00XX*\x00garbage"),
        "pillow", {"exif": "bad TIFF header"}, "unreadable EXIF: no orientation")
    add("orientation_7_progressive_420",
        pillow_jpeg(orientation_source(19, 11), quality=90, subsampling=2, progressive=True,
                    exif=exif_with_orientation(7)),
        "pillow", {"quality": "90", "subsampling": "2", "progressive": "True", "exif": "Orientation=7"},
        "orientation after chroma upsampling, odd size")
    png_buffer = io.BytesIO()
    small.save(png_buffer, "PNG", exif=exif_with_orientation(6))
    png6 = png_buffer.getvalue()
    add("png_orientation_6", png6, "pillow", {"exif": "eXIf chunk before IDAT, Orientation=6"},
        "PNG eXIf orientation", "png")
    chunks = png_chunks(png6)
    exif_chunk = next(c for c in chunks if c[0] == b"eXIf")
    others = [c for c in chunks if c[0] != b"eXIf"]
    moved = [c for c in others if c[0] != b"IEND"] + [(b"eXIf", exif_with_orientation(3)[6:]), (b"IEND", b"")]
    add("png_orientation_3_after_idat", png_from_chunks(moved), "pillow + chunk edit",
        {"exif": "eXIf chunk after IDAT, Orientation=3"}, "PNG eXIf after the image data", "png")
    good = png_chunk(b"eXIf", exif_chunk[1])
    bad_crc = png6.replace(good, good[:-1] + bytes([good[-1] ^ 0xFF]))
    with open(os.path.join(out, "images/png_orientation_6_bad_crc.png"), "wb") as f:
        f.write(bad_crc)
    # Pillow refuses the file (a bad CRC is an error for it); ViTKit decodes the pixels and ignores the chunk.
    decoded["png_orientation_6_bad_crc"] = np.asarray(small)
    images.append(dict(name="png_orientation_6_bad_crc", file="images/png_orientation_6_bad_crc.png",
                       encoder="pillow + chunk edit", settings={"exif": "eXIf chunk with a bad CRC, Orientation=6"},
                       what="a damaged eXIf chunk is ignored (the reference is the source pixels)",
                       width=small.width, height=small.height, pillow_mode="RGB", format="PNG",
                       exif_orientation=None, exif_transpose_error=None, transposed=False,
                       pillow=pillow_outcome(bad_crc)))
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp.decode(), zip=False)
    png_buffer = io.BytesIO()
    small.save(png_buffer, "PNG", pnginfo=info)
    add("png_orientation_xmp_8", png_buffer.getvalue(), "pillow", {"itxt": 'XML:com.adobe.xmp tiff:Orientation="8"'},
        "PNG XMP orientation (uncompressed iTXt)", "png")
    app0 = 2 + 2 + struct.unpack(">H", pillow_jpeg(rgb, quality=75)[4:6])[0]
    plain = pillow_jpeg(rgb, quality=75)
    add("rgb_junk_between_headers", plain[:app0] + b"\x00junk\x00" + plain[app0:], "pillow + edit", {"quality": "75"},
        "junk bytes between two header segments (tolerated: before any entropy-coded data)")
    # The format comes from the signature: a JPEG named .png and a PNG named .jpg.
    add("jpeg_named_png", pillow_jpeg(rgb, quality=75), "pillow", {"quality": "75"}, "a JPEG file named .png", "png")
    png_buffer = io.BytesIO()
    rgb.save(png_buffer, "PNG")
    add("png_named_jpg", png_buffer.getvalue(), "pillow", {}, "a PNG file named .jpg", "jpg")

    # ----- broken and hostile files: the one-line error each must give -----
    baseline = pillow_jpeg(structured(64, 48, SEED + 7), quality=80)
    progressive = pillow_jpeg(structured(64, 48, SEED + 7), quality=80, progressive=True)
    restart = pillow_jpeg(structured(64, 48, SEED + 7), quality=80, restart_marker_blocks=1)
    sof = baseline.index(b"\xff\xc0")
    sos = baseline.index(b"\xff\xda")
    scan_data = sos + 2 + struct.unpack(">H", baseline[sos + 2:sos + 4])[0]

    def corrupt_entropy(data: bytes) -> bytes:  # garbage over a stretch of entropy-coded data (no 0xFF: no markers)
        start = data.index(b"\xff\xda") + 40
        rng = np.random.default_rng(SEED)
        junk = bytes(rng.integers(0, 0xFF, 200, dtype=np.uint8))
        return data[:start] + junk + data[start + 200:]

    def set_sof(data: bytes, **fields) -> bytes:
        at = data.index(b"\xff\xc0") + 4
        body = bytearray(data)
        if "precision" in fields:
            body[at] = fields["precision"]
        if "height" in fields:
            body[at + 1:at + 3] = struct.pack(">H", fields["height"])
        if "width" in fields:
            body[at + 3:at + 5] = struct.pack(">H", fields["width"])
        return bytes(body)

    rst = restart.index(b"\xff\xd3")
    for name, data, expect, error, what in [
        ("truncated_half", baseline[:len(baseline) // 2], "file is truncated", "jpegDecodingFailed",
         "baseline cut in the middle of the scan"),
        ("truncated_no_eoi", baseline[:-2], "file is truncated", "jpegDecodingFailed",
         "baseline without its EOI marker"),
        ("truncated_progressive", progressive[:len(progressive) * 3 // 4], "file is truncated",
         "jpegDecodingFailed", "progressive cut three quarters in (later scans missing)"),
        ("truncated_in_header", baseline[:sof + 6], "file is truncated", "jpegDecodingFailed",
         "cut inside the frame header"),
        ("truncated_after_header", baseline[:scan_data], "file is truncated", "jpegDecodingFailed",
         "headers only, no entropy-coded data"),
        ("soi_only", b"\xff\xd8", "file is truncated", "jpegDecodingFailed", "just the SOI marker"),
        ("corrupt_entropy", corrupt_entropy(baseline), "Corrupt JPEG data", "jpegDecodingFailed",
         "200 random bytes over the entropy-coded data"),
        ("corrupt_entropy_progressive", corrupt_entropy(progressive), "Corrupt JPEG data", "jpegDecodingFailed",
         "random bytes over the first scan of a progressive file"),
        ("extraneous_bytes_before_eoi", baseline[:-2] + bytes(range(1, 17)) + baseline[-2:],
         "extraneous bytes before marker 0xd9", "jpegDecodingFailed",
         "16 junk bytes between the scan data and EOI (Pillow decodes it; for corrupt scans libjpeg often says only "
         "this; up to about 7 junk bytes vanish unnoticed in libjpeg's bit buffer)"),
        ("missing_restart_marker", restart[:rst] + restart[rst + 2:], "Corrupt JPEG data", "jpegDecodingFailed",
         "one RST marker removed"),
        ("wrong_restart_marker", restart[:rst + 1] + b"\xd6" + restart[rst + 2:], "Corrupt JPEG data",
         "jpegDecodingFailed", "RST3 replaced by RST6"),
        ("zero_width", set_sof(baseline, width=0), "Empty JPEG image", "jpegDecodingFailed",
         "frame header says 0 pixels wide"),
        ("precision_12", set_sof(baseline, precision=12), "Unsupported JPEG data precision 12",
         "jpegDecodingFailed", "12-bit samples (the 8-bit libjpeg API cannot read them; neither can Pillow)"),
        ("huge_dimensions", set_sof(baseline, width=65000, height=65000), "65000×65000", "imageTooLarge",
         "frame header says 65000x65000: refused from the header, before any allocation"),
        ("tables_only", baseline[:sof] + b"\xff\xd9", "JPEG datastream contains no image", "jpegDecodingFailed",
         "SOI, tables, EOI: no frame"),
        ("garbage_after_soi", b"\xff\xd8\xff" + bytes(range(7, 100)), "Unsupported marker type 0x07",
         "jpegDecodingFailed",
         "SOI followed by junk"),
        ("two_components", libjpeg.encode(np.zeros((8, 8, 2), np.uint8), "unknown2", "unknown2", 90, "1x1,1x1"),
         "unsupported number of colour components: 2", "jpegDecodingFailed",
         "two colour components (Pillow cannot read them either)"),
        ("too_many_scans", libjpeg.encode(np.asarray(structured(8, 8, SEED + 8)), "rgb", "ycbcr", 90,
                                           "1x1,1x1,1x1", 4),
         "too many scans (more than 500)", "jpegDecodingFailed",
         "568 progressive scans (decoding such files takes time proportional to scans x pixels)"),
    ]:
        path = f"broken/{name}.jpg"
        with open(os.path.join(out, path), "wb") as f:
            f.write(data)
        broken.append(dict(name=name, file=path, expect=expect, error=error, what=what, pillow=pillow_outcome(data)))

    exif_table = []
    by_orientation = {}  # the pixels exif_transpose gives for each orientation 1-8
    for value in range(1, 9):
        data = pillow_jpeg(small, quality=95, subsampling=0, exif=exif_with_orientation(value))
        by_orientation[value] = pillow_transposed(data)[0]
    for name, block in exif_blocks():
        transposed, _, error = pillow_transposed(pillow_jpeg(small, quality=95, subsampling=0, exif=block))
        applied = next((v for v, pixels in by_orientation.items()
                        if transposed is not None and np.array_equal(pixels, transposed)), None)
        exif_table.append(dict(name=name, hex=block.hex(), pillow_applies=applied, pillow_error=error))

    save_file({k: np.ascontiguousarray(v, dtype=np.uint8) for k, v in sorted(decoded.items())},
              os.path.join(out, "decoded.safetensors"))
    differing = [i for i in images if i.get("libjpeg_difference", {}).get("max", 0) > 0]
    # The README's claims, checked: only files with missing coefficients differ, and only because of the library.
    assert all(i["incomplete_scans"] for i in differing), [i["name"] for i in differing]
    assert all(i["libjpeg_difference"].get("same_program_with_pillows_libjpeg", 0) == 0 for i in differing)
    manifest = dict(
        generator="tools/make_jpeg_fixtures.py",
        versions=dict(pillow=PIL.__version__, pillow_libjpeg_turbo=features.version_feature("libjpeg_turbo"),
                      system_libjpeg_turbo=libjpeg.version, numpy=np.__version__, safetensors=safetensors.__version__),
        conventions=dict(
            reference='Image.open(f).convert("RGB") (stored orientation)',
            transposed='ImageOps.exif_transpose(Image.open(f)).convert("RGB"), stored as <name>.transposed where it '
                       'differs from <name>',
            libjpeg_difference="the system libjpeg-turbo (tools/libjpeg_tool.c decode, Sources/JPEGIO's settings) "
                               "against Pillow's bundled one: largest sample difference, pixels with any difference, "
                               "their share; <name>.libjpeg holds the system decoder's samples where they differ",
            exif_blocks="pillow_applies: the orientation whose transpose exif_transpose applied (1: none)"),
        summary=dict(
            images=len(images),
            differing_from_pillow=[dict(name=i["name"], incomplete_scans=i["incomplete_scans"],
                                        **i["libjpeg_difference"]) for i in differing]),
        images=images, exif_blocks=exif_table, broken=broken)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=False)
        f.write("\n")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(readme(manifest))
    shutil.rmtree(scratch)
    size = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(out) for n in ns)
    print(f"{len(images)} images, {len(broken)} broken files, {len(exif_table)} EXIF blocks, {size} bytes in {out}")
    for i in differing:
        print(f"  differs from Pillow: {i['name']}: {i['libjpeg_difference']}")


if __name__ == "__main__":
    main()
