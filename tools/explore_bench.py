#!/usr/bin/env python3
"""Measures `vitclassify explore` pages: size, time to the first drawn view in headless Chromium, and the visible
error of the quantised attention (8 vs 16 bits), for BENCHMARKS.md.

    tools/explore_bench.py --vitclassify .build/release/vitclassify --model bench-out/models/vit_base_patch16_224 \
        --image IMAGE [--runs 5]

For each storage width it writes the page, then
  * size: the page's bytes (and the base64 attention block's share);
  * first view: Chromium (headless, new profile per run) opens the page from disk; the page records
    performance.now() (milliseconds since navigation start) when its first view is drawn (html[data-first-view-ms]:
    block decoded and inflated, overlay, legend and head grid drawn); the median of --runs runs, and the slowest;
  * visible error: for every layer × head, the class-token map the page draws (data-values) against
    `vitclassify IMAGE --attention --format json`, each normalised by its maximum as the overlay normalises it:
    the largest heat difference, the largest difference in colour level (⌊256 · heat⌋, one of the colormap's 256
    entries: 1 means neighbouring entries, which the eye cannot tell apart), and the share of patches one level off.
Prints a Markdown table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webdriver  # noqa: E402


def level(v):
    return min(int(max(0.0, min(1.0, v)) * 256), 255)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vitclassify", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="explore-bench-")
    out = subprocess.run(
        [args.vitclassify, args.image, "--model", args.model, "--attention", "--format", "json"],
        check=True, capture_output=True, text=True,
    ).stdout
    reference = json.loads(out.splitlines()[0])["attention"]
    cls, prefix = reference["cls"], reference["prefix_tokens"]
    rows = []
    with webdriver.Driver() as driver:
        for bits in [8, 16]:
            page = os.path.join(work, "page-%d.html" % bits)
            start = time.time()
            subprocess.run(
                [args.vitclassify, "explore", args.image, "--model", args.model, "--bits", str(bits), "--output", page],
                check=True,
            )
            write = time.time() - start
            size = os.path.getsize(page)
            html = open(page, encoding="utf-8").read()
            data = json.loads(html.split('<script type="application/json" id="vit-data">', 1)[1].split("</script>", 1)[0])
            times = []
            for _ in range(args.runs):
                with driver.session() as session:
                    session.open(page)
                    times.append(float(session.wait("return document.documentElement.dataset.firstViewMs", timeout=60)))
            with driver.session() as session:
                session.open(page)
                session.wait("return document.getElementById('view').dataset.ready === 'true'")
                worst, changed, total, steps = 0.0, 0, 0, 0
                for layer in range(len(cls)):
                    for head in range(len(cls[0])):
                        values = session.run(
                            "const l = document.getElementById('layer'); l.value = arguments[0]; l.dispatchEvent(new Event('change'));"
                            "const h = document.getElementById('head'); h.value = arguments[1]; h.dispatchEvent(new Event('change'));"
                            "return document.getElementById('view').dataset.values;",
                            str(layer), str(head),
                        )
                        got = [float(v) for v in values.split(",")]
                        want = cls[layer][head][prefix:]
                        mg, mw = max(got), max(want)
                        for a, b in zip(got, want):
                            ha, hb = a / mg if mg > 0 else 0, b / mw if mw > 0 else 0
                            worst = max(worst, abs(ha - hb))
                            changed += level(ha) != level(hb)
                            steps = max(steps, abs(level(ha) - level(hb)))
                            total += 1
            rows.append((bits, size, len(data["data"]), data["rawBytes"], write, statistics.median(times), max(times), worst, steps, changed / total))
    print("| storage | page | attention block (base64 of deflate) | raw block | write (s) | first view, median (ms) | slowest (ms) | largest heat error | largest colour step | patches one level off |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for bits, size, b64, raw, write, median, slowest, worst, step, share in rows:
        print("| %d-bit | %.2f MB | %.2f MB | %.2f MB | %.2f | %.0f | %.0f | %.5f | %d of 256 | %.3f%% |" % (
            bits, size / 1e6, b64 / 1e6, raw / 1e6, write, median, slowest, worst, step, 100 * share))
    return 0


if __name__ == "__main__":
    sys.exit(main())
