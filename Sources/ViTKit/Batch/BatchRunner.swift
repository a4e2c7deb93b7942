import Foundation

/// The outcome for one file of a batch run.
package struct ImageOutcome: Sendable {
    package let path: String
    package let result: Result<Classification, ViTError>
    /// The decoded image, kept only when the run was asked to keep images (for overlays).
    package let image: RGBImage?
}

/// Classifies a list of files in batches: the next batch is decoded and preprocessed on a background thread while
/// the current one runs through the network; results are handed over batch by batch, in file order. At most two
/// batches of images are in memory at any time, whatever the number of files.
package final class BatchRunner: @unchecked Sendable {
    package let classifier: Classifier
    package let batchSize: Int
    package let readOptions: ImageReadOptions
    package let topK: Int
    package let attention: Bool
    package let keepImages: Bool

    package init(
        classifier: Classifier, batchSize: Int, readOptions: ImageReadOptions, topK: Int, attention: Bool = false,
        keepImages: Bool = false
    ) {
        self.classifier = classifier
        self.batchSize = max(1, batchSize)
        self.readOptions = readOptions
        self.topK = topK
        self.attention = attention
        self.keepImages = keepImages
    }

    private struct Prepared: @unchecked Sendable {
        var paths: [String]
        var inputs: [Result<[Float], ViTError>]
        var images: [RGBImage?]
    }

    /// Runs every path and calls `handle` with each batch's outcomes, in order. `shouldStop` is checked between
    /// batches (to finish cleanly on Ctrl-C).
    package func run(
        _ paths: [String], shouldStop: @escaping @Sendable () -> Bool = { false }, handle: ([ImageOutcome]) throws -> Void
    ) throws {
        let batches = stride(from: 0, to: paths.count, by: batchSize).map { Array(paths[$0..<min($0 + batchSize, paths.count)]) }
        let queue = BoundedQueue<Prepared>(capacity: 1)
        let producer = Thread { [self] in
            for batch in batches {
                if shouldStop() || queue.isCancelled { break }
                var prepared = Prepared(paths: batch, inputs: [], images: [])
                for path in batch {
                    do {
                        let image = try ImageDecoder.read(path, options: readOptions)
                        prepared.inputs.append(.success(classifier.preprocess(image)))
                        prepared.images.append(keepImages ? image : nil)
                    } catch let error as ViTError {
                        prepared.inputs.append(.failure(error))
                        prepared.images.append(nil)
                    } catch {
                        prepared.inputs.append(.failure(.imageDecodingFailed(path: path, reason: "\(error)")))
                        prepared.images.append(nil)
                    }
                }
                if !queue.push(prepared) { break }
            }
            queue.finish()
        }
        producer.stackSize = 8 << 20
        producer.start()
        defer { queue.cancel() }
        while let prepared = queue.pop() {
            let good = prepared.inputs.compactMap { try? $0.get() }
            let (logits, recorder) = classifier.logits(preprocessed: good, attention: attention)
            var outcomes: [ImageOutcome] = []
            var next = 0
            for (i, input) in prepared.inputs.enumerated() {
                switch input {
                case .success:
                    let classification = Classification(
                        logits: logits[next],
                        predictions: Classifier.rank(logits[next], labels: classifier.info.labels, topK: topK),
                        attention: recorder.map {
                            AttentionMaps(probabilities: $0.attention(image: next), architecture: classifier.model.architecture)
                        })
                    outcomes.append(
                        ImageOutcome(path: prepared.paths[i], result: .success(classification), image: prepared.images[i]))
                    next += 1
                case .failure(let error):
                    outcomes.append(ImageOutcome(path: prepared.paths[i], result: .failure(error), image: nil))
                }
            }
            try handle(outcomes)
            if shouldStop() { break }
        }
    }
}
