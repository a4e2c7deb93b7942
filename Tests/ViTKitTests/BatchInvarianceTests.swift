import Foundation
import Testing

@testable import ViTKit

/// The reproducibility guarantee: an image's logits and attention probabilities are the same bits whether it is
/// classified alone or in a batch of any size and position, with any thread count — on whichever kernel path this
/// process runs (CI runs the suite on every path: `VITCLASSIFY_ISA`).
@Suite("Same bits whatever the batch or threads", .serialized)
struct BatchInvarianceTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let path: String
        var testDescription: String { name }
    }

    static let cases: [Case] =
        Fixtures.models.map { Case(name: $0.name, path: $0.dir) }
        + FamilyParityTests.runs.map { Case(name: "family \($0.name)", path: $0.dir) }
        + [Case(name: "default model", path: DefaultModelTests.modelPath)]

    /// Deterministic inputs in roughly the range preprocessing produces (SplitMix64).
    static func inputs(count: Int, size: Int, seed: UInt64) -> [[Float]] {
        var generator = SplitMix64(state: seed)
        return (0..<count).map { _ in generator.floats(size, scale: 2) }
    }

    static func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    @Test("random batches (1–16 images, any positions) on 1–4 threads equal each image alone", arguments: cases)
    func randomBatches(c: Case) throws {
        // One classifier per thread count (1–4), each with its own workspace.
        let classifiers = try (1...4).map { try Classifier(modelPath: c.path, threads: $0) }
        let a = classifiers[0].model.architecture
        let images = Self.inputs(count: 6, size: a.channels * a.imageHeight * a.imageWidth, seed: UInt64(c.name.count))

        // Each image alone, on one thread.
        let alone = images.map { image in
            let classifier = classifiers[0]
            let (logits, recorder) = classifier.logits(preprocessed: [image], attention: true)
            return (logits: Self.bits(logits[0]), attention: Self.bits(recorder!.attention(image: 0).flatMap { $0.flatMap { $0 } }))
        }

        var rng = SystemRandomNumberGenerator()
        for trial in 0..<8 {
            let size = Int.random(in: 1...16, using: &rng), threads = 1 + trial % 4
            let picks = (0..<size).map { _ in Int.random(in: 0..<images.count, using: &rng) }
            let (logits, recorder) = classifiers[threads - 1].logits(preprocessed: picks.map { images[$0] }, attention: true)
            for (position, image) in picks.enumerated() {
                // Compared as Bools: a failure names the case without printing thousands of values.
                let sameLogits = Self.bits(logits[position]) == alone[image].logits
                #expect(sameLogits, "image \(image) at \(position) of \(size), \(threads) threads: logits differ")
                let attention = Self.bits(recorder!.attention(image: position).flatMap { $0.flatMap { $0 } })
                let sameAttention = attention == alone[image].attention
                #expect(sameAttention, "image \(image) at \(position) of \(size), \(threads) threads: attention differs")
            }
        }
    }

    /// The MLP runs in row chunks that fit a byte budget (4 MB by default, so small models never split): a budget of
    /// a few rows, splitting images across chunks at odd places, must not change a bit, nor must the number of
    /// per-thread attention score slots (one slot, on one thread, against the default on 3 threads).
    @Test("MLP row chunks and attention score slots do not change a bit", arguments: cases.prefix(4) + cases.suffix(1))
    func chunksAndSlots(c: Case) throws {
        let classifier = try Classifier(modelPath: c.path, threads: 3)
        let model = classifier.model, a = model.architecture
        let images = Self.inputs(count: 3, size: a.channels * a.imageHeight * a.imageWidth, seed: 11)
        var whole: Workspace? = Workspace(architecture: a, capacity: 3)
        let reference = model.logits(preprocessed: images, workspace: &whole, recorder: nil, threads: 3)
        #expect(whole!.mlpChunkRows == 3 * a.tokens)
        for rows in [1, 7, a.tokens - 1] {
            var chunked: Workspace? = Workspace(architecture: a, capacity: 3, mlpChunkBytes: rows * 4 * a.fc1Outputs)
            #expect(chunked!.mlpChunkRows == rows)
            for threads in [1, 3] {
                let logits = model.logits(preprocessed: images, workspace: &chunked, recorder: nil, threads: threads)
                let same = logits.map(Self.bits) == reference.map(Self.bits)
                #expect(same, "chunks of \(rows) rows, \(threads) threads")
            }
        }
    }

    @Test("two classifiers with different thread counts run at once and give the same bits")
    func concurrentClassifiers() throws {
        let path = DefaultModelTests.modelPath
        let one = try Classifier(modelPath: path, threads: 1), two = try Classifier(modelPath: path, threads: 2)
        let a = one.model.architecture
        let images = Self.inputs(count: 8, size: a.channels * a.imageHeight * a.imageWidth, seed: 7)
        let expected = one.logits(preprocessed: images).logits.map(Self.bits)
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var logits = [[[UInt32]]](repeating: [], count: 16)
        }
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            let classifier = i % 2 == 0 ? one : two
            let logits = classifier.logits(preprocessed: images).logits.map(Self.bits)
            results.lock.withLock { results.logits[i] = logits }
        }
        for (i, logits) in results.logits.enumerated() {
            let same = logits == expected
            #expect(same, "run \(i) (\(i % 2 == 0 ? 1 : 2) threads) differs")
        }
    }
}
