import Foundation
import Testing

@testable import ViTKit
@testable import vitclassify

/// The shipped default model (weights/fashion-mnist-vit), its sample images, and its accuracy over the whole
/// Fashion-MNIST test split (Debian package dataset-fashion-mnist, which .ci/run installs).
@Suite("Default model")
struct DefaultModelTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let modelPath = repository.appendingPathComponent("weights/fashion-mnist-vit").path
    static let imagesPath = repository.appendingPathComponent("images").path
    static let datasetPath = "/usr/share/datasets/fashion-mnist"

    /// The test split, read once for all the tests that need it.
    static let testSplit = Result { try TestSplit.load() }

    /// The tests that read the test split are skipped (not passed) where its files or gzip are missing.
    static let hasDataset = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"].allSatisfy {
        FileManager.default.isReadableFile(atPath: "\(datasetPath)/\($0)")
    }
    static let gzip = "/bin/gzip"
    static let hasGzip = FileManager.default.isExecutableFile(atPath: gzip)

    /// The Fashion-MNIST test split: 10,000 28×28 gray images and their labels, from the IDX files.
    struct TestSplit {
        let images: [[UInt8]]
        let labels: [Int]

        static func load() throws -> TestSplit {
            let pixels = try gunzip("\(datasetPath)/t10k-images-idx3-ubyte.gz")
            let labels = try gunzip("\(datasetPath)/t10k-labels-idx1-ubyte.gz")
            func be32(_ d: [UInt8], _ o: Int) -> Int {
                Int(d[o]) << 24 | Int(d[o + 1]) << 16 | Int(d[o + 2]) << 8 | Int(d[o + 3])
            }
            try #require(be32(pixels, 0) == 2051 && be32(labels, 0) == 2049, "not IDX files")
            let count = be32(pixels, 4), rows = be32(pixels, 8), columns = be32(pixels, 12)
            try #require(count == 10_000 && rows == 28 && columns == 28 && be32(labels, 4) == count)
            let size = rows * columns
            return TestSplit(
                images: (0..<count).map { Array(pixels[(16 + $0 * size)..<(16 + ($0 + 1) * size)]) },
                labels: labels[8..<(8 + count)].map(Int.init))
        }

        static func gunzip(_ path: String) throws -> [UInt8] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: DefaultModelTests.gzip)
            process.arguments = ["-dc", path]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            try #require(process.terminationStatus == 0, "cannot read \(path) (apt-get install dataset-fashion-mnist)")
            return [UInt8](data)
        }

        func rgb(_ i: Int) -> RGBImage {
            RGBImage(width: 28, height: 28, trustedPixels: images[i].flatMap { [$0, $0, $0] })
        }
    }

    /// The engine's test-split count as the model card states it: "... N/10000 ..." on the line naming the engine.
    static func documentedCorrect() throws -> Int {
        let card = try String(contentsOfFile: modelPath + "/README.md", encoding: .utf8)
        let line = try #require(card.split(separator: "\n").first { $0.contains("Swift engine") && $0.contains("/10000") })
        let match = try #require(line.firstMatch(of: /(\d+)\/10000/))
        return Int(match.1)!
    }

    @Test("the shipped sample images are classified as their names say")
    func samples() throws {
        let classifier = try Classifier(modelPath: Self.modelPath)
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.imagesPath).filter { $0.hasSuffix(".png") }.sorted()
        #expect(files.count >= 20)
        func slug(_ file: String) -> String { file.dropLast(4).split(separator: "-").dropLast().joined(separator: "-") }
        for file in files {
            let slug = slug(file)
            let result = classifier.classify([try PNGDecoder.read(Self.imagesPath + "/" + file)], topK: 1)[0]
            #expect(
                Evaluation.normalise(result.predictions[0].label) == Evaluation.normalise(slug),
                "\(file): \(result.predictions[0].label)")
        }
        #expect(Set(files.map(slug)).count == 10)
    }

    @Test(
        "accuracy over the 10,000 test images is at least 91%, as documented, and agrees with PyTorch",
        .enabled(if: hasDataset, "needs the Fashion-MNIST test split in \(datasetPath) (apt-get install dataset-fashion-mnist)"),
        .enabled(if: hasGzip, "needs \(gzip)"))
    func testSplitAccuracy() throws {
        let split = try Self.testSplit.get()
        let classifier = try Classifier(modelPath: Self.modelPath)
        let torch = try String(
            contentsOfFile: Fixtures.resources.appendingPathComponent("fashion-mnist/torch_predictions.txt").path, encoding: .utf8
        )
        .split(separator: "\n").map { Int($0)! }
        try #require(torch.count == 10_000)
        var correct = 0, agree = 0
        for first in stride(from: 0, to: 10_000, by: 500) {
            let batch = (first..<(first + 500)).map { classifier.preprocess(split.rgb($0)) }
            for (offset, logits) in classifier.logits(preprocessed: batch).logits.enumerated() {
                let predicted = logits.indices.max { logits[$0] < logits[$1] }!
                if predicted == split.labels[first + offset] { correct += 1 }
                if predicted == torch[first + offset] { agree += 1 }
            }
        }
        print("default model: \(correct)/10000 correct, \(agree)/10000 agree with PyTorch")
        #expect(correct >= 9_100)
        #expect(agree >= 9_990)
        #expect(correct == (try Self.documentedCorrect()))
    }

    @Test(
        "logits equal PyTorch's on the first 64 test images",
        .enabled(if: hasDataset, "needs the Fashion-MNIST test split in \(datasetPath) (apt-get install dataset-fashion-mnist)"),
        .enabled(if: hasGzip, "needs \(gzip)"))
    func logits() throws {
        let split = try Self.testSplit.get()
        let classifier = try Classifier(modelPath: Self.modelPath)
        let data = try Data(contentsOf: Fixtures.resources.appendingPathComponent("fashion-mnist/torch_logits_first64.json"))
        let expected = (try JSONSerialization.jsonObject(with: data) as! [String: Any])["logits"] as! [[Double]]
        let ours = classifier.logits(preprocessed: (0..<64).map { classifier.preprocess(split.rgb($0)) }).logits
        for i in 0..<64 {
            #expect(maxAbsDifference(ours[i], expected[i].map(Float.init)) <= 1e-4)
        }
    }

    @Test("vitclassify IMAGE with no flags uses the default model from any working directory")
    func cliDefaultModel() throws {
        let outcome = try CLI.run([Self.imagesPath + "/ankle-boot-1.png", "--format", "json"], in: URL(fileURLWithPath: "/"))
        #expect(outcome.status == 0)
        let object = try JSONSerialization.jsonObject(with: outcome.stdout) as! [String: Any]
        #expect(object["model"] as? String == "fashion-mnist-vit")
        let top = (object["predictions"] as! [[String: Any]])[0]
        #expect(top["label"] as? String == "Ankle boot")
    }

    @Test(
        "eval over the test split exported as an ImageFolder equals the documented accuracy",
        .enabled(if: hasDataset, "needs the Fashion-MNIST test split in \(datasetPath) (apt-get install dataset-fashion-mnist)"),
        .enabled(if: hasGzip, "needs \(gzip)"))
    func evalCommand() throws {
        let split = try Self.testSplit.get()
        let classifier = try Classifier(modelPath: Self.modelPath)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vit-fmnist-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let folders = classifier.info.labels.map { $0.replacingOccurrences(of: "/", with: "-").lowercased() }
        for folder in folders {
            try FileManager.default.createDirectory(
                at: directory.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        for i in 0..<10_000 {
            try PNGEncoder.write(split.rgb(i), to: directory.appendingPathComponent("\(folders[split.labels[i]])/\(i).png").path)
        }
        let outcome = try CLI.run(["eval", directory.path, "--format", "json", "--quiet", "--model", Self.modelPath])
        #expect(outcome.status == 0)
        let result = try JSONSerialization.jsonObject(with: outcome.stdout) as! [String: Any]
        #expect(result["images"] as? Int == 10_000)
        let top1 = try #require(result["top1"] as? Double)
        #expect(Int((top1 * 10_000).rounded()) == (try Self.documentedCorrect()))
    }
}
