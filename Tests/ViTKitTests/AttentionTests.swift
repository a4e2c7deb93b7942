import Foundation
import Testing

@testable import ViTKit
@testable import vitclassify

/// Attention maps against the reference attentions and a direct NumPy rollout (tools/make_fixtures.py).
@Suite("Attention maps")
struct AttentionTests {
    static let cases = ModelParityTests.cases

    static func maps(_ c: ModelParityTests.Case) throws -> (AttentionMaps, SafeTensorsFile) {
        let classifier = try Classifier(modelPath: c.model.dir)
        let reference = try SafeTensorsFile(path: c.model.reference)
        let (_, recorder) = classifier.logits(preprocessed: [try reference.floats("pixel_values.\(c.image)")], attention: true)
        let maps = AttentionMaps(
            probabilities: try #require(recorder).attention(image: 0), architecture: classifier.model.architecture)
        return (maps, reference)
    }

    @Test("class-token rows equal the reference attentions and sum to 1", arguments: cases)
    func classRows(c: ModelParityTests.Case) throws {
        let (maps, reference) = try Self.maps(c)
        let attentions = try reference.floats("attentions.\(c.image)")
        let n = maps.tokens, p = maps.prefixTokens
        for l in 0..<maps.layers {
            for h in 0..<maps.heads {
                let base = (l * maps.heads + h) * n * n
                let expected: [Float]
                if maps.hasClassToken {
                    expected = Array(attentions[base..<(base + n)])
                } else {
                    expected = (0..<n).map { k in (p..<n).map { attentions[base + $0 * n + k] }.reduce(0, +) / Float(n - p) }
                }
                let row = maps.queryRow(layer: l, head: h)
                #expect(maxAbsDifference(row, expected) <= 1e-5)
                #expect(abs(row.reduce(0, +) - 1) <= 1e-5)
            }
        }
    }

    @Test("rollout equals the NumPy implementation of Abnar & Zuidema", arguments: cases)
    func rollout(c: ModelParityTests.Case) throws {
        let (maps, reference) = try Self.maps(c)
        for (fusion, discard) in [("mean", "0"), ("mean", "0.5"), ("max", "0"), ("min", "0")] {
            let ours = try maps.rollout(fusion: HeadSelection(fusion)!, discardRatio: Double(discard)!)
            let expected = try reference.floats("rollout.\(c.image).\(fusion).\(discard)")
            #expect(ours.count == maps.gridHeight * maps.gridWidth)
            #expect(maxAbsDifference(ours, expected) <= 1e-5, "\(fusion) discard \(discard)")
            #expect(ours.max() == 1)
        }
    }

    @Test("last-layer maps equal the reference per head", arguments: cases)
    func lastLayer(c: ModelParityTests.Case) throws {
        let (maps, reference) = try Self.maps(c)
        let expected = try reference.floats("last.\(c.image)")
        let cells = maps.gridHeight * maps.gridWidth
        for h in 0..<maps.heads {
            let ours = try maps.map(.last, heads: .head(h))
            #expect(maxAbsDifference(ours, Array(expected[(h * cells)..<((h + 1) * cells)])) <= 1e-5)
        }
        let mean = try maps.map(.layer(maps.layers - 1), heads: .mean)
        let expectedMean = (0..<cells).map { i in
            (0..<maps.heads).map { expected[$0 * cells + i] }.reduce(0, +) / Float(maps.heads)
        }
        #expect(maxAbsDifference(mean, expectedMean) <= 1e-5)
    }

    @Test("overlay sizes: small images are enlarged by the smallest integer factor reaching 224")
    func overlayScale() {
        #expect(Overlay.scale(width: 28, height: 28) == 8)
        #expect(Overlay.scale(width: 301, height: 217) == 2)
        #expect(Overlay.scale(width: 224, height: 500) == 1)
        #expect(Overlay.scale(width: 1000, height: 223) == 2)
    }

    @Test("pixels without heat are the image blended with the colormap's zero colour; heat follows the crop")
    func zeroHeat() throws {
        // timm_vit: 45×61 → shorter side 36 (36×48), centre crop 32×32: rows outside the crop get no heat.
        let model = Fixtures.models.first { $0.name == "timm_vit" }!
        let classifier = try Classifier(modelPath: model.dir)
        let image = try PNGDecoder.read(Fixtures.image("rgba8_45x61").file)
        let maps = try #require(classifier.classify([image], attention: true)[0].attention)
        let map = try maps.rollout()
        let overlay = Overlay.render(
            image: image, map: map, gridHeight: 4, gridWidth: 4, preprocessing: classifier.info.preprocessing, colormap: .viridis,
            alpha: 0.5)
        let k = Overlay.scale(width: 45, height: 61)
        #expect(overlay.width == 45 * k && overlay.height == 61 * k)
        let heat = Overlay.heat(
            map: map, gridHeight: 4, gridWidth: 4, image: (45, 61), preprocessing: classifier.info.preprocessing, scale: k)
        let zero = Colormap.viridis.color(0)
        var zeroCount = 0
        for y in 0..<overlay.height {
            for x in 0..<overlay.width where heat[y * overlay.width + x] == 0 {
                zeroCount += 1
                let s = image[x / k, y / k], o = overlay[x, y]
                #expect(
                    o.r == Overlay.blend(s.r, zero.0, 0.5) && o.g == Overlay.blend(s.g, zero.1, 0.5)
                        && o.b == Overlay.blend(s.b, zero.2, 0.5))
            }
        }
        // Crop top = round((48 − 32) / 2) = 8 resized rows = 8·61/48 ≈ 10.2 original rows, above and below.
        let firstHeated = (0..<overlay.height).first { y in heat[y * overlay.width + overlay.width / 2] > 0 }!
        #expect(abs(Double(firstHeated) / Double(k) - 8 * 61 / 48.0) < 1.0 / Double(k) + 1e-9)
        #expect(zeroCount > 0)
        #expect(heat.max()! <= 1 && heat.max()! > 0.99)
    }

