import ArgumentParser
import Foundation
import Testing

@testable import ViTKit
@testable import vitclassify

#if canImport(Glibc)
    import Glibc
#endif

/// The corpus of hostile inputs written by `tools/make_broken_inputs.py` (`Resources/broken/manifest.json`).
enum BrokenInputs {
    static let root: URL = Fixtures.resources.appendingPathComponent("broken")

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        /// Absolute path: a PNG file, or a checkpoint folder.
        let path: String
        /// A substring the error message must contain.
        let expect: String
        /// The expected ``ViTError`` case.
        let error: String
        /// Checkpoints: the file inside the folder the message must name ("" for the folder itself).
        let names: String?
        let what: String
        /// Set for cases that crash, hang or print two lines until a fix outside this change lands.
        var testDescription: String { name }

        /// The path the error message must name.
        var namedPath: String {
            guard let names, !names.isEmpty else { return path }
            return path + "/" + names
        }
    }

    nonisolated(unsafe) static let manifest: [String: Any] = {
        let data = try! Data(contentsOf: root.appendingPathComponent("manifest.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    static func cases(_ key: String) -> [Case] {
        (manifest[key] as! [[String: Any]]).map {
            Case(
                name: $0["name"] as! String, path: root.appendingPathComponent($0["path"] as! String).path,
                expect: $0["expect"] as! String, error: $0["error"] as! String, names: $0["names"] as? String,
                what: $0["what"] as! String)
        }
    }

    static let pngs = cases("pngs")
    static let checkpoints = cases("checkpoints")
    static var valid: [String: Any] { manifest["valid"] as! [String: Any] }
    static let validPNG = root.appendingPathComponent(valid["png"] as! String).path
    static let validCheckpoints = (valid["checkpoints"] as! [String]).map { root.appendingPathComponent($0).path }
    static let hostileValidPNGs: [(name: String, path: String, width: Int, height: Int)] =
        (valid["hostile_pngs"] as! [[String: Any]]).map {
            (
                $0["name"] as! String, root.appendingPathComponent($0["path"] as! String).path, $0["width"] as! Int,
                $0["height"] as! Int
            )
        }
    static func png(_ name: String) -> Case { pngs.first { $0.name == name }! }

    /// The fixture model the CLI runs use for PNG cases.
    static let model = Fixtures.models.first { $0.name == "timm_vit" }!.dir
}

/// The name of a ``ViTError`` case, as in the manifest's `error` field.
func errorKind(_ error: ViTError) -> String {
    switch error {
    case .fileUnreadable: "fileUnreadable"
    case .imageDecodingFailed: "imageDecodingFailed"
    case .jpegDecodingFailed: "jpegDecodingFailed"
    case .unknownImageFormat: "unknownImageFormat"
    case .imageTooLarge: "imageTooLarge"
    case .writeFailed: "writeFailed"
    case .refusingToOverwrite: "refusingToOverwrite"
    case .invalidCheckpoint: "invalidCheckpoint"
    case .invalidConfiguration: "invalidConfiguration"
    case .missingWeight: "missingWeight"
    case .shapeMismatch: "shapeMismatch"
    case .unusedWeights: "unusedWeights"
    case .modelNotFound: "modelNotFound"
    case .invalidArgument: "invalidArgument"
    case .hub: "hub"
    }
}

/// Runs `body`, which must throw a ``ViTError``; returns the error.
func expectViTError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> ViTError? {
    do {
        try body()
        Issue.record("no error was thrown", sourceLocation: sourceLocation)
    } catch let error as ViTError {
        return error
    } catch {
        Issue.record("threw \(type(of: error)) (\(error)), not a ViTError", sourceLocation: sourceLocation)
    }
    return nil
}

/// Checks a message against a case: one line, names the file, says what is wrong.
func checkMessage(_ message: String, _ c: BrokenInputs.Case, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(!message.contains("\n") && !message.contains("\r"), "not one line: \(message)", sourceLocation: sourceLocation)
    #expect(message.contains(c.namedPath), "does not name \(c.namedPath): \(message)", sourceLocation: sourceLocation)
    #expect(message.contains(c.expect), "does not say '\(c.expect)': \(message)", sourceLocation: sourceLocation)
    // Names read from the file are shortened: the line stays readable whatever the file holds.
    #expect(message.count < c.namedPath.count + 500, "\(message.count) characters", sourceLocation: sourceLocation)
}

/// Captures what is written to file descriptor 2 (where the CLI prints per-image errors) while `body` runs.
///
/// Tests run concurrently and may write to stderr meanwhile: everything captured that `keep` does not claim is
/// written back to the real stderr afterwards. Captures are serialised by a lock.
enum StandardErrorCapture {
    private static let lock = NSLock()

    static func capture<T>(keep: (String) -> Bool, _ body: () throws -> T) throws -> (T, [String]) {
        lock.lock()
        defer { lock.unlock() }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vit-stderr-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        ).path
        let fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ViTError.fileUnreadable(path: file, reason: "cannot create") }
        defer {
            close(fd)
            unlink(file)
        }
        let saved = dup(2)
        dup2(fd, 2)
        let result: Result<T, Error> = Result { try body() }
        dup2(saved, 2)
        close(saved)
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        var kept: [String] = []
        var others = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if keep(String(line)) { kept.append(String(line)) } else { others += line + "\n" }
        }
        if !others.isEmpty { FileHandle.standardError.write(Data(others.utf8)) }
        return (try result.get(), kept)
    }
}

