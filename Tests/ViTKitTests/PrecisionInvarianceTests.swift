import Foundation
import Testing

@testable import ViTKit

/// The reproducibility guarantee of ``BatchInvarianceTests`` for the reduced precisions: in BF16 and INT8, an image's
/// logits are the same bits alone or in a batch of any size and position, on any thread count (activations are
/// quantised per row, and every output element's summation order is fixed by the packed kernel, not by M or the
/// thread split).
@Suite("Precision: same bits whatever the batch or threads", .serialized)
struct PrecisionInvarianceTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let path: String
        let precision: Precision
        var testDescription: String { "\(name) \(precision.rawValue)" }
    }

    static let cases: [Case] = [Precision.bf16, .int8].flatMap { p in
        (Fixtures.models.map { ($0.name, $0.dir) } + [("default model", DefaultModelTests.modelPath)]).map {
            Case(name: $0.0, path: $0.1, precision: p)
        }
    }

    @Test("random batches (1–16 images, any positions) on 1–4 threads equal each image alone", arguments: cases)
    func randomBatches(c: Case) throws {
        let classifiers = try (1...4).map { try Classifier(modelPath: c.path, threads: $0, precision: c.precision) }
        let a = classifiers[0].model.architecture
        let images = BatchInvarianceTests.inputs(
            count: 6, size: a.channels * a.imageHeight * a.imageWidth, seed: UInt64(c.name.count + 31))
        let alone = images.map { BatchInvarianceTests.bits(classifiers[0].logits(preprocessed: [$0]).logits[0]) }
        var rng = SystemRandomNumberGenerator()
        for trial in 0..<8 {
            let size = Int.random(in: 1...16, using: &rng), threads = 1 + trial % 4
            let picks = (0..<size).map { _ in Int.random(in: 0..<images.count, using: &rng) }
            let logits = classifiers[threads - 1].logits(preprocessed: picks.map { images[$0] }).logits
            for (position, image) in picks.enumerated() {
                let same = BatchInvarianceTests.bits(logits[position]) == alone[image]
                #expect(same, "image \(image) at \(position) of \(size), \(threads) threads: logits differ")
            }
        }
    }
}
