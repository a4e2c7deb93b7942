import Foundation

/// Finding the images of a folder, in a deterministic order, or of a list of files.
package enum ImageFolder {
    /// The extensions a folder walk picks (compared ignoring case); the format itself is told by each file's
    /// signature when it is read.
    package static let extensions = ["png", "jpg", "jpeg"]

    static func isImageName(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: ".") else { return false }
        return extensions.contains(name[name.index(after: dot)...].lowercased())
    }

    /// Every `*.png`, `*.jpg` and `*.jpeg` (extension case-insensitive) under `directory` — recursively when asked —
    /// as paths `directory/relative`, sorted by the bytes of their UTF-8 paths.
    package static func imageFiles(in directory: String, recursive: Bool) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw ViTError.fileUnreadable(path: directory, reason: "no such folder")
        }
        guard isDirectory.boolValue else { throw ViTError.fileUnreadable(path: directory, reason: "not a folder") }
        let base = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        var relatives: [String] = []
        if recursive {
            guard let enumerator = FileManager.default.enumerator(atPath: directory) else {
                throw ViTError.fileUnreadable(path: directory, reason: "cannot list the folder")
            }
            while let relative = enumerator.nextObject() as? String {
                if isImageName(relative) { relatives.append(relative) }
            }
        } else {
            do {
                relatives = try FileManager.default.contentsOfDirectory(atPath: directory).filter(isImageName)
            } catch {
                throw ViTError.fileUnreadable(path: directory, reason: "cannot list the folder: \(FileIO.errnoText(EACCES))")
            }
        }
        let paths = relatives.map { base.isEmpty ? "/" + $0 : base + "/" + $0 }.filter { path in
            var isDirectory: ObjCBool = false
            return !(FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue)
        }
        return paths.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// The paths listed in a file, one per line, in the order given (LF or CRLF line ends; empty lines are skipped);
    /// a path may name any file (its format is told by its signature when it is read).
    package static func listedFiles(at path: String) throws -> [String] {
        listedFiles(String(decoding: try FileIO.read(path, limit: 1 << 30), as: UTF8.self))
    }

    /// The paths listed in `text` (see ``listedFiles(at:)``).
    package static func listedFiles(_ text: String) -> [String] {
        // "\r\n" is one Character in Swift: split on any line break (\n, \r\n, \r).
        text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline).map(String.init)
    }
}

/// One part of a file list when N processes share the work: `--shard K/N` takes the files at positions
/// K−1, K−1+N, K−1+2N, … of the sorted list, so N shards classify every file exactly once.
package struct Shard: Sendable, Equatable {
    package let index: Int
    package let count: Int

    /// Parses `K/N` with 1 ≤ K ≤ N.
    package init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]), n >= 1, k >= 1, k <= n else { return nil }
        index = k
        count = n
    }

    package func select<T>(_ items: [T]) -> [T] {
        items.enumerated().filter { $0.offset % count == index - 1 }.map(\.element)
    }
}

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

/// A single-producer, single-consumer queue holding at most `capacity` items.
final class BoundedQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private var finished = false
    private(set) var isCancelled = false
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// Blocks while full; false if the consumer went away.
    func push(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= capacity && !isCancelled { condition.wait() }
        if isCancelled { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// Blocks while empty; nil once the producer finished and everything was taken.
    func pop() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !finished { condition.wait() }
        if items.isEmpty { return nil }
        let item = items.removeFirst()
        condition.broadcast()
        return item
    }

    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    func cancel() {
        condition.lock()
        isCancelled = true
        finished = true
        condition.broadcast()
        condition.unlock()
    }
}