@Suite("Hostile inputs: broken PNGs and checkpoints are refused with one clear line")
struct HostileInputTests {
    // MARK: PNG

    @Test("the corpus is complete and small")
    func corpus() throws {
        #expect(BrokenInputs.pngs.count >= 40)
        #expect(BrokenInputs.checkpoints.count >= 50)
        let enumerator = FileManager.default.enumerator(at: BrokenInputs.root, includingPropertiesForKeys: [.fileSizeKey])!
        var total = 0
        for case let url as URL in enumerator { total += try url.resourceValues(forKeys: [.fileSizeKey]).fileSize ?? 0 }
        #expect(total < 1 << 20, "the broken corpus is \(total) bytes")
        #expect(try PNGDecoder.read(BrokenInputs.validPNG).width == 8)
    }

    @Test("PNGDecoder.read refuses each broken PNG with one line naming the file and the problem", arguments: BrokenInputs.pngs)
    func decoderRefuses(_ c: BrokenInputs.Case) throws {
        let error = try #require(expectViTError { _ = try PNGDecoder.read(c.path) })
        #expect(errorKind(error) == c.error, "\(error)")
        checkMessage(error.errorDescription ?? "", c)
    }

    @Test("PNGDecoder.decode (bytes in memory) gives the same error", arguments: BrokenInputs.pngs)
    func decodeInMemory(_ c: BrokenInputs.Case) throws {
        let data = try FileIO.read(c.path, limit: 1 << 20)
        let error = expectViTError { _ = try PNGDecoder.decode(data, name: c.path) }
        let fromFile = expectViTError { _ = try PNGDecoder.read(c.path) }
        #expect(error != nil && error == fromFile)
    }

    @Test("the CLI prints one 'error:' line per broken PNG and exits 2", arguments: BrokenInputs.pngs)
    func cliRefuses(_ c: BrokenInputs.Case) throws {
        // The CLI reads through ImageDecoder, which picks the decoder by signature: a JPEG header named .png
        // (not_png_jpeg) is a JPEG's problem there, and a file that is neither says which formats are supported.
        let expected = expectViTError { _ = try ImageDecoder.read(c.path) }
        let (code, lines) = try StandardErrorCapture.capture(keep: { $0.contains(c.path) }) {
            let command = try Classify.parse([c.path, "--model", BrokenInputs.model, "--format", "json"])
            var code: Int32 = 0
            do { try command.run() } catch let exit as ExitCode { code = exit.rawValue } catch { code = -1 }
            return code
        }
        #expect(code == 2)
        #expect(lines == ["error: " + (expected?.errorDescription ?? "?")])
        guard let line = lines.first else { return }
        if case .jpegDecodingFailed = expected {
            #expect(line.contains("\(c.path): not a readable JPEG: ") && !line.contains("\n"), "\(line)")
        } else {
            checkMessage(line, c)
        }
    }

