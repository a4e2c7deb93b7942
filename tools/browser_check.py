#!/usr/bin/env python3
"""Checks `vitclassify explore` pages in headless Chromium (Debian's chromium + chromium-driver, WebDriver over HTTP),
or with --browser firefox in headless Firefox (Debian's firefox-esr, over Marionette: tools/marionette.py).

    tools/browser_check.py explore --vitclassify BIN --image IMG [--model M] [--page PAGE] [--query-reference REF]

Writes the page (unless --page is given), then in a real browser:
  1. it loads with no console errors and draws its first view (data-ready on #view);
  2. choosing layers and heads through the <select>s (and the arrow keys) shows the values of
     `vitclassify IMG --attention --format json` for that layer and head (read back from #view's data-values), within
     the quantisation error (each stored row is quantised to its largest patch value / (2 · (2^bits − 1)));
  3. clicking a patch selects that patch's query (data-query, data-patch) and, with --query-reference (a JSON file
     {"layer", "head", "token", "row"} written by the Swift test from the engine's probabilities), shows its row;
  4. with JavaScript disabled the image, the predictions and the static overlay are shown.
Prints one line per check; exits 1 on the first failure.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webdriver  # noqa: E402

FAILURES = []
BROWSER = "chromium"


def new_driver():
    """A driver for the browser chosen with --browser."""
    if BROWSER == "firefox":
        import marionette
        return marionette.Driver()
    return webdriver.Driver()


def check(condition, message):
    print(("ok   " if condition else "FAIL ") + message)
    if not condition:
        FAILURES.append(message)


def cli_json(args, image, model, *extra):
    command = [args.vitclassify, image, "--attention", "--format", "json", "--top-k", "5"] + list(extra)
    if model:
        command += ["--model", model]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[0])


def dom_values(session):
    text = session.run("return document.getElementById('view').dataset.values")
    return [float(v) for v in text.split(",")]


def state(session):
    return session.run(
        "const d = document.getElementById('view').dataset;"
        "return {layer: d.layer, head: d.head, query: d.query, patch: d.patch, bits: d.bits, ready: d.ready};"
    )


def compare(name, got, want, tolerance):
    if len(got) != len(want):
        check(False, "%s: %d values drawn, %d expected" % (name, len(got), len(want)))
        return
    error = max(abs(a - b) for a, b in zip(got, want))
    check(error <= tolerance, "%s: max |page − CLI| = %.3g (tolerance %.3g)" % (name, error, tolerance))
    return error


def select(session, select_id, value):
    """Chooses an option through a real click on the <option> (as a user would)."""
    session.click(session.element("#%s option[value='%s']" % (select_id, value)))
    session.wait("return document.getElementById('view').dataset.%s === %s" % (select_id, json.dumps(str(value))))


def check_explore(args):
    workdir = tempfile.mkdtemp(prefix="browser-check-")
    page = args.page
    if page is None:
        page = os.path.join(workdir, "page.html")
        command = [args.vitclassify, "explore", args.image, "--output", page]
        if args.model:
            command += ["--model", args.model]
        subprocess.run(command, check=True)
    html = open(page, encoding="utf-8").read()
    check("http://" not in html and "https://" not in html, "the page references no network address")
    for root in [os.path.expanduser("~"), os.path.dirname(os.path.abspath(args.image)), os.getcwd()]:
        if root not in ("/", ""):
            check(root not in html, "the page holds no absolute path of this machine (%s)" % root)

    reference = cli_json(args, args.image, args.model)
    attention = reference["attention"]
    cls = attention["cls"]
    prefix = attention["prefix_tokens"]
    layers, heads = len(cls), len(cls[0])

    with new_driver() as driver, driver.session() as session:
        session.open(page)
        session.wait("return document.getElementById('view').dataset.ready === 'true'")
        errors = [e for e in session.console() if e.get("level") == "SEVERE"]
        check(not errors, "no console errors on load" + ("" if not errors else ": " + errors[0]["message"]))
        bits = int(state(session)["bits"])
        levels = 255 if bits == 8 else 65535

        # The first view is rollout (mean), as `--attention` reports it.
        check(state(session)["layer"] == "rollout", "the first view is rollout")
        compare("rollout (mean)", dom_values(session), attention["rollout"], 1 / (2 * levels) + 1e-6)

        # Layers and heads: one head of several layers, and the mean/max of the heads.
        worst = 0
        for layer in sorted({0, layers // 2, layers - 1}):
            select(session, "layer", layer)
            for head in sorted({0, heads - 1}):
                select(session, "head", head)
                want = cls[layer][head][prefix:]
                worst = max(worst, compare("layer %d head %d" % (layer, head), dom_values(session), want, max(want) / (2 * levels) + 1e-6) or 0)
            bound = max(max(cls[layer][h][prefix:]) for h in range(heads)) / (2 * levels) + 1e-6
            for fusion in ["mean", "max"]:
                select(session, "head", fusion)
                want = cli_json(args, args.image, args.model, "--attention-map", "layer:%d" % layer, "--head", fusion)["attention"]["map"]["values"]
                compare("layer %d %s of heads" % (layer, fusion), dom_values(session), want, bound)
        print("     worst single-head error %.3g with %d-bit storage" % (worst, bits))
        select(session, "layer", "rollout")
        select(session, "head", "max")
        want = cli_json(args, args.image, args.model, "--head-fusion", "max")["attention"]["rollout"]
        compare("rollout (max fusion)", dom_values(session), want, 1 / (2 * levels) + 1e-6)

        # Arrow keys: down moves to the next layer (wrapping from rollout to layer 0), right to the next head choice.
        select(session, "head", "mean")
        view = session.element("#view")
        session.run("document.getElementById('view').focus()")
        session.press("\ue015")  # ArrowDown
        check(state(session)["layer"] == "0", "ArrowDown moves from rollout to layer 0")
        session.press("\ue014")  # ArrowRight
        check(state(session)["head"] == "max", "ArrowRight moves from mean to max")
        session.press("\ue012")  # ArrowLeft
        session.press("\ue013")  # ArrowUp
        check(state(session)["layer"] == "rollout" and state(session)["head"] == "mean", "ArrowLeft and ArrowUp go back")

        # The query view: click a patch (row 1, column 2 of the grid) in the last layer's head 0.
        select(session, "layer", layers - 1)
        select(session, "head", 0)
        grid = session.run("return document.getElementById('view').dataset.grid").split("x")
        gh, gw = int(grid[0]), int(grid[1])
        geometry = session.run(
            "const m = JSON.parse(document.getElementById('vit-data').textContent); return [m.geometry, m.image];"
        )
        g, im = geometry
        r = session.rect(view)
        gy, gx = min(1, gh - 1), min(2, gw - 1)
        # The centre of that patch in the original image, then in the canvas's CSS pixels.
        ix = (gx + 0.5) * g["outputWidth"] / gw + g["cropLeft"]
        iy = (gy + 0.5) * g["outputHeight"] / gh + g["cropTop"]
        ox = ix * im["width"] / g["resizedWidth"]
        oy = iy * im["height"] / g["resizedHeight"]
        session.click_at(view, ox / im["width"] * r["width"], oy / im["height"] * r["height"])
        s = state(session)
        token = prefix + gy * gw + gx
        check(s["query"] == str(token) and s["patch"] == "%d,%d" % (gy, gx), "clicking patch (%d, %d) selects query token %d (got %s)" % (gy, gx, token, s["query"]))
        # The selected patch is outlined in cyan (#00e5ff) on the canvas.
        cyan = session.run(
            "const c = document.getElementById('view'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] === 0 && d[i + 1] === 229 && d[i + 2] === 255) n++; return n;"
        )
        check(cyan > 0, "the selected patch is outlined (%d outline pixels)" % cyan)
        if args.query_reference:
            ref = json.load(open(args.query_reference))
            check(ref["token"] == token and ref["layer"] == layers - 1 and ref["head"] == 0, "query reference is for this token")
            compare("query row of patch (%d, %d), layer %d head 0" % (gy, gx, layers - 1), dom_values(session), ref["row"], max(ref["row"]) / (2 * levels) + 1e-6)
        else:
            check(dom_values(session) != cls[layers - 1][0][prefix:], "the patch's row differs from the class token's")
        # The class token's button brings the CLS row back.
        if prefix > 0:
            session.click(session.element("#tokens button[data-token='0']"))
            want = cls[layers - 1][0][prefix:]
            compare("CLS button: class-token row", dom_values(session), want, max(want) / (2 * levels) + 1e-6)
        # The head grid: one tile per head, drawn.
        tiles = session.run("return Array.from(document.querySelectorAll('#heads canvas'), c => Number(c.dataset.max))")
        check(len(tiles) == heads and all(t > 0 for t in tiles), "the head grid has %d drawn tiles" % heads)
        # The predictions as the CLI ranks them.
        labels = [session.text(e) for e in session.elements("table.predictions tbody tr td:nth-child(2)")]
        check(labels == [p["label"] for p in reference["predictions"]], "the predictions table lists the CLI's top 5")
        # Class-specific explanations (precomputed for the top classes, when the model has a backward pass).
        methods = session.run("return Array.from(document.querySelectorAll('#method option'), o => o.value).filter(v => v)")
        if methods:
            top = reference["predictions"][0]["index"]
            for method in methods:
                session.click(session.element("#method option[value='%s']" % method))
                session.click(session.element("#target option[value='%d']" % top))
                session.wait("return document.getElementById('view').dataset.method === '%s'" % method)
                out = subprocess.run([args.vitclassify, args.image, "--explain", method, "--format", "json"] + (["--model", args.model] if args.model else []), check=True, capture_output=True, text=True).stdout
                want = json.loads(out.splitlines()[0])["explanations"][0]["values"]
                scale = max(abs(v) for v in want) or 1
                compare("explanation %s for the top class" % method, dom_values(session), want, scale * 1e-5)
            session.click(session.element("#method option[value='']"))
        errors = [e for e in session.console() if e.get("level") == "SEVERE"]
        check(not errors, "no console errors after interaction" + ("" if not errors else ": " + errors[0]["message"]))

    # JavaScript disabled: the static view.
    with new_driver() as driver, driver.session(javascript=False) as session:
        session.open(page)
        overlay = session.element("#static-overlay")
        check(session.displayed(overlay), "JS off: the static overlay is shown")
        check(session.property(overlay, "naturalWidth") > 0, "JS off: the static overlay image decodes")
        check(session.displayed(session.element("#source")), "JS off: the image is shown")
        check(not session.displayed(view_of(session)), "JS off: the interactive canvas is hidden")
        labels = [session.text(e) for e in session.elements("table.predictions tbody tr td:nth-child(2)")]
        check(labels == [p["label"] for p in reference["predictions"]], "JS off: the predictions are shown")


def check_report(args):
    """The eval and batch reports of a class-per-folder dataset: gallery, filters, confusion-matrix cells, JS off."""
    import csv
    workdir = tempfile.mkdtemp(prefix="browser-report-")
    model = ["--model", args.model] if args.model else []
    report = os.path.join(workdir, "eval.html")
    subprocess.run([args.vitclassify, "eval", args.dataset, "--report", report, "--quiet"] + model + (["--explore-pages"] if args.explore_pages else []), check=True, capture_output=True)
    result = json.loads(subprocess.run([args.vitclassify, "eval", args.dataset, "--format", "json", "--quiet"] + model, check=True, capture_output=True, text=True).stdout)
    labels, matrix = result["confusion_labels"], result["confusion"]
    total = result["images"] + result["failed"]
    html = open(report, encoding="utf-8").read()
    check(os.path.abspath(args.dataset) not in html and workdir not in html, "the report holds no absolute path of this machine")
    wrong = total - sum(matrix[i][i] for i in range(len(labels))) - result["failed"]

    def gallery(session):
        return session.run(
            "const g = document.getElementById('gallery');"
            "return {count: Number(g.dataset.count), items: Array.from(g.querySelectorAll('figure'), f => ({name: f.dataset.name, label: f.dataset.label,"
            " index: f.dataset.index, truth: f.dataset.truth, probability: Number(f.dataset.probability), wrong: f.classList.contains('wrong')}))};"
        )

    with new_driver() as driver, driver.session() as session:
        session.open(report)
        session.wait("return document.getElementById('gallery').dataset.ready === 'true'")
        errors = [e for e in session.console() if e.get("level") == "SEVERE"]
        check(not errors, "report: no console errors on load" + ("" if not errors else ": " + errors[0]["message"]))
        names = session.run("return JSON.parse(document.getElementById('report-meta').textContent).labels")
        g = gallery(session)
        check(g["count"] == total, "report: the gallery holds all %d images (got %d)" % (total, g["count"]))
        flags = [i["wrong"] for i in g["items"]]
        check(sum(flags) == wrong and flags == sorted(flags, reverse=True), "report: the %d misclassified images come first" % wrong)
        imgs = session.run("return Array.from(document.querySelectorAll('#gallery img')).filter(i => i.complete && i.naturalWidth > 0).length")
        check(imgs == min(total, 100), "report: the thumbnails load (%d)" % imgs)
        # Confusion-matrix cells: every non-empty cell selects exactly its images.
        for t, true_label in enumerate(labels):
            for p, predicted in enumerate(labels):
                if matrix[t][p] == 0 or (t == p and t % 3):
                    continue
                cell = session.element("table.confusion tbody tr:nth-child(%d) td:nth-of-type(%d)" % (t + 1, p + 1))
                session.click(cell)
                g = gallery(session)
                ok = g["count"] == matrix[t][p] and all(names[int(i["truth"])] == true_label and i["label"] == predicted for i in g["items"])
                check(ok, "report: cell (true %s, predicted %s) selects its %d images (got %d)" % (true_label, predicted, matrix[t][p], g["count"]))
                session.click(cell)  # a second click clears the cell
        check(gallery(session)["count"] == total, "report: clicking the cell again clears it")
        # The label filter: the predicted label's images (the column sum of the matrix).
        p = max(range(len(labels)), key=lambda j: sum(row[j] for row in matrix))
        index = session.run("return JSON.parse(document.getElementById('report-meta').textContent).labels.indexOf(arguments[0])", labels[p])
        session.click(session.element("#label option[value='%d']" % index))
        g = gallery(session)
        want = sum(row[p] for row in matrix)
        check(g["count"] == want and all(i["label"] == labels[p] for i in g["items"]), "report: the label filter %s shows its %d images (got %d)" % (labels[p], want, g["count"]))
        session.click(session.element("#clear"))
        # The confidence filter.
        box = session.element("#min")
        session.call("POST", "/element/%s/clear" % box, {})
        session.keys(box, "0.9")
        g = gallery(session)
        check(all(i["probability"] >= 0.9 for i in g["items"]) and g["count"] <= total, "report: confidence ≥ 0.9 shows %d images, all at least 0.9" % g["count"])
        errors = [e for e in session.console() if e.get("level") == "SEVERE"]
        check(not errors, "report: no console errors after interaction" + ("" if not errors else ": " + errors[0]["message"]))

    with new_driver() as driver, driver.session(javascript=False) as session:
        session.open(report)
        check(session.displayed(session.element("table.confusion")), "report, JS off: the confusion matrix is shown")

    # batch --report: the label filter against the CSV rows.
    batch = os.path.join(workdir, "batch.html")
    rows_path = os.path.join(workdir, "rows.csv")
    subprocess.run([args.vitclassify, "batch", args.dataset, "--recursive", "--report", batch, "--output", rows_path, "--quiet"] + model, check=True)
    rows = list(csv.DictReader(open(rows_path, newline="")))
    with new_driver() as driver, driver.session() as session:
        session.open(batch)
        session.wait("return document.getElementById('gallery').dataset.ready === 'true'")
        check(gallery(session)["count"] == len(rows), "batch report: the gallery holds the %d CSV rows" % len(rows))
        label = rows[0]["label"]
        index = int(rows[0]["index"])
        session.click(session.element("#label option[value='%d']" % index))
        g = gallery(session)
        want = sorted(os.path.relpath(r["image"], args.dataset) for r in rows if r["label"] == label)
        check(sorted(i["name"] for i in g["items"]) == want, "batch report: the label filter %s selects the CSV's %d rows" % (label, len(want)))
        errors = [e for e in session.console() if e.get("level") == "SEVERE"]
        check(not errors, "batch report: no console errors")


def view_of(session):
    return session.element("#view")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--browser", choices=["chromium", "firefox"], default="chromium")
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("explore")
    e.add_argument("--vitclassify", required=True)
    e.add_argument("--image", required=True)
    e.add_argument("--model")
    e.add_argument("--page")
    e.add_argument("--query-reference")
    r = sub.add_parser("report")
    r.add_argument("--vitclassify", required=True)
    r.add_argument("--dataset", required=True, help="a folder with one subfolder of images per class")
    r.add_argument("--model")
    r.add_argument("--explore-pages", action="store_true")
    args = parser.parse_args()
    global BROWSER
    BROWSER = args.browser
    if BROWSER == "firefox":
        import marionette
        if not marionette.available():
            print("firefox is needed: apt-get install firefox-esr", file=sys.stderr)
            return 2
    elif not webdriver.available():
        print("chromium and chromedriver are needed: apt-get install chromium chromium-driver", file=sys.stderr)
        return 2
    if args.command == "explore":
        check_explore(args)
    else:
        check_report(args)
    print("%d failure(s)" % len(FAILURES))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
