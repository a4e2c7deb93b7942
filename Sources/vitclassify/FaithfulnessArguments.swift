import ArgumentParser
import Foundation
import ViTKit

/// `eval --faithfulness`: the perturbation benchmark of the explanation methods (``FaithfulnessBenchmark``).
struct FaithfulnessArguments: ParsableArguments {
    @Flag(
        name: .long,
        help: "Instead of accuracy, run the perturbation tests of the explanation methods (Chefer et al. 2021: positive and negative perturbation AUC of the accuracy; Petsiuk et al. 2018: deletion and insertion AUC of the predicted class's probability), with a random-order baseline. Removed patches are set to the dataset mean (the model's normalisation mean).")
    var faithfulness = false

    @Option(
        name: .customLong("explain"),
        help: ArgumentHelp("With --faithfulness: the methods to compare (repeatable or comma-separated; default: all).", valueName: "METHOD"))
    var methods: [String] = []

    @Option(name: .long, help: ArgumentHelp("With --faithfulness: perturbation steps from none to all patches.", valueName: "N"))
    var steps: Int = 10

    @Option(name: .long, help: ArgumentHelp("With --faithfulness: use only the first N images (in folder order).", valueName: "N"))
    var limit: Int?

    var parsedMethods: [ExplanationMethod] {
        let names = methods.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        return names.isEmpty ? ExplanationMethod.allCases : names.compactMap(ExplanationMethod.init(rawValue:))
    }

    func validate() throws {
        for name in methods.flatMap({ $0.split(separator: ",") }) where ExplanationMethod(rawValue: name.trimmingCharacters(in: .whitespaces)) == nil {
            throw ValidationError("--explain: unknown method '\(name)'")
        }
        if !faithfulness && (!methods.isEmpty || limit != nil) { throw ValidationError("--explain and --limit go with --faithfulness") }
        if steps < 1 || steps > 1000 { throw ValidationError("--steps must be between 1 and 1000") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }
}

extension Eval {
    /// Runs the faithfulness benchmark over `paths` (true classes in `truth`) and prints its table.
    func runFaithfulness(_ classifier: Classifier, paths allPaths: [String], truth: [String: Int], format: OutputFormat) throws {
        let options = faithfulnessArguments
        let paths = options.limit.map { Array(allPaths.prefix($0)) } ?? allPaths
        // Images are explained concurrently, one single-threaded explainer per thread, when each explainer's copy of
        // the transposed weights is small (the default model); a large model's explainer uses all threads itself.
        let a = classifier.model.architecture
        let weightBytes = 4 * a.depth * (4 * a.embedDim * a.embedDim + 2 * a.embedDim * a.mlpDim)
        let workers = weightBytes <= 64 << 20 ? classifier.threads : 1
        let benchmark = try FaithfulnessBenchmark(
            explainer: try Explainer(classifier: classifier), methods: options.parsedMethods, steps: options.steps,
            workers: workers)
        let progress = ProgressReporter(total: paths.count, quiet: quiet)
        var failed = 0
        for start in stride(from: 0, to: paths.count, by: 64) {
            var chunk: [(input: [Float], label: Int)] = []
            for path in paths[start..<min(start + 64, paths.count)] {
                do {
                    chunk.append((classifier.preprocess(try ImageDecoder.read(path, options: imageArguments.options)), truth[path]!))
                } catch {
                    failed += 1
                    printError("warning: \((error as? ViTError)?.errorDescription ?? "\(error)")")
                }
            }
            try benchmark.add(chunk)
            progress.update(done: benchmark.images + failed, failed: failed)
        }
        let seconds = progress.elapsed
        let rows = benchmark.rows
        switch format {
        case .json:
            print(
                JSONValue.object([
                    ("model", .string(classifier.info.name)), ("directory", .string(directory)),
                    ("images", .int(benchmark.images)), ("failed", .int(failed)), ("steps", .int(options.steps)),
                    (
                        "faithfulness",
                        .array(
                            rows.map {
                                .object([
                                    ("method", .string($0.method)), ("positive_auc", .double($0.positiveAUC)),
                                    ("negative_auc", .double($0.negativeAUC)), ("deletion_auc", .double($0.deletionAUC)),
                                    ("insertion_auc", .double($0.insertionAUC)),
                                ])
                            })
                    ),
                    ("seconds", .double(seconds)),
                ]).rendered)
        case .text:
            print(
                "faithfulness of the explanations of \(classifier.info.name) on \(directory): \(benchmark.images) images"
                    + (failed > 0 ? ", \(failed) unreadable" : "") + String(format: ", %.0f s", seconds))
            print("AUC in %, \(options.steps) steps; positive and deletion: lower is better; negative and insertion: higher is better")
            let width = max(6, rows.map(\.method.count).max() ?? 0)
            print("  " + "method".padding(toLength: width, withPad: " ", startingAt: 0) + "  positive  negative  deletion  insertion")
            for r in rows {
                print(
                    "  " + r.method.padding(toLength: width, withPad: " ", startingAt: 0)
                        + String(format: "  %8.2f  %8.2f  %8.2f  %9.2f", r.positiveAUC, r.negativeAUC, r.deletionAUC, r.insertionAUC))
            }
        }
    }
}
