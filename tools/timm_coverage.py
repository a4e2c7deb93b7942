#!/usr/bin/env python3
"""Measure how many of timm's ViT-family architectures vitclassify loads and classifies like timm.

Run from the repository root:

    .venv-tools/bin/python tools/timm_coverage.py [--binary .build/debug/vitclassify] [--out bench-out/coverage]
        [--only SUBSTRING] [--max-params 100e6] [--modules vision_transformer,deit,beit,eva]
        [--rebuild] [--prune] [--keep-model-args] [--threads 1] [--timeout 600]

The population (the issue's definition): every architecture registered in timm's `vision_transformer`, `deit`,
`beit` and `eva` modules (`timm.list_models(module=...)`, every size) that has at least one pretrained tag whose
pretrained_cfg num_classes > 0; of those tags (in timm's registration order, the default tag first) the FIRST is
used, and the architecture is kept if the model built under that tag has at most --max-params parameters.

For each kept architecture, in <out>/<name>/:
  model.safetensors + config.json   timm.create_model("<name>.<tag>", pretrained=False) (so the tag's
                                    pretrained_cfg -- num_classes, input size, mean/std, crop -- is applied; this
                                    is checked), every tensor re-drawn with seeded random values
                                    (tools/timm_random.randomize_model: no zero biases / tiny LayerScale, so every
                                    tensor matters), saved with timm.models.save_for_hf(safe_serialization=True);
                                    the config.json keeps save_for_hf's content but WITHOUT `model_args`, as the
                                    configs of timm's models on the Hub are (timm 1.0.2x's save_for_hf adds a trivial
                                    {in_chans, num_classes, global_pool, img_size}; --keep-model-args keeps it)
  reference.safetensors             "logits" [C] float32: timm's eval transform
                                    (timm.data.create_transform(**timm.data.resolve_data_config({}, model=model)))
                                    on <out>/input.png, then model(x)
  reference.json                    tag, timm version, data config, parameter count, seed
Built checkpoints are cached: a directory with all three files for the same tag and timm version is reused
(--rebuild forces; --prune deletes model.safetensors after measuring to save disk).

<out>/input.png: a deterministic 256x256 RGB PNG of uniform random samples (numpy seed 0).

Then `<binary> <out>/input.png --model <out>/<name> --format json --top-k 0 --threads N` and the verdict:
  match     exit 0, max |dlogit| <= 1e-3 * max(1, max |logit|) and the same top-5 indices in order (a swap of two
            reference logits closer than that tolerance is allowed)
  refused   non-zero exit with an error message (recorded, grouped in the summary)
  WRONG     exit 0 but the logits differ (the silent failure the issue forbids)
  CRASH     killed by a signal, timed out, or exited with non-JSON output
Printed: one row per architecture, the refusal reasons grouped with counts, and the summary line
"N of M match; R refused; W wrong" (+ crashes if any). Everything also goes to <out>/report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections import OrderedDict, defaultdict

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timm  # noqa: E402
import timm.data  # noqa: E402
import timm.models  # noqa: E402
from timm.models import _registry  # noqa: E402
from timm_random import randomize_model, save_hub_style, seed_for  # noqa: E402

MODULES = ["vision_transformer", "deit", "beit", "eva"]


def tags_in_order(name: str, with_weights: set) -> list:
    cfg = _registry._model_default_cfgs.get(name)
    order = list(cfg.tags) if cfg is not None else [
        full.split(".", 1)[1] for full in timm.models.get_arch_pretrained_cfgs(name)]
    return [t for t in order if f"{name}.{t}" in with_weights]


def meta_param_count(full: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.device("meta"):
            m = timm.create_model(full, pretrained=False)
    return sum(p.numel() for p in m.parameters())


def candidates(modules, cache_path: str, only: str | None) -> list:
    """[(module, name, tag, num_classes, num_params)] for every architecture with a classifier tag (any size)."""
    cache = {}
    if os.path.exists(cache_path):
        with open(cache_path) as f:
            c = json.load(f)
        if c.get("timm_version") == timm.__version__:
            cache = c["entries"]
    out = []
    for m in modules:
        with_weights = set(timm.list_models(module=m, pretrained=True))
        for name in timm.list_models(module=m):
            if only and only not in name:
                continue
            tag = None
            for t in tags_in_order(name, with_weights):
                nc = timm.models.get_pretrained_cfg(f"{name}.{t}").num_classes
                if nc and nc > 0:
                    tag = t
                    break
            if tag is None:
                continue
            full = f"{name}.{tag}"
            if full not in cache:
                cache[full] = meta_param_count(full)
            out.append((m, name, tag, timm.models.get_pretrained_cfg(full).num_classes, cache[full]))
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    with open(cache_path, "w") as f:
        json.dump({"timm_version": timm.__version__, "entries": cache}, f, indent=1, sort_keys=True)
    return out


def make_input(path: str):
    if not os.path.exists(path):
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), "RGB").save(path)


def build(name: str, tag: str, mdir: str, png: str, keep_model_args: bool) -> dict:
    full = f"{name}.{tag}"
    seed = seed_for(full)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = timm.create_model(full, pretrained=False)
    model.eval()
    pc = model.pretrained_cfg
    # the tag's pretrained_cfg must be the one applied (it sets num_classes, input size, preprocessing)
    want = timm.models.get_pretrained_cfg(full)
    assert pc.get("tag") == tag, f"{full}: built under tag {pc.get('tag')!r}"
    assert model.num_classes == want.num_classes, f"{full}: {model.num_classes} classes, cfg {want.num_classes}"
    assert tuple(pc["input_size"]) == tuple(want.input_size)
    randomize_model(model, seed)
    tmp = mdir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    cfg = save_hub_style(model, tmp, keep_model_args=keep_model_args)
    data_cfg = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**data_cfg)
    x = transform(Image.open(png).convert("RGB")).unsqueeze(0)
    with torch.no_grad():
        logits = model(x)[0].float().contiguous()
    save_file({"logits": logits, "pixel_values": x[0].contiguous()}, os.path.join(tmp, "reference.safetensors"))
    ref = dict(architecture=name, tag=tag, timm_version=timm.__version__, torch_version=torch.__version__,
               seed=seed, num_params=sum(p.numel() for p in model.parameters()), num_classes=model.num_classes,
               data_config={k: (list(v) if isinstance(v, tuple) else v) for k, v in data_cfg.items()},
               transform=repr(transform).replace("\n", " "), model_args_in_config="model_args" in cfg,
               model_class=type(model).__name__)
    with open(os.path.join(tmp, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1, sort_keys=True)
    shutil.rmtree(mdir, ignore_errors=True)
    os.rename(tmp, mdir)
    return ref


def cached(mdir: str, tag: str, keep_model_args: bool) -> dict | None:
    try:
        with open(os.path.join(mdir, "reference.json")) as f:
            ref = json.load(f)
    except (OSError, ValueError):
        return None
    if ref.get("tag") != tag or ref.get("timm_version") != timm.__version__:
        return None
    if ref.get("model_args_in_config") != keep_model_args and not (
            not keep_model_args and not ref.get("model_args_in_config")):
        return None
    for f in ("model.safetensors", "config.json", "reference.safetensors"):
        if not os.path.exists(os.path.join(mdir, f)):
            return None
    return ref


def run_binary(binary: str, png: str, mdir: str, threads: int, timeout: float):
    cmd = [binary, png, "--model", mdir, "--format", "json", "--top-k", "0", "--threads", str(threads)]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(status="CRASH", error=f"timed out after {timeout:.0f} s", seconds=timeout)
    dt = time.time() - t0
    err = p.stderr.strip()
    if p.returncode < 0:
        return dict(status="CRASH", error=f"signal {-p.returncode}: {err[-500:]}", seconds=dt)
    if p.returncode != 0:
        lines = [l for l in err.splitlines() if l.strip()]
        return dict(status="refused", exit=p.returncode, error=" | ".join(lines)[:2000],
                    one_line=len(lines) == 1, seconds=dt)
    try:
        obj = json.loads(p.stdout.strip().splitlines()[0])
        preds = obj["predictions"]
    except (ValueError, KeyError, IndexError) as e:
        return dict(status="CRASH", error=f"unparseable output ({e}): {p.stdout[:300]!r}", seconds=dt)
    return dict(status="ran", predictions=preds, seconds=dt, stderr=err[:500])


def compare(ref: np.ndarray, preds: list) -> dict:
    got = np.full(ref.shape, np.nan, dtype=np.float64)
    for pr in preds:
        i = pr["index"]
        if 0 <= i < len(got):
            got[i] = pr["logit"]
    if len(preds) != len(ref) or np.isnan(got).any():
        return dict(status="WRONG", reason=f"{len(preds)} predictions for {len(ref)} classes", max_abs=None)
    ref64 = ref.astype(np.float64)
    tol = 1e-3 * max(1.0, float(np.abs(ref64).max()))
    d = float(np.abs(got - ref64).max())
    top_ref = list(np.argsort(-ref64, kind="stable")[:5])
    top_got = [pr["index"] for pr in sorted(preds, key=lambda p: p["rank"])[:5]]
    same = top_ref == top_got
    if not same and d <= tol:
        # allow swaps between reference logits closer than the tolerance
        same = all(abs(ref64[a] - ref64[b]) <= tol for a, b in zip(top_ref, top_got))
    ok = d <= tol and same
    return dict(status="match" if ok else "WRONG", max_abs=d, tol=tol, max_ref=float(np.abs(ref64).max()),
                top5_ref=[int(i) for i in top_ref], top5_got=[int(i) for i in top_got])


def reason_key(msg: str, mdir: str) -> str:
    """Group refusal messages: paths dropped, numbers folded."""
    m = msg.replace(os.path.abspath(mdir), "<dir>").replace(mdir, "<dir>")
    m = re.sub(r"^(error|Error):\s*", "", m)
    m = re.sub(r"<dir>/[\w.]+:?\s*", "", m)
    m = re.sub(r"architecture '[^']*'", "architecture '<name>'", m)
    m = re.sub(r"(unexpected tensor\(s\) the model does not use: '[^']*').*", r"\1, ...", m)
    m = re.sub(r"\b\d+(\.\d+)?(e-?\d+)?\b", "N", m)
    m = re.sub(r"\[[N, \-]+\]", "[...]", m)
    return m.strip()[:220]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=".build/debug/vitclassify")
    ap.add_argument("--out", default="bench-out/coverage")
    ap.add_argument("--only", default=None, help="only architectures whose name contains this substring")
    ap.add_argument("--modules", default=",".join(MODULES))
    ap.add_argument("--max-params", type=float, default=100e6)
    ap.add_argument("--rebuild", action="store_true", help="rebuild cached checkpoints")
    ap.add_argument("--prune", action="store_true", help="delete model.safetensors after measuring")
    ap.add_argument("--keep-model-args", action="store_true", help="keep save_for_hf's model_args in config.json")
    ap.add_argument("--threads", type=int, default=1, help="threads for torch and for vitclassify")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    binary = os.path.abspath(a.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"no executable at {a.binary} (swift build, or pass --binary)")
    png = os.path.join(a.out, "input.png")
    make_input(png)

    cands = candidates(a.modules.split(","), os.path.join(a.out, "candidates.json"), a.only)
    population = [c for c in cands if c[4] <= a.max_params]
    over = [c for c in cands if c[4] > a.max_params]
    print(f"timm {timm.__version__}: {len(cands)} architectures with a classifier tag, {len(population)} with "
          f"<= {a.max_params / 1e6:g} M parameters (binary {a.binary})", flush=True)

    rows = []
    for (m, name, tag, nc, npar) in population:
        mdir = os.path.join(a.out, name)
        ref = None if a.rebuild else cached(mdir, tag, a.keep_model_args)
        t0 = time.time()
        if ref is None:
            try:
                ref = build(name, tag, mdir, png, a.keep_model_args)
            except Exception as e:  # timm itself cannot build / run it: reported, not counted as vitclassify's
                rows.append(dict(module=m, architecture=name, tag=tag, num_classes=nc, num_params=npar,
                                 status="timm-error", error=f"{type(e).__name__}: {e}"))
                print(f"{name:55s} timm-error {e}", flush=True)
                continue
        build_s = time.time() - t0
        logits = load_file(os.path.join(mdir, "reference.safetensors"))["logits"].numpy()
        r = run_binary(binary, png, mdir, a.threads, a.timeout)
        row = dict(module=m, architecture=name, tag=tag, num_classes=nc, num_params=npar,
                   model_class=ref.get("model_class"), build_seconds=round(build_s, 1),
                   run_seconds=round(r.get("seconds", 0), 2))
        if r["status"] == "ran":
            row.update(compare(logits, r["predictions"]))
        else:
            row.update({k: v for k, v in r.items() if k != "seconds"})
        rows.append(row)
        detail = ""
        if row["status"] in ("match", "WRONG") and row.get("max_abs") is not None:
            detail = f"max|d|={row['max_abs']:.2e} tol={row['tol']:.1e}"
            if row["status"] == "WRONG":
                detail += f" top5 ref {row['top5_ref']} got {row['top5_got']}"
        elif "error" in row:
            detail = row["error"][:150]
        print(f"{name:55s} {tag:28s} {npar / 1e6:6.1f}M {row['status']:8s} {detail}", flush=True)
        if a.prune:
            try:
                os.remove(os.path.join(mdir, "model.safetensors"))
            except OSError:
                pass

    counts = defaultdict(int)
    for r in rows:
        counts[r["status"]] += 1
    groups = defaultdict(list)
    for r in rows:
        if r["status"] == "refused":
            groups[reason_key(r["error"], os.path.join(a.out, r["architecture"]))].append(r["architecture"])
    print("\nRefusal reasons:")
    for key, names in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print(f"  {len(names):3d}  {key}")
        print(f"       {', '.join(names)}")
    total = len(rows)
    summary = (f"{counts['match']} of {total} match; {counts['refused']} refused; {counts['WRONG']} wrong"
               + (f"; {counts['CRASH']} crashed" if counts["CRASH"] else "")
               + (f"; {counts['timm-error']} timm errors" if counts["timm-error"] else ""))
    if not a.only:
        print(f"(not measured: {len(over)} architectures over {a.max_params / 1e6:g} M parameters)")
    print(summary)
    report = OrderedDict(
        timm_version=timm.__version__, torch_version=torch.__version__, binary=a.binary,
        command=" ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]), only=a.only, max_params=a.max_params,
        keep_model_args=a.keep_model_args, input_png="input.png (256x256 uniform random RGB, numpy seed 0)",
        summary=summary, counts=dict(counts),
        refusal_groups=[dict(reason=k, count=len(v), architectures=v)
                        for k, v in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))],
        rows=rows,
        over_max_params=[dict(module=c[0], architecture=c[1], tag=c[2], num_params=c[4]) for c in over])
    with open(os.path.join(a.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
