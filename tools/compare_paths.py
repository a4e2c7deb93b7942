#!/usr/bin/env python3
"""The largest difference between vitclassify's kernel paths (avx512, avx2, fallback) on the test fixtures.

Each path is bit-reproducible on its own (any batch, threads, shard); the paths differ from each other in the last
bits (vector width changes the order of horizontal sums, FMA vs multiply-add in the fallback). This classifies every
fixture (model, image) case and the default model's sample images on each path the CPU supports
(VITCLASSIFY_ISA narrows it) and prints the largest |logit difference| and |attention difference| between the paths,
and whether any top-5 differs.

Usage: python3 tools/compare_paths.py [--binary .build/debug/vitclassify]
"""
import argparse
import json
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "Tests", "ViTKitTests", "Resources", "fixtures")


def run(binary, isa, model, images):
    env = dict(os.environ, VITCLASSIFY_ISA=isa)
    cmd = [binary, *images, "--format", "json", "--top-k", "0", "--attention", "--threads", "2"]
    if model:
        cmd += ["--model", model]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {r["image"]: r for r in rows}


def flat(x):
    if isinstance(x, dict):
        for k in sorted(x):
            yield from flat(x[k])
    elif isinstance(x, list):
        for v in x:
            yield from flat(v)
    elif isinstance(x, (int, float)):
        yield x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, ".build", "debug", "vitclassify"))
    args = ap.parse_args()
    info = subprocess.run([args.binary, "inspect", "--format", "json"], capture_output=True, text=True,
                          env=dict(os.environ, VITCLASSIFY_ISA="avx512"), check=True).stdout
    widest = json.loads(info)["kernel_path"]
    paths = {"avx512": ["avx512", "avx2", "fallback"], "avx2": ["avx2", "fallback"]}.get(widest, ["fallback"])
    manifest = json.load(open(os.path.join(FIXTURES, "manifest.json")))
    cases = [(os.path.join(FIXTURES, m["dir"]), [os.path.join(FIXTURES, "images", c + ".png") for c in m["cases"]])
             for m in manifest["models"]]
    samples = sorted(os.path.join(REPO, "images", f) for f in os.listdir(os.path.join(REPO, "images"))
                     if f.endswith(".png"))
    cases.append((None, samples))
    print(f"CPU: {json.loads(info)['cpu_model']}; paths compared: {', '.join(paths)}")
    worst = {}
    for model, images in cases:
        results = {p: run(args.binary, p, model, images) for p in paths}
        for i, a in enumerate(paths):
            for b in paths[i + 1:]:
                key = f"{a} vs {b}"
                w = worst.setdefault(key, {"logit": 0.0, "attention": 0.0, "top5_differs": 0, "cases": 0})
                for image, ra in results[a].items():
                    rb = results[b][image]
                    la = {p["index"]: p["logit"] for p in ra["predictions"]}
                    lb = {p["index"]: p["logit"] for p in rb["predictions"]}
                    w["logit"] = max(w["logit"], max(abs(la[k] - lb[k]) for k in la))
                    aa, ab = list(flat(ra["attention"])), list(flat(rb["attention"]))
                    w["attention"] = max(w["attention"], max((abs(x - y) for x, y in zip(aa, ab)), default=0.0))
                    if [p["index"] for p in ra["predictions"][:5]] != [p["index"] for p in rb["predictions"][:5]]:
                        w["top5_differs"] += 1
                    w["cases"] += 1
    for key, w in worst.items():
        print(f"{key}: max |Δlogit| {w['logit']:.3g}, max |Δattention| {w['attention']:.3g}, "
              f"top-5 differs in {w['top5_differs']} of {w['cases']} cases")


if __name__ == "__main__":
    main()