    @Test("--max-pixels is checked against the header, through the CLI too")
    func maxPixelsOption() throws {
        let path = BrokenInputs.validPNG
        let (code, lines) = try StandardErrorCapture.capture(keep: { $0.contains(path) }) {
            let command = try Classify.parse([path, "--model", BrokenInputs.model, "--max-pixels", "63"])
            do { try command.run() } catch let exit as ExitCode { return exit.rawValue }
            return 0
        }
        #expect(code == 2)
        #expect(lines == ["error: \(path): image is 8×8 = 64 pixels, over the limit of 63 (raise it with --max-pixels)"])
    }

    @Test("the decompression bomb (400 megapixels in a small file) is refused from its header")
    func bomb() throws {
        let c = BrokenInputs.png("bomb_400_megapixels")
        let size = try FileManager.default.attributesOfItem(atPath: c.path)[.size] as! Int
        #expect(size < 64 * 1024, "the bomb is \(size) bytes")
        // Refused from the IHDR's size, before the 50 MB of rows are inflated or the 1.2 GB RGB buffer is allocated.
        let error = expectViTError { _ = try PNGDecoder.read(c.path) }
        #expect(error == .imageTooLarge(path: c.path, width: 20000, height: 20000, limit: ImageReadOptions.defaultMaxPixels))
        // Just under the image's size is still refused (the limit is inclusive of what it allows).
        #expect(throws: ViTError.imageTooLarge(path: c.path, width: 20000, height: 20000, limit: 399_999_999)) {
            try PNGDecoder.read(c.path, options: ImageReadOptions(maxPixels: 399_999_999))
        }
        let absurd = BrokenInputs.png("absurd_100000x100000")
        #expect(throws: ViTError.imageTooLarge(path: absurd.path, width: 100000, height: 100000, limit: 100_000_000)) {
            try PNGDecoder.read(absurd.path)
        }
    }

    @Test("valid PNGs built to exhaust a decoder (text-chunk bombs) decode to the plain image")
    func hostileValidPNGs() throws {
        let reference = try PNGDecoder.read(BrokenInputs.validPNG)
        for file in BrokenInputs.hostileValidPNGs {
            #expect(try PNGDecoder.read(file.path) == reference, "\(file.name)")
        }
    }

    // MARK: Checkpoints

    @Test("the tiny control checkpoints load and classify", arguments: BrokenInputs.validCheckpoints)
    func controlsLoad(_ path: String) throws {
        let classifier = try Classifier(modelPath: path)
        let result = classifier.classify([try PNGDecoder.read(BrokenInputs.validPNG)], topK: 3)[0]
        #expect(result.predictions.map(\.label).sorted() == ["one", "two", "zero"])
    }

    @Test(
        "Checkpoint.load refuses each broken checkpoint with one line naming the file and the problem",
        arguments: BrokenInputs.checkpoints)
    func checkpointRefused(_ c: BrokenInputs.Case) throws {
        let error = try #require(expectViTError { _ = try Checkpoint.load(path: c.path) })
        #expect(errorKind(error) == c.error, "\(error)")
        checkMessage(error.errorDescription ?? "", c)
        // The same error through the public facade and through the CLI (model errors are thrown, exit 1).
        let viaClassifier = expectViTError { _ = try Classifier(modelPath: c.path) }
        #expect(viaClassifier == error)
        let viaCLI = expectViTError {
            let command = try Classify.parse([BrokenInputs.validPNG, "--model", c.path])
            try command.run()
        }
        #expect(viaCLI == error)
    }

    @Test(
        "a safetensors file given directly (not its folder) names the same problem",
        arguments: BrokenInputs.checkpoints.filter {
            $0.names == "model.safetensors" && $0.error == "invalidCheckpoint"
        })
    func safetensorsDirectly(_ c: BrokenInputs.Case) throws {
        let error = try #require(expectViTError { _ = try SafeTensorsFile(path: c.namedPath) })
        #expect(errorKind(error) == "invalidCheckpoint")
        checkMessage(error.errorDescription ?? "", c)
    }
}
