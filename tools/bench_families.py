#!/usr/bin/env python3
"""Family speed: GFLOP/s of an EVA-02 and a BEiT of base size beside ViT-B/16 (random weights, never downloads).

Build (once, cached by meta.json) into bench-out/models/<arch>/, as timm's Hub checkpoints look:
  eva02_base_patch14_224   tag mim_in22k (timm registers no tag with a classifier head for it), num_classes=1000
  beit_base_patch16_224    tag in22k_ft_in22k_in1k (1000-class head, the tag's own num_classes)
each `timm.create_model(arch.tag, pretrained=False, ...)`, every tensor re-drawn by tools/timm_random.py
(randomize_model, seed from the full name), saved by timm.models.save_for_hf(safe_serialization=True) as
model.safetensors + config.json WITHOUT model_args (tools/timm_random.py save_hub_style), torch.set_num_threads(1).
ViT-B/16 is tools/make_bench_models.py's vit_base_patch16_224 (the checkpoint tools/bench_compare.py times).

Check: `vitclassify IMG --model DIR --format json --top-k 0` on a 224x224 random PNG, against timm's logits on the
same PNG through timm's eval transform (max |diff|, same top-1). A model vitclassify refuses is reported and skipped.

Time: for each kernel path (--isa native[,avx2]), ROUNDS rounds of A B C (ViT-B, EVA-02-B, BEiT-B, fixed order),
each a new process `vitclassify bench --model DIR --batch-size 1 --threads T --iterations N --format json`; per
model the median over rounds of ms_per_image_median and of the GFLOP/s the JSON reports, and the median of the
per-round GFLOP/s ratios to ViT-B/16 (each round's three runs are back to back). The 1-minute load average is
recorded before each run. Raw results: bench-out/bench_families.json; the markdown table goes to stdout.

Usage (from the repository root, after `swift build -c release --scratch-path .build-bench`):
  .venv-tools/bin/python tools/bench_families.py [--rounds 3] [--iterations 10] [--threads 2] [--isa native,avx2]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
OUT = os.path.join(REPO, "bench-out", "models")
FAMILIES = [  # key, label, arch, tag, num_classes override (None: the tag's own)
    ("eva02_b", "EVA-02-B/14", "eva02_base_patch14_224", "mim_in22k", 1000),
    ("beit_b", "BEiT-B/16", "beit_base_patch16_224", "in22k_ft_in22k_in1k", None),
]
FORMAT_VERSION = 1


def build(arch, tag, num_classes):
    import torch
    import timm
    import timm_random as tr

    d = os.path.join(OUT, arch)
    want = {"format": FORMAT_VERSION, "arch": arch, "tag": tag, "num_classes": num_classes,
            "torch": torch.__version__, "timm": timm.__version__}
    meta = os.path.join(d, "meta.json")
    if os.path.exists(meta) and all(os.path.exists(os.path.join(d, f)) for f in ("model.safetensors", "config.json")):
        with open(meta) as f:
            if json.load(f).get("build") == want:
                return d
    torch.set_num_threads(1)
    kw = {} if num_classes is None else {"num_classes": num_classes}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = timm.create_model(f"{arch}.{tag}", pretrained=False, **kw).eval()
    tr.randomize_model(model, tr.seed_for(f"{arch}.{tag}"))
    cfg = tr.save_hub_style(model, d, keep_model_args=False)
    assert "model_args" not in cfg
    with open(meta, "w") as f:
        json.dump({"build": want, "params": sum(p.numel() for p in model.parameters()),
                   "num_classes": model.num_classes}, f, indent=2)
        f.write("\n")
    print(f"built {arch}.{tag} in {d}", file=sys.stderr)
    return d


def check(binary, d, png):
    """(ok, message): vitclassify's logits vs timm's on png."""
    import numpy as np
    import torch
    import timm
    from PIL import Image
    from safetensors.torch import load_file

    p = subprocess.run([binary, png, "--model", d, "--format", "json", "--top-k", "0"], capture_output=True, text=True)
    if p.returncode != 0:
        return False, (p.stderr.strip() or p.stdout.strip()).splitlines()[-1]
    out = json.loads(p.stdout)
    rec = out[0] if isinstance(out, list) else out
    if isinstance(rec, dict) and "results" in rec:
        rec = rec["results"][0]
    logits = rec.get("logits")
    if logits is None and rec.get("predictions") and all("logit" in q for q in rec["predictions"]):
        logits = [0.0] * len(rec["predictions"])  # --top-k 0: every class, each with its index and logit
        for q in rec["predictions"]:
            logits[q["index"]] = q["logit"]
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = timm.create_model(cfg["architecture"], pretrained=False, num_classes=cfg["num_classes"],
                                  pretrained_cfg_overlay=cfg.get("pretrained_cfg")).eval()
    model.load_state_dict(load_file(os.path.join(d, "model.safetensors")), strict=True)
    dc = timm.data.resolve_data_config({}, model=model)
    x = timm.data.create_transform(**dc)(Image.open(png).convert("RGB")).unsqueeze(0)
    with torch.inference_mode():
        ref = model(x)[0].numpy()
    if logits is None:
        return True, f"classified (no logits in the JSON to compare; keys {sorted(rec)})"
    got = np.asarray(logits, dtype=np.float32)
    diff = float(np.abs(got - ref).max())
    return True, (f"classified; max |vitclassify - timm| logit {diff:.2e} (max |logit| {np.abs(ref).max():.2f}), "
                  f"top-1 {'same' if int(got.argmax()) == int(ref.argmax()) else 'DIFFERENT'}")


def bench(binary, d, threads, iterations, isa):
    env = {k: v for k, v in os.environ.items() if k not in ("VITCLASSIFY_ISA", "VITCLASSIFY_NO_PACKED_GEMM")}
    if isa != "native":
        env["VITCLASSIFY_ISA"] = isa
    cmd = [binary, "bench", "--model", d, "--batch-size", "1", "--threads", str(threads),
           "--iterations", str(iterations), "--format", "json"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def gflops_of(j):
    for k in ("gflops_per_second", "gflop_per_s", "gflops", "gflop_s"):
        if k in j:
            return float(j[k])
    raise KeyError(f"no GFLOP/s field in {sorted(j)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, ".build-bench", "release", "vitclassify"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--isa", default="native,avx2")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--check-only", action="store_true", help="build and check, no timing")
    a = ap.parse_args()

    import make_bench_models as mbm
    models = [("vit_b", "ViT-B/16", mbm.ensure("b", OUT, log=lambda m: print(m, file=sys.stderr)))]
    for key, label, arch, tag, nc in FAMILIES:
        models.append((key, label, build(arch, tag, nc)))

    checks = {}
    if not a.no_check:
        import numpy as np
        from PIL import Image
        png = os.path.join(REPO, "bench-out", "families-check.png")
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8), "RGB").save(png)
        for key, label, d in models:
            ok, msg = check(a.binary, d, png)
            checks[key] = {"ok": ok, "message": msg}
            print(f"check {label}: {msg}", file=sys.stderr)
    models = [m for m in models if checks.get(m[0], {"ok": True})["ok"]]
    if a.check_only:
        return

    res = {"binary": a.binary, "args": vars(a), "checks": checks, "load_before": os.getloadavg(),
           "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "paths": {}}
    for isa in a.isa.split(","):
        runs = {k: [] for k, _, _ in models}
        loads = []
        for r in range(a.rounds):
            for key, label, d in models:
                loads.append(os.getloadavg()[0])
                j = bench(a.binary, d, a.threads, a.iterations, isa)
                runs[key].append(j)
                print(f"[{isa} r{r + 1}] {label}: {j['ms_per_image_median']:.2f} ms/img, {gflops_of(j):.1f} GFLOP/s "
                      f"({j.get('kernel_path', '?')}, {j.get('gemm_kernel', '?')})", file=sys.stderr)
        base = runs["vit_b"]
        rows = []
        for key, label, d in models:
            js = runs[key]
            ratios = [gflops_of(j) / gflops_of(b) for j, b in zip(js, base)]
            rows.append({"key": key, "label": label, "dir": os.path.relpath(d, REPO),
                         "gflop_per_img": gflops_of(js[0]) * js[0]["ms_per_image_median"] / 1000,
                         "ms_per_img": statistics.median(j["ms_per_image_median"] for j in js),
                         "ms_rounds": [j["ms_per_image_median"] for j in js],
                         "gflops": statistics.median(gflops_of(j) for j in js),
                         "gflops_rounds": [gflops_of(j) for j in js],
                         "ratio_vs_vitb": statistics.median(ratios),
                         "kernel_path": js[0].get("kernel_path"), "gemm_kernel": js[0].get("gemm_kernel")})
        res["paths"][isa] = {"rows": rows, "load1_during": [min(loads), max(loads)], "raw": runs}
    res["load_after"] = os.getloadavg()
    with open(os.path.join(REPO, "bench-out", "bench_families.json"), "w") as f:
        json.dump(res, f, indent=1)

    print(f"| path | model | GFLOP/img | ms/img | GFLOP/s | GFLOP/s vs ViT-B/16 | per-round GFLOP/s |")
    print("|---|---|---:|---:|---:|---:|---|")
    for isa, p in res["paths"].items():
        for r in p["rows"]:
            gi = f"{r['gflop_per_img']:.2f}"
            print(f"| {isa} ({r['kernel_path']}) | {r['label']} | {gi} | {r['ms_per_img']:.1f} | {r['gflops']:.1f} | "
                  f"{r['ratio_vs_vitb']:.2f}× | {', '.join(f'{g:.0f}' for g in r['gflops_rounds'])} |")
    print(f"\nload average 1/5/15 min before {res['load_before']}, after {res['load_after']}; 1-min during: "
          + "; ".join(f"{isa} {p['load1_during'][0]:.2f}–{p['load1_during'][1]:.2f}" for isa, p in res["paths"].items()))


if __name__ == "__main__":
    main()