    /// Writes a 301×217 image (short side under 224) into `directory` and runs the CLI on it with --overlay (a 602×434
    /// overlay) and --overlay-heads (3 heads → 2 columns, 2 rows, 4-pixel gaps); returns the three paths.
    static func writeOverlays(in directory: URL) throws -> (input: String, overlay: String, heads: String) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var pixels = [UInt8](repeating: 0, count: 301 * 217 * 3)
        for i in pixels.indices { pixels[i] = UInt8((i * 7 + i / 903) % 256) }
        let input = directory.appendingPathComponent("input.png").path
        try PNGEncoder.write(RGBImage(width: 301, height: 217, trustedPixels: pixels), to: input)
        let out = directory.appendingPathComponent("overlay.png").path, heads = directory.appendingPathComponent("heads.png").path
        let command = try Classify.parse([
            input, "--model", overlayModel, "--overlay", out, "--overlay-heads", heads, "--attention-map", "last", "--format",
            "json",
        ])
        try command.run()
        return (input, out, heads)
    }

    static let overlayModel = Fixtures.models.first { $0.name == "hf_vit" }!.dir

    @Test("the CLI writes overlays as PNG files, atomically, and never over the input")
    func cliOverlay() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vit-overlay-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (input, out, heads) = try Self.writeOverlays(in: directory)
        let model = Self.overlayModel
        let overlay = try PNGDecoder.read(out)
        #expect(overlay.width == 602 && overlay.height == 434)
        let grid = try PNGDecoder.read(heads)  // 3 heads → 2 columns, 2 rows, 4-pixel gaps
        #expect(grid.width == 2 * 602 + 4 && grid.height == 2 * 434 + 4)
        // An existing file is kept without --force; the input is never overwritten.
        var command = try Classify.parse([input, "--model", model, "--overlay", out])
        #expect(throws: ViTError.self) { try command.run() }
        command = try Classify.parse([input, "--model", model, "--overlay", input, "--force"])
        #expect(throws: ViTError.refusingToOverwrite(path: input, reason: "it is an input file")) { try command.run() }
        #expect(try PNGDecoder.read(input).width == 301)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
        // A device is written through, not replaced by a renamed regular file.
        command = try Classify.parse([input, "--model", model, "--overlay", "/dev/null"])
        try command.run()
        var status = stat()
        #expect(stat("/dev/null", &status) == 0 && (status.st_mode & S_IFMT) == S_IFCHR)
    }

    /// The softmax kernel interleaves rows four at a time; each row must get exactly the operations it gets alone
    /// (the attention core's bits may not depend on how many rows share a call), and equal a double-precision softmax.
    @Test("softmax rows: the same bits alone or among others, and a float64 softmax within the float roundings",
          arguments: [1, 3, 7, 8, 9, 16, 17, 50, 197])
    func softmaxRows(columns: Int) {
        var generator = SplitMix64(state: UInt64(columns))
        let rows = 9, ld = columns + 5
        let input = generator.floats(rows * ld, scale: 10)
        var together = input
        together.withUnsafeMutableBufferPointer { Kernels.softmaxRows($0.baseAddress!, rows: rows, columns: columns, ld: ld) }
        for r in 0..<rows {
            var alone = Array(input[(r * ld)..<(r * ld + columns)])
            alone.withUnsafeMutableBufferPointer { Kernels.softmaxRows($0.baseAddress!, rows: 1, columns: columns, ld: columns) }
            let row = Array(together[(r * ld)..<(r * ld + columns)])
            let differing = zip(row, alone).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "row \(r) of \(columns) columns: \(differing) values differ from the row alone")
            let x = input[(r * ld)..<(r * ld + columns)].map(Double.init)
            let m: Double = x.max()!
            let e: [Double] = x.map { Foundation.exp($0 - m) }
            let sum: Double = e.reduce(0, +)
            let errors: [Double] = zip(row, e).map { got, ei in abs(Double(got) - ei / sum) / (ei / sum) }
            let worst: Double = errors.max()!
            // Float roundings, in units of ε: x − max (|x − max| ≤ 20, so ≤ 2⁻²⁰ absolute, ≈ 8ε relative in exp), exp
            // (~2), the row sum (lanes of ≥ 4 floats: columns / 4 additions, then ≤ 4 halving steps), 1/sum and the
            // product (2).
            let roundings: Int = 8 + 2 + (columns + 3) / 4 + 4 + 2
            let bound = Double(roundings) * Double(Float.ulpOfOne)
            #expect(worst <= bound, "row \(r) of \(columns) columns: relative error \(worst)")
        }
        // The padding between rows is never written.
        for r in 0..<rows { #expect(together[(r * ld + columns)..<((r + 1) * ld)] == input[(r * ld + columns)..<((r + 1) * ld)]) }
    }

    @Test(
        "Pillow reads the overlays the CLI writes",
        .enabled(
            if: PythonImaging.required || PythonImaging.available,
            "needs Pillow (python3 -c 'import PIL'); .ci/run installs it and sets VITCLASSIFY_REQUIRE_PILLOW=1"))
    func pillowReadsOverlay() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vit-overlay-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try #require(PythonImaging.available, "VITCLASSIFY_REQUIRE_PILLOW is set, but python3 cannot import PIL")
        let (_, out, heads) = try Self.writeOverlays(in: directory)
        try PythonImaging.expectPillowReads(out, width: 602, height: 434)
        try PythonImaging.expectPillowReads(heads, width: 2 * 602 + 4, height: 2 * 434 + 4)
    }
}

/// Checks PNGs with Pillow (`python3 -c "from PIL import Image"`), which `.ci/run` installs from PyPI.
enum PythonImaging {
    /// Set by `.ci/run`: there Pillow must be installed, and a test that needs it fails rather than being skipped.
    static let required = ProcessInfo.processInfo.environment["VITCLASSIFY_REQUIRE_PILLOW"] != nil

    /// Whether `python3 -c 'import PIL'` succeeds here.
    static let available: Bool = (try? python(["import PIL"]).status) == 0

    /// Runs `python3 -c SCRIPT ARGUMENTS…`; returns its exit status, standard output and standard error.
    static func python(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c"] + arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Pillow prints little: reading one pipe to its end cannot block on the other filling up.
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    static func expectPillowReads(_ path: String, width: Int, height: Int) throws {
        let (status, output, errors) = try python([
            "import sys; from PIL import Image; im = Image.open(sys.argv[1]); im.load(); print(im.size[0], im.size[1], im.mode)",
            path,
        ])
        #expect(status == 0, "Pillow could not read \(path): \(errors)")
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == "\(width) \(height) RGB")
    }
}
