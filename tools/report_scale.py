#!/usr/bin/env python3
"""Times an existing `vitclassify batch|eval --report` page in headless Chromium (Debian's chromium + chromium-driver):
load until the gallery is ready, then a label filter, a confusion-matrix cell and the next page, each until the
gallery has redrawn; prints the counts it sees and the JS heap. For the issue's "usable for 100,000 images":

    vitclassify eval DIR --report /tmp/r.html --quiet        # DIR: 100,000 images in class folders
    python3 tools/report_scale.py /tmp/r.html
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webdriver  # noqa: E402

GALLERY = ("const g = document.getElementById('gallery'); return {count: Number(g.dataset.count), "
           "shown: g.querySelectorAll('figure').length, ready: g.dataset.ready, first: (g.querySelector('figure') || {}).dataset};")


def timed(session, action, condition):
    start = time.perf_counter()
    action()
    session.wait(condition)
    return (time.perf_counter() - start) * 1000


def main():
    report = os.path.abspath(sys.argv[1])
    print(f"report {report}: {os.path.getsize(report) / 2**20:.1f} MB")
    with webdriver.Driver() as driver, driver.session() as session:
        start = time.perf_counter()
        session.open(report)
        session.wait("return document.getElementById('gallery').dataset.ready === 'true'")
        print(f"load until the gallery is ready: {(time.perf_counter() - start) * 1000:.0f} ms")
        g = session.run(GALLERY)
        print(f"gallery: {g['count']} images, {g['shown']} on the first page")
        errors = [e for e in session.console() if e.get("level") == "SEVERE"]
        print("console errors: " + (errors[0]["message"] if errors else "none"))
        label = session.element("#label option:nth-child(2)")
        ms = timed(session, lambda: session.click(label), "return true")
        print(f"label filter: {ms:.0f} ms, {session.run(GALLERY)['count']} images")
        session.click(session.element("#clear"))
        if session.run("return document.querySelector('table.confusion') !== null"):
            cell = session.element("table.confusion tbody tr:nth-child(1) td:nth-of-type(2)")
            ms = timed(session, lambda: session.click(cell), "return true")
            print(f"confusion cell (row 1, column 2): {ms:.0f} ms, {session.run(GALLERY)['count']} images")
            session.click(cell)
        nxt = session.run("const b = document.getElementById('next'); return b ? true : false")
        if nxt:
            before = session.run(GALLERY)["first"]
            ms = timed(session, lambda: session.click(session.element("#next")), "return true")
            after = session.run(GALLERY)["first"]
            print(f"next page: {ms:.0f} ms, first image {before.get('name')} -> {after.get('name')}")
        heap = session.run("return performance.memory ? performance.memory.usedJSHeapSize : null")
        if heap:
            print(f"JS heap used: {heap / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
