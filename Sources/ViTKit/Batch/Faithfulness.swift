import Foundation

/// The perturbation tests of Chefer, Gur & Wolf (CVPR 2021, §4.3) and the deletion / insertion metrics of Petsiuk et
/// al. (RISE, BMVC 2018), for the explanation methods, on labelled images.
///
/// For each image the explanation of the predicted class gives a relevance per patch (`input-gradient`: its values
/// summed over each patch). Patches are removed — every pixel of the patch set to the dataset mean, which is the
/// model's normalisation mean, 0 after preprocessing — in `steps` equal steps from none to all:
/// - **positive** perturbation: most relevant first; the area under the top-1 accuracy curve (vs the true label),
///   lower is better;
/// - **negative** perturbation: least relevant first; higher is better;
/// - **deletion**: most relevant first, the area under the predicted class's probability, lower is better;
/// - **insertion**: start from the all-mean image and reveal the most relevant patches first, the area under the
///   predicted class's probability, higher is better. Revealing the most relevant patches is removing the least
///   relevant ones, so step k of insertion is step `steps − k` of the negative perturbation (the same copy).
/// Areas are trapezoidal over the removed (or revealed) fraction 0, 1/steps, …, 1, in percent. A `random` row ranks the
/// patches in a random order per image (seeded by the image's index), the baseline every method should beat.
/// Chefer et al.'s own code removes pixels of the upsampled map (set to black) at 10 %, …, 90 %; this removes whole
/// patches, the unit the maps are computed on.
///
/// All perturbed copies of one image go through the model as one batch. With `workers` > 1, images are explained and
/// perturbed concurrently, each by one of `workers` single-threaded explainers (a tiny model's batch-1 backward pass
/// cannot keep two threads busy); every image's curves are computed alone and summed in input order, so the rows are
/// the same bits for any number of workers or threads.
package final class FaithfulnessBenchmark {
    package struct Row: Sendable {
        package var method: String
        package var positiveAUC: Double
        package var negativeAUC: Double
        package var deletionAUC: Double
        package var insertionAUC: Double
    }

    package let explainer: Explainer
    /// `explainer`, or `workers` single-threaded explainers on its classifier.
    private let explainers: [Explainer]
    package let methods: [ExplanationMethod]
    package let steps: Int
    package let settings: ExplanationSettings
    package private(set) var images = 0
    /// Per method (then random): summed curves `[positive, negative, deletion, insertion][steps + 1]`.
    private var sums: [[[Double]]]

    package init(
        explainer: Explainer, methods: [ExplanationMethod], steps: Int = 10, settings: ExplanationSettings = ExplanationSettings(),
        workers: Int = 1
    ) throws {
        guard steps >= 1 && steps <= 1000 else { throw ViTError.invalidArgument("the number of perturbation steps must be between 1 and 1000, not \(steps)") }
        self.explainer = explainer
        explainers = workers > 1 ? try (0..<workers).map { _ in try Explainer(classifier: explainer.classifier, threads: 1) } : [explainer]
        self.methods = methods
        self.steps = steps
        self.settings = settings
        sums = Array(repeating: Array(repeating: Array(repeating: 0, count: steps + 1), count: 4), count: methods.count + 1)
    }

    /// Adds one preprocessed image (`[channels][height][width]`) with its true class.
    package func add(_ input: [Float], label: Int) throws { try add([(input, label)]) }

    /// Adds preprocessed images with their true classes, in order (the n-th image of the run gets the n-th random
    /// order, whatever the workers).
    package func add(_ batch: [(input: [Float], label: Int)]) throws {
        let shared = Shared(count: batch.count)
        let explainers = explainers, methods = methods, steps = steps, settings = settings, first = images
        // Workers take the next image as they finish one; each image's curves go into its own slot.
        DispatchQueue.concurrentPerform(iterations: min(explainers.count, batch.count)) { w in
            while let i = shared.claim() {
                do {
                    let c = try Self.curves(
                        batch[i].input, label: batch[i].label, index: first + i, explainer: explainers[w], methods: methods,
                        steps: steps, settings: settings)
                    shared.store(c, at: i)
                } catch {
                    shared.fail(error)
                    return
                }
            }
        }
        if let failure = shared.failure { throw failure }
        for c in shared.curves {
            for m in sums.indices { for t in 0..<4 { for k in 0...steps { sums[m][t][k] += c![m][t][k] } } }
            images += 1
        }
    }

    /// The work queue and result slots of one ``add(_:)`` call, shared by its workers.
    private final class Shared: @unchecked Sendable {
        private let lock = NSLock()
        private var next = 0
        private(set) var curves: [[[[Double]]]?]
        private(set) var failure: Error?

        init(count: Int) { curves = Array(repeating: nil, count: count) }

        /// The next unclaimed image, or nil when all are taken or a worker failed.
        func claim() -> Int? {
            lock.withLock {
                guard failure == nil && next < curves.count else { return nil }
                next += 1
                return next - 1
            }
        }

        func store(_ c: [[[Double]]], at i: Int) { lock.withLock { curves[i] = c } }
        func fail(_ error: Error) { lock.withLock { failure = failure ?? error } }
    }

    /// One image's curves: per order (the methods, then random) `[positive, negative, deletion, insertion][steps + 1]`.
    private static func curves(
        _ input: [Float], label: Int, index: Int, explainer: Explainer, methods: [ExplanationMethod], steps: Int,
        settings: ExplanationSettings
    ) throws -> [[[Double]]] {
        let a = explainer.classifier.model.architecture
        let explained = try explainer.explain(preprocessed: input, methods: methods, topK: 1, settings: settings)
        let predicted = explained.classification.predictions[0].index
        let patches = a.patchCount, p = a.patchSize
        var orders: [[Int]] = explained.explanations.map { e in
            let relevance = e.method == .inputGradient ? Self.perPatch(e.values, width: e.width, patch: p, grid: a.gridWidth, cells: patches) : e.values
            return relevance.indices.sorted { relevance[$0] != relevance[$1] ? relevance[$0] > relevance[$1] : $0 < $1 }
        }
        var generator = SplitMix64(state: UInt64(index) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
        var random = Array(0..<patches)
        for i in stride(from: patches - 1, to: 0, by: -1) { random.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
        orders.append(random)

        // Every distinct perturbed copy of this image, in one batch: per order, positive and negative × steps + 1.
        // Removing no patch (the image itself) or every patch gives the same copy for every order: batched once.
        var batch = [input, Self.removing(Array(0..<patches), from: input, a)]
        let slots: [[Int]] = orders.map { order in  // per order: the batch index of positive, then negative, per step
            (0...steps).flatMap { k -> [Int] in
                let count = (k * patches + steps / 2) / steps
                return [Array(order.prefix(count)), Array(order.reversed().prefix(count))].map { removed in
                    if count == 0 { return 0 }
                    if count == patches { return 1 }
                    batch.append(Self.removing(removed, from: input, a))
                    return batch.count - 1
                }
            }
        }
        let logits = explainer.logits(preprocessed: batch)
        var curves = Array(repeating: Array(repeating: Array(repeating: 0.0, count: steps + 1), count: 4), count: orders.count)
        for m in orders.indices {
            for k in 0...steps {
                let positive = logits[slots[m][2 * k]], negative = logits[slots[m][2 * k + 1]]
                curves[m][0][k] = argmax(positive) == label ? 1 : 0
                curves[m][1][k] = argmax(negative) == label ? 1 : 0
                curves[m][2][k] = probability(positive, predicted)
                curves[m][3][steps - k] = probability(negative, predicted)
            }
        }
        return curves
    }

    /// One row per method, then `random`.
    package var rows: [Row] {
        let names = methods.map(\.rawValue) + ["random"]
        return names.indices.map { m in
            func auc(_ curve: [Double]) -> Double {
                guard images > 0 else { return 0 }
                var area = 0.0
                for k in 0..<steps { area += (curve[k] + curve[k + 1]) / 2 }
                return 100 * area / Double(steps) / Double(images)
            }
            return Row(
                method: names[m], positiveAUC: auc(sums[m][0]), negativeAUC: auc(sums[m][1]), deletionAUC: auc(sums[m][2]),
                insertionAUC: auc(sums[m][3]))
        }
    }

    static func perPatch(_ values: [Float], width: Int, patch: Int, grid: Int, cells: Int) -> [Float] {
        var out = [Float](repeating: 0, count: cells)
        for (i, v) in values.enumerated() { out[(i / width / patch) * grid + (i % width) / patch] += v }
        return out
    }

    static func removing(_ patches: [Int], from input: [Float], _ a: ViTArchitecture) -> [Float] {
        var x = input
        let p = a.patchSize, plane = a.imageHeight * a.imageWidth
        for cell in patches {
            let gy = cell / a.gridWidth, gx = cell % a.gridWidth
            for c in 0..<a.channels {
                for y in (gy * p)..<((gy + 1) * p) {
                    for xx in (gx * p)..<((gx + 1) * p) { x[c * plane + y * a.imageWidth + xx] = 0 }
                }
            }
        }
        return x
    }

    static func argmax(_ v: [Float]) -> Int { v.indices.max { v[$0] != v[$1] ? v[$0] < v[$1] : $0 > $1 } ?? 0 }

    static func probability(_ logits: [Float], _ index: Int) -> Double {
        let m = Double(logits.max() ?? 0)
        let total = logits.reduce(0.0) { $0 + exp(Double($1) - m) }
        return exp(Double(logits[index]) - m) / total
    }
}
