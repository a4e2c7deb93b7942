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
/// All perturbed copies of one image go through the model as one batch.
package final class FaithfulnessBenchmark {
    package struct Row: Sendable {
        package var method: String
        package var positiveAUC: Double
        package var negativeAUC: Double
        package var deletionAUC: Double
        package var insertionAUC: Double
    }

    package let explainer: Explainer
    package let methods: [ExplanationMethod]
    package let steps: Int
    package let settings: ExplanationSettings
    package private(set) var images = 0
    /// Per method (then random): summed curves `[positive, negative, deletion, insertion][steps + 1]`.
    private var sums: [[[Double]]]

    package init(explainer: Explainer, methods: [ExplanationMethod], steps: Int = 10, settings: ExplanationSettings = ExplanationSettings()) throws {
        guard steps >= 1 && steps <= 1000 else { throw ViTError.invalidArgument("the number of perturbation steps must be between 1 and 1000, not \(steps)") }
        self.explainer = explainer
        self.methods = methods
        self.steps = steps
        self.settings = settings
        sums = Array(repeating: Array(repeating: Array(repeating: 0, count: steps + 1), count: 4), count: methods.count + 1)
    }

    /// Adds one preprocessed image (`[channels][height][width]`) with its true class.
    package func add(_ input: [Float], label: Int) throws {
        let a = explainer.classifier.model.architecture
        let explained = try explainer.explain(preprocessed: input, methods: methods, topK: 1, settings: settings)
        let predicted = explained.classification.predictions[0].index
        let patches = a.patchCount, p = a.patchSize
        var orders: [[Int]] = explained.explanations.map { e in
            let relevance = e.method == .inputGradient ? Self.perPatch(e.values, width: e.width, patch: p, grid: a.gridWidth, cells: patches) : e.values
            return relevance.indices.sorted { relevance[$0] != relevance[$1] ? relevance[$0] > relevance[$1] : $0 < $1 }
        }
        var generator = SplitMix64(state: UInt64(images) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
        var random = Array(0..<patches)
        for i in stride(from: patches - 1, to: 0, by: -1) { random.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
        orders.append(random)

        // Every perturbed copy of this image, in one batch: per order, positive and negative × steps + 1.
        var batch: [[Float]] = []
        for order in orders {
            for k in 0...steps {
                let count = (k * patches + steps / 2) / steps
                batch.append(Self.removing(Array(order.prefix(count)), from: input, a))  // positive, deletion
                batch.append(Self.removing(Array(order.reversed().prefix(count)), from: input, a))  // negative, insertion
            }
        }
        let (logits, _) = explainer.classifier.logits(preprocessed: batch)
        for m in orders.indices {
            let base = m * 2 * (steps + 1)
            for k in 0...steps {
                let positive = logits[base + 2 * k], negative = logits[base + 2 * k + 1]
                sums[m][0][k] += Self.argmax(positive) == label ? 1 : 0
                sums[m][1][k] += Self.argmax(negative) == label ? 1 : 0
                sums[m][2][k] += Self.probability(positive, predicted)
                sums[m][3][steps - k] += Self.probability(negative, predicted)
            }
        }
        images += 1
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

/// SplitMix64 with a fixed seed (the benchmark's random order must not change between runs).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
