#!/usr/bin/env python3
"""README screenshots, taken by headless Chromium (tools/webdriver.py) from pages vitclassify writes.

    tools/screenshots.py --vitclassify .build/release/vitclassify [--out images/screenshots]

Writes
  images/screenshots/explore-query-<sample>.png  the query view of `vitclassify explore` on two sample images: a patch is clicked
                                     (pinned) in the last layer, head 0, so the map is that patch's attention row;
  images/screenshots/report-eval.png             `vitclassify eval --report` of the default model on the Fashion-MNIST test split
                                     (from /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist, exported
                                     to one folder of PNGs per class), misclassified first.
"""

import argparse
import gzip
import os
import struct
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webdriver  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELS = ["t-shirt-top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]


def png_gray(path, width, height, pixels):
    """A minimal 8-bit grayscale PNG writer (no Pillow needed)."""
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def export_test_split(target, dataset="/usr/share/datasets/fashion-mnist"):
    images = gzip.open(os.path.join(dataset, "t10k-images-idx3-ubyte.gz")).read()
    labels = gzip.open(os.path.join(dataset, "t10k-labels-idx1-ubyte.gz")).read()
    count, rows, cols = struct.unpack(">III", images[4:16])
    for name in LABELS:
        os.makedirs(os.path.join(target, name), exist_ok=True)
    for i in range(count):
        offset = 16 + i * rows * cols
        png_gray(os.path.join(target, LABELS[labels[8 + i]], "%05d.png" % i), cols, rows, images[offset:offset + rows * cols])
    return count


def explore_shot(session, page, out, patch):
    session.open(page)
    session.wait("return document.getElementById('view').dataset.ready === 'true'")
    layers = session.run("return document.getElementById('layer').options.length - 1")
    session.click(session.element("#layer option[value='%d']" % (layers - 1)))
    session.click(session.element("#head option[value='0']"))
    view = session.element("#view")
    r = session.rect(view)
    grid = [int(v) for v in session.run("return document.getElementById('view').dataset.grid").split("x")]
    gy, gx = patch
    session.click_at(view, (gx + 0.5) / grid[1] * r["width"], (gy + 0.5) / grid[0] * r["height"])
    session.screenshot(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vitclassify", required=True)
    parser.add_argument("--out", default=os.path.join(ROOT, "images", "screenshots"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="screenshots-")
    with webdriver.Driver() as driver:
        with driver.session(width=1000, height=760) as session:
            # The default model's grid is 7×7 (28 px images, 4 px patches): a patch on the garment in each.
            for sample, patch in [("pullover-1", (3, 2)), ("sandal-1", (4, 3))]:
                page = os.path.join(work, sample + ".html")
                subprocess.run([args.vitclassify, "explore", os.path.join(ROOT, "images", sample + ".png"), "--output", page], check=True)
                explore_shot(session, page, os.path.join(args.out, "explore-query-%s.png" % sample), patch)
                print("wrote", os.path.join(args.out, "explore-query-%s.png" % sample))
        dataset = os.path.join(work, "fashion-mnist-test")
        n = export_test_split(dataset)
        report = os.path.join(work, "report.html")
        subprocess.run([args.vitclassify, "eval", dataset, "--report", report, "--quiet"], check=True, stdout=subprocess.DEVNULL)
        with driver.session(width=1280, height=900) as session:
            session.open(report)
            session.wait("return document.getElementById('gallery').dataset.ready === 'true'")
            session.wait("return Array.from(document.querySelectorAll('#gallery img')).slice(0, 30).every(i => i.complete)")
            session.screenshot(os.path.join(args.out, "report-eval.png"))
            print("wrote", os.path.join(args.out, "report-eval.png"), "(%d test images)" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
