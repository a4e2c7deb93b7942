import Foundation
import Testing

@testable import ViTKit
@testable import vitclassify

/// `vitclassify explore`: the page's attention block (pure Swift) and the page in headless Chromium
/// (tools/browser_check.py, Debian's chromium + chromium-driver).
@Suite("Explore page", .serialized)
struct ExploreTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let defaultModel = repository.appendingPathComponent("weights/fashion-mnist-vit").path
    static let sample = repository.appendingPathComponent("images/ankle-boot-1.png").path

    /// (model folder, image): the default model; registers; no class token (average pooling); a crop (DeiT, 36 → 32).
    static let cases: [(String, String)] = [
        (defaultModel, sample),
        (Fixtures.models.first { $0.name == "timm_vit_reg" }!.dir, Fixtures.image("rgb8_37x23").file),
        (Fixtures.models.first { $0.name == "timm_vit_avgpool" }!.dir, Fixtures.image("rgb8_48x48").file),
        (Fixtures.models.first { $0.name == "hf_deit_distilled" }!.dir, Fixtures.image("rgba8_45x61").file),
    ]

    static func attention(model: String, image: String) throws -> (Classifier, RGBImage, Classification, AttentionMaps) {
        let classifier = try Classifier(modelPath: model)
        let picture = try ImageDecoder.read(image)
        let result = classifier.classify([picture], topK: 5, attention: true)[0]
        return (classifier, picture, result, try #require(result.attention))
    }

    @Test("every stored row comes back within its quantisation bound", arguments: [8, 16], [0, 1, 2, 3])
    func roundTrip(bits: Int, index: Int) throws {
        let (model, image) = Self.cases[index]
        let (_, _, _, maps) = try Self.attention(model: model, image: image)
        let block = try ExplorePage.AttentionBlock(maps, bits: bits)
        let packed = try Deflate.compress(block.bytes)
        let read = ExplorePage.AttentionBlock(
            bytes: try Deflate.decompress(packed, size: block.bytes.count), layers: maps.layers, heads: maps.heads,
            tokens: maps.tokens, prefixTokens: maps.prefixTokens, classToken: maps.hasClassToken, bits: bits)
        let n = maps.tokens
        for l in 0..<maps.layers {
            for h in 0..<maps.heads {
                for q in 0..<n {
                    let set = l * maps.heads + h
                    let want = Array(maps.probabilities[l][h][(q * n)..<((q + 1) * n)]), got = read.row(set: set, query: q)
                    // Plus float rounding in the dequantisation (level / levels · scale), which shows at 16 bits.
                    let bound = read.bound(set: set, query: q) * 1.0001 + (want.max() ?? 0) * 4e-7 + 1e-9
                    // Prefix keys are stored as they are; patch keys within half a level of the row's patch maximum.
                    #expect(Array(got[..<maps.prefixTokens]) == Array(want[..<maps.prefixTokens]))
                    let error = maxAbsDifference(Array(got[maps.prefixTokens...]), Array(want[maps.prefixTokens...]))
                    #expect(error <= bound, "layer \(l) head \(h) query \(q): error \(error) > \(bound)")
                }
            }
        }
        #expect(read.queries == n + (maps.hasClassToken ? 0 : 1))
        // The default query's rollout row (the class token's, or the mean of the patch queries') normalised is the CLI's map.
        for (f, fusion) in ExplorePage.fusions.enumerated() {
            let row = read.row(set: maps.layers * maps.heads + f, query: maps.hasClassToken ? 0 : n)
            let patches = Array(row[maps.prefixTokens...]), m = patches.max()!
            let want = try maps.rollout(fusion: fusion)
            #expect(maxAbsDifference(patches.map { $0 / m }, want) <= 1 / Float(bits == 8 ? 510 : 131070) + 1e-6)
        }
    }

    @Test("the rollout matrix's class row is the rollout map")
    func rolloutMatrix() throws {
        let (_, _, _, maps) = try Self.attention(model: Self.defaultModel, image: Self.sample)
        let matrix = try maps.rolloutMatrix(fusion: .mean)
        let n = maps.tokens, p = maps.prefixTokens
        let row = Array(matrix[p..<n]), m = row.max()!
        #expect(row.map { Float($0 / m) } == (try maps.rollout(fusion: .mean)))
        for q in 0..<n { #expect(abs(matrix[(q * n)..<((q + 1) * n)].reduce(0, +) - 1) < 1e-9) }
    }

    @Test("zlib round trip, and a damaged stream is an error")
    func deflate() throws {
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * $0 >> 7) }
        let packed = try Deflate.compress(bytes)
        #expect(packed.count < bytes.count)
        #expect(try Deflate.decompress(packed, size: bytes.count) == bytes)
        #expect(throws: ViTError.self) { try Deflate.decompress(Array(packed.prefix(packed.count / 2)), size: bytes.count) }
    }

    @Test("template filling and HTML escaping")
    func template() throws {
        #expect(try ExplorePage.fill("a{{X}}b{{Y}}", ["X": "{{Y}}", "Y": "<"]) == "a{{Y}}b<")
        #expect(throws: ViTError.self) { try ExplorePage.fill("{{NOPE}}", [:]) }
        #expect(ExplorePage.escape("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
    }

    @Test("the CLI writes one self-contained page with no path of this machine, atomically, refusing to overwrite")
    func cli() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vit-explore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let page = directory.appendingPathComponent("page.html").path
        let run = try CLI.run(["explore", Self.sample, "--output", page])
        #expect(run.status == 0, "\(run.stderr)")
        let html = try String(contentsOfFile: page, encoding: .utf8)
        #expect(!html.contains(Self.repository.path) && !html.contains(directory.path))
        #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("{{"))
        #expect(html.contains("ankle-boot-1.png") && html.contains("Ankle boot"))
        #expect(html.utf8.count < 400_000)
        let again = try CLI.run(["explore", Self.sample, "--output", page])
        #expect(again.status == 1 && again.stderr.contains("refusing to overwrite"))
        let bits = try CLI.run(["explore", Self.sample, "--output", page, "--bits", "12"])
        #expect(bits.status == 1 && bits.stderr.contains("--bits"))
        let layer = try CLI.run(["explore", Self.sample, "--output", page, "--force", "--attention-map", "layer:99"])
        #expect(layer.status == 1 && layer.stderr.contains("layer 99"))
        let missing = try CLI.run(["explore", "/nonexistent.png", "--output", page, "--force"])
        #expect(missing.status == 1 && missing.stderr.contains("/nonexistent.png"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0 != "page.html" }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }

    @Test(
        "headless Chromium: no console errors, layer/head values match --attention JSON, the query view, JS-off view",
        .enabled(
            if: Browser.required || Browser.available,
            "needs chromium and chromium-driver (apt-get install chromium chromium-driver); .ci/run installs them and sets VITCLASSIFY_REQUIRE_CHROMIUM=1"
        ),
        arguments: [0, 1, 2, 3])
    func browser(index: Int) throws {
        try #require(Browser.available, "VITCLASSIFY_REQUIRE_CHROMIUM is set, but chromium or chromedriver is missing")
        let (model, image) = Self.cases[index]
        let (_, _, _, maps) = try Self.attention(model: model, image: image)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vit-browser-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // The engine's row for the patch browser_check.py clicks: grid row 1, column 2, last layer, head 0.
        let gy = min(1, maps.gridHeight - 1), gx = min(2, maps.gridWidth - 1)
        let token = maps.prefixTokens + gy * maps.gridWidth + gx, n = maps.tokens
        let row = maps.probabilities[maps.layers - 1][0][(token * n + maps.prefixTokens)..<((token + 1) * n)]
        let reference: [String: Any] = ["layer": maps.layers - 1, "head": 0, "token": token, "row": row.map(Double.init)]
        let referencePath = directory.appendingPathComponent("query.json")
        try JSONSerialization.data(withJSONObject: reference).write(to: referencePath)
        let (status, output) = try Browser.check([
            "explore", "--vitclassify", CLI.binary.path, "--image", image, "--model", model,
            "--query-reference", referencePath.path,
        ])
        #expect(status == 0, "browser_check.py failed:\n\(output)")
    }
}

