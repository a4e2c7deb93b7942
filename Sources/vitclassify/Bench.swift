import ArgumentParser
import Foundation
import ViTKit

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the forward pass on a synthetic input (after warm-up).",
        discussion: """
            Runs --iterations forward passes of --batch-size images after warm-up and reports ms per image (median
            and min), images/s, GFLOP/s (2 × multiply-adds), peak RSS, and the cold start: the wall time of a new
            'vitclassify' process classifying a real PNG with this model, from process start to result.
            The last line of --format json output is one object with exactly those fields.
            """)

    @OptionGroup var modelArguments: ModelArguments

    @Option(name: .long, help: ArgumentHelp("Images per forward pass.", valueName: "N"))
    var batchSize: Int = 1

    @Option(name: .long, help: ArgumentHelp("Timed forward passes.", valueName: "N"))
    var iterations: Int = 20

    @Option(name: .long, help: ArgumentHelp("Untimed forward passes first.", valueName: "N"))
    var warmup: Int = 3

    @Option(name: .long, help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Flag(name: .long, help: "Skip the cold-start measurement (reported as null).")
    var noColdStart = false

    @Flag(
        name: .long,
        help: "Also time one class-specific explanation of the first image (forward with the trace + one backward pass; gradients alone and with transformer-attribution) and its ratio to the forward at batch 1.")
    var explain = false

    func validate() throws {
        if batchSize < 1 || batchSize > 4096 { throw ValidationError("--batch-size must be between 1 and 4096") }
        if iterations < 1 { throw ValidationError("--iterations must be at least 1") }
        if warmup < 0 { throw ValidationError("--warmup must be 0 or more") }
    }

    func run() throws {
        let classifier = try modelArguments.load()
        let a = classifier.model.architecture
        var generator = SplitMix64(state: 42)
        let inputs = (0..<batchSize).map { _ in
            (0..<(a.channels * a.imageHeight * a.imageWidth)).map { _ in Float(generator.unit()) * 2 - 1 }
        }
        for _ in 0..<warmup { _ = classifier.logits(preprocessed: inputs) }
        var times: [Double] = []
        for _ in 0..<iterations {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = classifier.logits(preprocessed: inputs)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(batchSize))
        }
        times.sort()
        let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        let best = times[0]
        let peakRSS = Self.peakResidentMegabytes()
        let cold = noColdStart ? nil : try coldStart(classifier)
        let gflops = 2 * Double(a.macsPerImage) / (median / 1000) / 1e9
        let threads = classifier.threads
        var explanation: (gradients: Double, attribution: Double, forward: Double)?
        if explain {
            let explainer = try Explainer(classifier: classifier)
            var single: [Double] = []
            for _ in 0..<iterations {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = classifier.logits(preprocessed: [inputs[0]])
                single.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            single.sort()
            explanation = (
                try Self.explanationMilliseconds(explainer, input: inputs[0], methods: [], iterations: iterations, warmup: warmup),
                try Self.explanationMilliseconds(
                    explainer, input: inputs[0], methods: [.transformerAttribution], iterations: iterations, warmup: warmup),
                single[single.count / 2]
            )
        }
        if format == .text {
            print(
                """
                model:        \(classifier.info.name) (\(a.embedDim)d × \(a.depth) layers, \(a.heads) heads, \(a.imageHeight)×\(a.imageWidth), \(String(format: "%.2f", Double(a.macsPerImage) / 1e9)) GMACs/image)
                batch:        \(batchSize) images, \(threads) threads, \(iterations) iterations after \(warmup) warm-up
                ms per image: median \(String(format: "%.3f", median)), min \(String(format: "%.3f", best))
                throughput:   \(String(format: "%.1f", 1000 / median)) images/s, \(String(format: "%.1f", gflops)) GFLOP/s
                peak RSS:     \(String(format: "%.1f", peakRSS)) MB
                cold start:   \(cold.map { String(format: "%.1f ms", $0) } ?? "not measured")
                engine:       \(classifier.engineDescription)
                """)
            if let e = explanation {
                print(
                    "explanation:  batch 1, forward \(String(format: "%.1f", e.forward)) ms; gradients (forward with trace + backward) \(String(format: "%.1f", e.gradients)) ms = \(String(format: "%.2f", e.gradients / e.forward))×; with transformer-attribution \(String(format: "%.1f", e.attribution)) ms = \(String(format: "%.2f", e.attribution / e.forward))×"
                )
            }
            return
        }
        print(
            JSONValue.object([
                ("model", .string(classifier.info.name)), ("batch_size", .int(batchSize)), ("threads", .int(threads)),
                ("iterations", .int(iterations)), ("ms_per_image_median", .double(median)), ("ms_per_image_min", .double(best)),
                ("images_per_second", .double(1000 / median)), ("gflops_per_second", .double(gflops)),
                ("peak_rss_mb", .double(peakRSS)), ("cold_start_ms", cold.map(JSONValue.double) ?? .null),
                ("kernel_path", .string(Classifier.kernelPath)), ("gemm_kernel", .string(Classifier.gemmKernel)),
                ("cpu_model", .string(Classifier.cpuModel)), ("precision", .string(classifier.precision.rawValue)),
                ("linear_kernel", .string(classifier.model.linearKernel)),
                ("explanation_ms", explanation.map { .double($0.attribution) } ?? .null),
                ("explanation_gradients_ms", explanation.map { .double($0.gradients) } ?? .null),
                ("explanation_ratio", explanation.map { .double($0.attribution / $0.forward) } ?? .null),
            ]).rendered)
    }

    /// This process's peak resident set (``Platform/peakResidentBytes()``).
    static func peakResidentMegabytes() -> Double { Double(Platform.peakResidentBytes()) / (1024 * 1024) }

    /// Wall time of `vitclassify IMAGE --model M` in a new process, for a PNG at the model's input size.
    private func coldStart(_ classifier: Classifier) throws -> Double {
        let a = classifier.model.architecture
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitclassify-bench-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let image = directory.appendingPathComponent("input.png").path
        var generator = SplitMix64(state: 7)
        let pixels = (0..<(a.imageWidth * a.imageHeight * 3)).map { _ in UInt8(generator.unit() * 255) }
        try PNGEncoder.write(RGBImage(width: a.imageWidth, height: a.imageHeight, trustedPixels: pixels), to: image)
        let executable = URL(fileURLWithPath: Platform.executablePath)
        var arguments = [image, "--model", classifier.info.weightsPath, "--format", "json"]
        if let threads = modelArguments.threads { arguments += ["--threads", String(threads)] }
        if let size = modelArguments.imageSize { arguments += ["--image-size", String(size)] }
        if modelArguments.precision != .fp32 { arguments += ["--precision", modelArguments.precision.rawValue] }
        var best = Double.infinity
        for _ in 0..<3 {  // the best of three, so that a cold page cache on the first run does not count
            let process = Process()
            process.executableURL = executable
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            let start = DispatchTime.now().uptimeNanoseconds
            try process.run()
            process.waitUntilExit()
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            guard process.terminationStatus == 0 else {
                throw ViTError.invalidArgument("cold-start run failed with status \(process.terminationStatus)")
            }
            best = min(best, elapsed)
        }
        return best
    }
}
