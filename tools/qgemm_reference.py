#!/usr/bin/env python3
"""NumPy emulation of the reduced-precision GEMM schemes of Sources/ViTKernels/include/vit_qgemm.h, written from the
scheme's definition (not from the C code), and the fixture Tests/ViTKitTests/QuantizedGemmTests.swift checks the
kernels against.

INT8 (exact integer arithmetic, fp32 steps emulated with float32 arrays, each operation rounded once):
  weights   per output channel n: amax = max_k |Bt[n,k]|; s_w = amax/127, q = clip(rint(Bt·(127/amax)), -127, 127);
            reduced range (the avx2-maddubs7 kernel): 63 in place of 127 throughout;
            amax < 1e-30: q = 0, s_w = 0
  A rows    lo = min(0, min a), hi = max(0, max a), r = hi - lo; s_a = r/255, inv = 255/r,
            zp = clip(rint(-lo·inv), 0, 255), q = clip(rint(a·inv) + zp, 0, 255); r < 1e-30: q = zp = 0, s_a = 0;
            reduced range: 127 in place of 255 throughout
  output    S = Σ q_a·q_w − zp·Σ q_w (int64, exact); out = f32(S) · (s_a·s_w); then + C (accumulate); then + bias
BF16:
  round     fp32 → bf16 nearest even, subnormal → signed zero, NaN → quiet NaN (bit operations on uint32)
  output    acc = 0; acc = f32(acc + a_k·b_k) for k = 0 … K−1 (each product of two bf16 values is exact in float32);
            then + C; then + bias

The fixture (safetensors, F32/F64/I64 tensors; the case list in the metadata) holds per case: the inputs a [M,K],
bt [N,K], c0 [M,N], bias [N]; the INT8 output q8 [M,N] and weight scales q8_scale [N] (q8r, q8r_scale: the same
in the reduced range); the BF16 canonical output
bf16 [M,N]; exact [M,N] (float64 product of the BF16-rounded inputs) and abs [M,N] (Σ|a_k·b_k| of the rounded
inputs) for the accumulation-error bound; and a table of fp32 → bf16 roundings (round_in F32, round_out I64).

Usage: python3 tools/qgemm_reference.py [--out Tests/ViTKitTests/Resources/fixtures/qgemm/qgemm_reference.safetensors]
       python3 tools/qgemm_reference.py --selftest     # checks the emulation's own invariants, writes nothing
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

F32 = np.float32
TINY = F32(1e-30)


# ---- BF16 ------------------------------------------------------------------------------------------------------------

def bf16_bits(x):
    """fp32 array → uint16 bf16 bits: nearest even, subnormal → signed zero, NaN → quiet NaN."""
    u = np.ascontiguousarray(x, dtype=F32).view(np.uint32).astype(np.uint64)
    e = u & 0x7F800000
    rne = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = (u | 0x00400000) >> 16
    zero = (u >> 16) & 0x8000
    out = np.where(e == 0, zero, np.where((e == 0x7F800000) & ((u & 0x7FFFFF) != 0), nan, rne))
    return (out & 0xFFFF).astype(np.uint16)


def bf16_value(bits):
    return (bits.astype(np.uint32) << 16).view(F32)


def bf16_round(x):
    return bf16_value(bf16_bits(x))


def bf16_gemm(a, bt, c0, bias, accumulate):
    """The canonical BF16 sum (k order, one float32 rounding per k), then + C, then + bias."""
    ar, br = bf16_round(a), bf16_round(bt)
    m, k = a.shape
    n = bt.shape[0]
    acc = np.zeros((m, n), dtype=F32)
    with np.errstate(all="ignore"):
        for j in range(k):
            acc = acc + ar[:, j : j + 1] * br[None, :, j]  # exact product, rounded sum
        if accumulate:
            acc = acc + c0
        if bias is not None:
            acc = acc + bias[None, :]
    exact = ar.astype(np.float64) @ br.astype(np.float64).T
    absolute = np.abs(ar.astype(np.float64)) @ np.abs(br.astype(np.float64)).T
    return acc.astype(F32), exact, absolute


# ---- INT8 ------------------------------------------------------------------------------------------------------------

def q8_weights(bt, qmax=127):
    bt = bt.astype(F32)
    amax = np.max(np.abs(bt), axis=1) if bt.shape[1] else np.zeros(bt.shape[0], F32)
    ok = amax >= TINY
    safe = np.where(ok, amax, F32(1))
    scale = np.where(ok, safe / F32(qmax), F32(0)).astype(F32)
    inv = np.where(ok, F32(qmax) / safe, F32(0)).astype(F32)
    q = np.clip(np.rint(bt * inv[:, None]), -qmax, qmax).astype(np.int64)
    return q, scale


def q8_rows(a, levels=255):
    a = a.astype(F32)
    if a.shape[1]:
        lo = np.minimum(F32(0), a.min(axis=1))
        hi = np.maximum(F32(0), a.max(axis=1))
    else:
        lo = hi = np.zeros(a.shape[0], F32)
    r = (hi - lo).astype(F32)
    ok = r >= TINY
    safe = np.where(ok, r, F32(1))
    scale = np.where(ok, safe / F32(levels), F32(0)).astype(F32)
    inv = np.where(ok, F32(levels) / safe, F32(0)).astype(F32)
    zp = np.clip(np.rint((-lo) * inv), 0, levels).astype(np.int64)
    q = np.clip(np.rint(a * inv[:, None]).astype(np.int64) + zp[:, None], 0, levels)
    return q, zp, scale


def q8_gemm(a, bt, c0, bias, accumulate, qmax=127):
    """qmax 127: the 8-bit scheme; 63: the reduced range (7-bit weights and 7-bit rows)."""
    qw, sw = q8_weights(bt, qmax)
    qa, zp, sa = q8_rows(a, 255 if qmax == 127 else 127)
    s = qa @ qw.T - zp[:, None] * qw.sum(axis=1)[None, :]
    assert np.all(np.abs(s) < 2**31)
    out = s.astype(F32) * (sa[:, None] * sw[None, :]).astype(F32)
    out = out.astype(F32)
    if accumulate:
        out = out + c0
    if bias is not None:
        out = out + bias[None, :]
    return out.astype(F32), sw


# ---- Cases -------------------------------------------------------------------------------------------------------------

def make_case(rng, name, m, k, n, accumulate, bias, kind="normal"):
    a = rng.standard_normal((m, k)).astype(F32)
    if kind == "gelu":  # post-GELU-like rows: ≥ −0.17, skewed (zero point well above 0)
        a = (a * 0.5 * (1 + np.tanh(0.7978845608 * (a + 0.044715 * a**3)))).astype(F32)
    elif kind == "edge":  # rows: all zero, all positive, all negative, one outlier, tiny; a zero weight column
        a[0] = 0
        if m > 1:
            a[1] = np.abs(a[1]) + 0.5
        if m > 2:
            a[2] = -np.abs(a[2]) - 0.25
        if m > 3:
            a[3, k // 2] = 50.0
        if m > 4:
            a[4] *= F32(1e-32)  # range below 1e-30: quantises to zeros
        if m > 5:  # range 255/16 from 0: inv = 16 exactly, so every a·inv is an exact tie j + 0.5 for rint
            a[5, :] = ((np.arange(k) % 255) + 0.5).astype(F32) / F32(16)
            a[5, 0] = F32(255) / F32(16)
    elif kind == "outlier":  # LayerNorm output with a few large channels, as in trained ViTs
        a[:, : max(1, k // 64)] *= 12
    bt = (rng.standard_normal((n, k)) * 0.02).astype(F32)
    if kind == "edge":
        bt[0] = 0
        if n > 1:  # amax 127/16: 127/amax = 16 exactly, so every weight·16 is an exact tie j + 0.5
            bt[1, :] = ((np.arange(k) % 250) - 125 + 0.5).astype(F32) / F32(16)
            bt[1, 0] = F32(127) / F32(16)
    c0 = rng.standard_normal((m, n)).astype(F32)
    b = rng.standard_normal(n).astype(F32) if bias else None
    q8, scale = q8_gemm(a, bt, c0, b, accumulate)
    q8r, scale_r = q8_gemm(a, bt, c0, b, accumulate, qmax=63)
    bf, exact, absolute = bf16_gemm(a, bt, c0, b, accumulate)
    tensors = {
        f"{name}.a": a,
        f"{name}.bt": bt,
        f"{name}.c0": c0,
        f"{name}.bias": b if b is not None else np.zeros(n, F32),
        f"{name}.q8": q8,
        f"{name}.q8_scale": scale,
        f"{name}.q8r": q8r,
        f"{name}.q8r_scale": scale_r,
        f"{name}.bf16": bf,
        f"{name}.exact": exact,
        f"{name}.abs": absolute,
    }
    meta = {"name": name, "m": m, "k": k, "n": n, "accumulate": accumulate, "bias": bias, "kind": kind}
    return meta, tensors


CASES = [
    # name, M, K, N, accumulate, bias, kind
    ("one", 1, 1, 1, False, False, "normal"),
    ("odd", 7, 33, 45, True, True, "normal"),
    ("tiles", 33, 130, 70, False, True, "normal"),
    ("kpad", 5, 63, 31, True, False, "normal"),
    ("wide", 15, 64, 97, False, True, "gelu"),
    ("vit", 20, 384, 96, True, True, "outlier"),
    ("deep", 6, 1536, 20, False, True, "gelu"),
    ("edges", 8, 257, 33, True, True, "edge"),
    ("rows", 50, 96, 40, False, False, "normal"),
]


def rounding_table():
    f = np.array(
        [0.0, -0.0, 1.0, -1.0, 1.00390625, 1.005859375, 1.0078125, 3.4028235e38, -3.4028235e38, 1e-45, -1e-45,
         1.1754942e-38, 1.1754944e-38, 65504.0, 0.1, -0.1, 3.14159265, 1e30, -1e-30],
        dtype=F32,
    )
    specials = np.array([0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFFFFFFF, 0x7F7FFFFF, 0x3F808000,
                         0x3F818000, 0x3F80FFFF, 0x3F817FFF, 0x00800000, 0x007FFFFF, 0x80000001, 0x477FFFFF],
                        dtype=np.uint32).view(F32)
    rng = np.random.default_rng(7)
    rand = (rng.standard_normal(64) * np.exp2(rng.integers(-40, 40, 64))).astype(F32)
    x = np.concatenate([f, specials, rand]).astype(F32)
    return x, bf16_bits(x).astype(np.int64)


# ---- safetensors writer ------------------------------------------------------------------------------------------------

def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    dtypes = {np.dtype(F32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name])
        data = t.astype(t.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def selftest():
    rng = np.random.default_rng(3)
    # INT8: the dequantised product is close to the float64 product within the scheme's bound.
    a = rng.standard_normal((9, 200)).astype(F32)
    bt = (rng.standard_normal((13, 200)) * 0.02).astype(F32)
    out, _ = q8_gemm(a, bt, None, None, False)
    qa, zp, sa = q8_rows(a)
    qw, sw = q8_weights(bt)
    exact = a.astype(np.float64) @ bt.astype(np.float64).T
    bound = (sw[None, :] / 2) * np.abs(a).astype(np.float64).sum(1)[:, None] + (sa[:, None] / 2) * (
        np.abs(qw) * sw[:, None]).sum(1)[None, :] + 4e-7 * np.abs(exact) + 1e-12
    assert np.all(np.abs(out - exact) <= bound), "INT8 outside the quantisation bound"
    out, _ = q8_gemm(a, bt, None, None, False, qmax=63)
    qa, zp, sa = q8_rows(a, 127)
    qw, sw = q8_weights(bt, 63)
    assert np.abs(qw).max() <= 63 and qa.max() <= 127
    bound = (sw[None, :] / 2) * np.abs(a).astype(np.float64).sum(1)[:, None] + (sa[:, None] / 2) * (
        np.abs(qw) * sw[:, None]).sum(1)[None, :] + 4e-7 * np.abs(exact) + 1e-12
    assert np.all(np.abs(out - exact) <= bound), "reduced-range INT8 outside the quantisation bound"
    # BF16: the canonical sum is within γ_K of the exact product of the rounded inputs.
    bf, ex, ab = bf16_gemm(a, bt, None, None, False)
    k = a.shape[1]
    assert np.all(np.abs(bf - ex) <= k * 2.0**-24 / (1 - k * 2.0**-24) * ab + 1e-30)
    # Rounding: ties to even, subnormals flushed, NaN quiet.
    x, bits = rounding_table()
    assert bf16_bits(np.array([1.00390625], F32))[0] == 0x3F80  # halfway, even stays
    assert bf16_bits(np.array([1.01171875], F32))[0] == 0x3F82  # halfway, odd rounds up
    assert bf16_bits(np.array([1e-45], F32))[0] == 0x0000
    print("selftest ok")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "ViTKitTests", "Resources",
                                                 "fixtures", "qgemm", "qgemm_reference.safetensors"))
    p.add_argument("--selftest", action="store_true")
    args = p.parse_args()
    if args.selftest:
        selftest()
        return
    rng = np.random.default_rng(20250614)
    tensors, metas = {}, []
    for name, m, k, n, accumulate, bias, kind in CASES:
        meta, t = make_case(rng, name, m, k, n, accumulate, bias, kind)
        metas.append(meta)
        tensors.update(t)
    x, bits = rounding_table()
    tensors["round_in"] = x
    tensors["round_out"] = bits
    metadata = {"cases": json.dumps(metas), "generator": "tools/qgemm_reference.py", "numpy": np.__version__}
    write_safetensors(os.path.normpath(args.out), tensors, metadata)
    size = os.path.getsize(args.out)
    print(f"wrote {os.path.normpath(args.out)} ({size} bytes, {len(metas)} cases)")
    if size > 1 << 20:
        sys.exit("fixture larger than 1 MB")


if __name__ == "__main__":
    main()