/// Headless Chromium through tools/browser_check.py.
enum Browser {
    /// Set by `.ci/run`: there Chromium must be installed, and a browser test fails rather than being skipped.
    static let required = ProcessInfo.processInfo.environment["VITCLASSIFY_REQUIRE_CHROMIUM"] != nil

    static func which(_ name: String) -> Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(name)")
        }
    }

    /// Whether chromium (or chromium-browser) and chromedriver are on the PATH.
    static let available: Bool = (which("chromium") || which("chromium-browser")) && which("chromedriver") && which("python3")

    static let script = ExploreTests.repository.appendingPathComponent("tools/browser_check.py").path

    /// Runs `python3 tools/browser_check.py ARGUMENTS…`; returns its status and its output (both streams).
    static func check(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// `batch --report` and `eval --report`: the gallery files, --resume, and the page in headless Chromium.
@Suite("Explore reports", .serialized)
struct ExploreReportTests {
    /// A class-per-folder dataset from images/: two images per class of five classes, plus three in the wrong folder
    /// (a sandal under bag, a dress under coat, an ankle boot under sneaker), so that eval has misclassifications.
    static func dataset() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vit-report-\(UUID().uuidString)")
        let images = ExploreTests.repository.appendingPathComponent("images")
        let files: [(String, String)] =
            ["ankle-boot", "bag", "coat", "sneaker", "shirt"].flatMap { c in [(c, "\(c)-1.png"), (c, "\(c)-2.png")] }
            + [("bag", "sandal-1.png"), ("coat", "dress-1.png"), ("sneaker", "ankle-boot-2.png")]
        for (folder, file) in files {
            let target = root.appendingPathComponent(folder)
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                at: images.appendingPathComponent(file), to: target.appendingPathComponent(folder == "sneaker" && file.hasPrefix("ankle") ? "x-" + file : file))
        }
        return root
    }

    /// The records of a report page (the JSON array in #report-data).
    static func records(_ report: URL) throws -> [[Any]] {
        let html = try String(contentsOf: report, encoding: .utf8)
        let start = try #require(html.range(of: "<script type=\"application/json\" id=\"report-data\">"))
        let end = try #require(html[start.upperBound...].range(of: "</script>"))
        let json = Data(html[start.upperBound..<end.lowerBound].utf8)
        return try #require(try JSONSerialization.jsonObject(with: json) as? [[Any]])
    }

    @Test("batch --report: thumbnails and records beside the page; refused when it exists; --resume covers both runs")
    func batchReport() throws {
        let root = try Self.dataset()
        // Outside the dataset: a report folder inside it would be scanned as images by the next --recursive run.
        let out = root.deletingLastPathComponent().appendingPathComponent(root.lastPathComponent + "-out")
        defer { for url in [root, out] { try? FileManager.default.removeItem(at: url) } }
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let report = out.appendingPathComponent("r.html"), rows = out.appendingPathComponent("rows.csv")
        // The first run sees 2 of the 5 class folders' images through --shard; the resumed one the rest.
        let first = try CLI.run(["batch", root.path, "--recursive", "--shard", "1/2", "--output", rows.path, "--report", report.path, "--quiet"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try Self.records(report).count == 7)
        let refused = try CLI.run(["batch", root.path, "--recursive", "--output", out.appendingPathComponent("other.csv").path, "--report", report.path, "--quiet"])
        #expect(refused.status == 1 && refused.stderr.contains("refusing to overwrite"))
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("other.csv").path))
        let resumed = try CLI.run(["batch", root.path, "--recursive", "--output", rows.path, "--report", report.path, "--resume", "--quiet"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let records = try Self.records(report)
        #expect(records.count == 13)
        #expect(Set(records.map { $0[0] as! String }).count == 13)
        for record in records {
            let thumb = record[1] as! String
            #expect(thumb.hasPrefix("r.html.files/thumbs/"))
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(thumb).path))
            #expect(!(record[0] as! String).hasPrefix("/"))
        }
        let html = try String(contentsOf: report, encoding: .utf8)
        #expect(!html.contains(root.path) && !html.contains("{{"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }

    @Test("eval --report --explore-pages: the matrix, misclassified records, one linked page per image")
    func evalReport() throws {
        let root = try Self.dataset()
        defer { try? FileManager.default.removeItem(at: root) }
        let report = root.appendingPathComponent("eval.html")
        let run = try CLI.run(["eval", root.path, "--report", report.path, "--explore-pages", "--quiet"])
        #expect(run.status == 0, "\(run.stderr)")
        let records = try Self.records(report)
        #expect(records.count == 13)
        #expect(records.filter { ($0[3] as! Int) != ($0[5] as! Int) }.count == 3)
        for record in records {
            let page = record[6] as! String
            #expect(page.hasPrefix("eval.html.files/pages/") && FileManager.default.fileExists(atPath: root.appendingPathComponent(page).path))
        }
        let html = try String(contentsOf: report, encoding: .utf8)
        #expect(html.contains("<table class=\"confusion\">") && html.contains("data-true=\"7\" data-pred=\"9\""))
        let bad = try CLI.run(["eval", root.path, "--explore-pages"])
        #expect(bad.status == 1 && bad.stderr.contains("--explore-pages needs --report"))
        // An existing report is the user's: kept unless --force.
        let again = try CLI.run(["eval", root.path, "--report", report.path, "--quiet"])
        #expect(again.status == 1 && again.stderr.contains(report.path) && again.stderr.split(separator: "\n").count == 1)
        #expect(try String(contentsOf: report, encoding: .utf8) == html)
        let forced = try CLI.run(["eval", root.path, "--report", report.path, "--quiet", "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
    }

    @Test(
        "headless Chromium: report filters and confusion-matrix cells select the right images",
        .enabled(
            if: Browser.required || Browser.available,
            "needs chromium and chromium-driver (apt-get install chromium chromium-driver); .ci/run installs them and sets VITCLASSIFY_REQUIRE_CHROMIUM=1"
        ))
    func browser() throws {
        try #require(Browser.available, "VITCLASSIFY_REQUIRE_CHROMIUM is set, but chromium or chromedriver is missing")
        let root = try Self.dataset()
        defer { try? FileManager.default.removeItem(at: root) }
        let (status, output) = try Browser.check(["report", "--vitclassify", CLI.binary.path, "--dataset", root.path])
        #expect(status == 0, "browser_check.py failed:\n\(output)")
        #expect(output.contains("cell (true Sneaker, predicted Ankle boot) selects its 1 images"))
    }
}
