import ArgumentParser
import Foundation
import ViTKit

enum RowFormat: String, ExpressibleByArgument, CaseIterable {
    case csv, jsonl
}

struct Batch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify every image in a folder (or a list of files) into CSV or JSON Lines.",
        discussion: """
            Files: every *.png, *.jpg and *.jpeg (any case) in DIR (and below it with --recursive), in byte order of
            their paths; or, with --files-from FILE, the paths FILE lists one per line ('-': standard input), in that
            order. Rows come out in that order; a file's format is told by its signature, not its name.
            CSV (RFC 4180, header row): image,label,probability,index for rank 1, then label_2,probability_2,index_2 …
            up to --top-k, then error. JSON Lines: the fields of 'vitclassify --format json' plus "error" (null or text).
            Rows are written batch by batch in whole lines: after an interruption (Ctrl-C, kill) --output holds only
            complete rows, and --resume skips the images already in it and appends the rest.
            --shard K/N (1-based) takes files K, K+N, K+2N, … of the list: N processes cover every file once.
            Exit status: 0 if every file was classified, 2 if some failed (each gets a row with the error and a
            warning on stderr), 1 for usage or model errors or when the output cannot be written; 130 if interrupted.
            """)

    @Argument(help: ArgumentHelp("Folder of images (PNG, JPEG).", valueName: "dir"))
    var directory: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Classify the files listed in this file, one path per line, in that order, instead of a folder ('-': standard input).",
            valueName: "file"))
    var filesFrom: String?

    @Flag(name: .long, help: "Include images in subfolders.")
    var recursive = false

    @Option(name: .long, help: ArgumentHelp("Write rows to this file instead of standard output.", valueName: "file"))
    var output: String?

    @Option(name: .long, help: "Row format.")
    var format: RowFormat = .csv

    @Option(name: .long, help: ArgumentHelp("Predictions per image.", valueName: "K"))
    var topK: Int = 5

    @OptionGroup var modelArguments: ModelArguments
    @OptionGroup var imageArguments: ImageArguments

    @Option(name: .long, help: ArgumentHelp("Images per forward pass.", valueName: "N"))
    var batchSize: Int = 32

    @Option(name: .long, help: ArgumentHelp("Process only part K of N of the file list (1-based).", valueName: "K/N"))
    var shard: String?

    @Flag(name: .long, help: "Continue an interrupted run: skip images already in --output, append the rest.")
    var resume = false

    @Option(
        name: .long, help: ArgumentHelp("Write an attention overlay per image here, mirroring the folder tree.", valueName: "dir")
    )
    var overlays: String?

    @OptionGroup(title: "Overlays") var attentionArguments: AttentionArguments

    @OptionGroup(title: "Explanations (each image is run again with the backward pass)")
    var explanationArguments: ExplanationArguments

    @Flag(name: .long, help: "Replace an existing --output (without --resume) and existing overlays.")
    var force = false

    @Flag(name: .long, help: "No progress or summary on stderr (warnings are still printed).")
    var quiet = false

    @OptionGroup(title: "Report (with --resume it covers both runs)") var reportArguments: ReportArguments

    func validate() throws {
        if topK < 1 { throw ValidationError("--top-k must be at least 1") }
        if batchSize < 1 || batchSize > 4096 { throw ValidationError("--batch-size must be between 1 and 4096") }
        if let shard, Shard(shard) == nil { throw ValidationError("--shard must be K/N with 1 ≤ K ≤ N, e.g. 2/8") }
        if (directory == nil) == (filesFrom == nil) { throw ValidationError("give a folder or --files-from FILE (one of them)") }
        if filesFrom != nil && recursive { throw ValidationError("--recursive applies to a folder, not to --files-from") }
        if resume && output == nil { throw ValidationError("--resume needs --output") }
        if resume && force { throw ValidationError("--resume and --force contradict each other") }
        if explanationArguments.requested && format == .csv && overlays == nil {
            throw ValidationError("--explain needs --format jsonl or --overlays DIR (CSV rows have no room for maps)")
        }
    }

    func run() throws {
        var paths = try filesFrom.map(Self.readList) ?? ImageFolder.imageFiles(in: directory!, recursive: recursive)
        if let shard = shard.flatMap(Shard.init) { paths = shard.select(paths) }
        let classifier = try modelArguments.load()
        let model = classifier.info.name
        let explainer = explanationArguments.requested ? try Explainer(classifier: classifier) : nil
        let targets = try explainer.map(explanationArguments.targets) ?? nil

        // The report first: an existing one is refused before any output is created.
        let report = try reportArguments.open(
            classifier: classifier, force: force, resume: resume, root: directory, map: { try attentionArguments.selectedMap($0) })
        // Output: stdout, a new file, a replaced file, or the continuation of an interrupted run.
        let sink: RowOutput
        var header = format == .csv ? BatchRows.csvHeader(topK: topK) : nil
        if let output {
            if resume, FileManager.default.fileExists(atPath: output) {
                let rows = try RowOutput.completeRows(of: output)
                var done = Set<String>()
                for (i, row) in rows.enumerated() {
                    if format == .csv && i == 0 {
                        guard row + "\r\n" == header else {
                            throw ViTError.invalidArgument(
                                "\(output): its header does not match --format csv --top-k \(topK); resume with the options of the first run"
                            )
                        }
                        continue
                    }
                    guard let path = format == .csv ? BatchRows.imagePath(ofCSVRow: row) : Self.imagePath(ofJSONLine: row) else {
                        throw ViTError.invalidArgument(
                            "\(output): line \(i + 1) is not a \(format.rawValue) row of vitclassify batch")
                    }
                    done.insert(path)
                }
                if !rows.isEmpty && format == .csv { header = nil }
                paths = paths.filter { !done.contains($0) }
                sink = try RowOutput(path: output, mode: .append)
                if !quiet { printError("resuming: \(done.count) images already in \(output), \(paths.count) to go") }
            } else {
                sink = try RowOutput(path: output, mode: force ? .replace : .create)
            }
        } else {
            sink = RowOutput()
        }
        if let header { try sink.write(header) }

        Interruption.install()
        let progress = ProgressReporter(total: paths.count, quiet: quiet)
        let runner = BatchRunner(
            classifier: classifier, batchSize: batchSize, readOptions: imageArguments.options, topK: topK,
            attention: overlays != nil || report != nil, keepImages: overlays != nil || explainer != nil || report != nil)
        var classified = 0, failed = 0
        // Test hook (BatchTests): VITCLASSIFY_TEST_HOLD=K:FILE pauses once K rows are written, until FILE exists or a signal.
        var testHold = ProcessInfo.processInfo.environment["VITCLASSIFY_TEST_HOLD"]?
            .firstMatch(of: /^(?<rows>\d+):(?<release>.+)$/)?.output
        try runner.run(paths, shouldStop: { Interruption.requested }) { outcomes in
            var text = ""
            for outcome in outcomes {
                var predictions: [Prediction] = []
                var error: String?
                var explanations: [Explanation]?
                switch outcome.result {
                case .success(let classification):
                    predictions = classification.predictions
                    if let overlays, let image = outcome.image, let maps = classification.attention {
                        do {
                            if let explainer {
                                explanations = try explainer.explain(
                                    image, methods: explanationArguments.methods, targets: targets, topK: topK,
                                    settings: explanationArguments.settings(attentionArguments)
                                ).explanations
                            }
                            try writeOverlay(
                                image, maps: maps, explanation: explanations?.first, for: outcome.path, into: overlays,
                                classifier: classifier)
                        } catch {
                            failed += 1
                            let message = (error as? ViTError)?.errorDescription ?? "\(error)"
                            printError("warning: \(message)")
                            text += row(outcome.path, predictions, "overlay: \(message)", model)
                            continue
                        }
                    }
                    if let explainer, explanations == nil, let image = outcome.image {
                        do {
                            explanations = try explainer.explain(
                                image, methods: explanationArguments.methods, targets: targets, topK: topK,
                                settings: explanationArguments.settings(attentionArguments)
                            ).explanations
                        } catch {
                            failed += 1
                            let message = (error as? ViTError)?.errorDescription ?? "\(error)"
                            printError("warning: \(message)")
                            text += row(outcome.path, predictions, "explanation: \(message)", model)
                            continue
                        }
                    }
                    classified += 1
                case .failure(let failure):
                    failed += 1
                    error = failure.errorDescription
                    printError("warning: \(error!)")
                }
                try report?.record(path: outcome.path, image: outcome.image, classification: try? outcome.result.get(), error: error)
                text += row(outcome.path, predictions, error, model, explanations: explanations)
            }
            try sink.write(text)
            progress.update(done: classified + failed, failed: failed)
            if let hold = testHold, let rows = Int(hold.rows), classified + failed >= rows {
                testHold = nil
                while !Interruption.requested && !FileManager.default.fileExists(atPath: String(hold.release)) { usleep(1000) }
            }
        }
        try sink.sync()
        // Also after an interruption: the report then shows what is done, and --resume completes it.
        try report?.finish(title: "vitclassify batch: \(model) on \(directory.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "listed files")")
        progress.summary(classified: classified, failed: failed)
        if Interruption.requested {
            printError(
                "interrupted: \(classified + failed) of \(paths.count) images written"
                    + (output != nil ? "; run again with --resume to finish" : ""))
            throw ExitCode(130)
        }
        if failed > 0 { throw ExitCode(2) }
    }

    private func row(
        _ path: String, _ predictions: [Prediction], _ error: String?, _ model: String, explanations: [Explanation]? = nil
    ) -> String {
        switch format {
        case .csv: BatchRows.csvRow(image: path, predictions: predictions, error: error, topK: topK)
        case .jsonl:
            BatchRows.jsonLine(
                image: path, model: model, predictions: predictions, error: error,
                extra: explanationArguments.requested ? [("explanations", ExplanationArguments.json(explanations ?? []))] : [])
        }
    }

    /// The paths of a --files-from list (`-`: standard input).
    static func readList(_ file: String) throws -> [String] {
        file == "-"
            ? ImageFolder.listedFiles(String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self))
            : try ImageFolder.listedFiles(at: file)
    }

    /// OUTDIR/<path relative to DIR> (with --files-from, the listed path: an absolute one without its leading `/`,
    /// `..` components as `_..`), a PNG: `photos/a/b.png` → `OUTDIR/a/b.png`, `photos/c.jpg` → `OUTDIR/c.jpg.png`.
    static func overlayPath(for path: String, directory: String?, root: String) -> String {
        var relative: String
        if let directory {
            let base = directory.hasSuffix("/") ? directory : directory + "/"
            relative = path.hasPrefix(base) ? String(path.dropFirst(base.count)) : URL(fileURLWithPath: path).lastPathComponent
        } else {
            relative = path.split(separator: "/").map { $0 == ".." ? "_.." : String($0) }.filter { $0 != "." }
                .joined(separator: "/")
        }
        if !relative.lowercased().hasSuffix(".png") { relative += ".png" }
        return URL(fileURLWithPath: root).appendingPathComponent(relative).path
    }

    private func writeOverlay(
        _ image: RGBImage, maps: AttentionMaps, explanation: Explanation? = nil, for path: String, into root: String,
        classifier: Classifier
    ) throws {
        let target = URL(fileURLWithPath: Self.overlayPath(for: path, directory: directory, root: root))
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        let drawn =
            try explanation.map { ExplanationArguments.overlay(image, $0, classifier: classifier, attention: attentionArguments) }
            ?? attentionArguments.overlay(image, maps: maps, classifier: classifier)
        try PNGEncoder.write(drawn, to: target.path, overwrite: force, protected: [path])
    }

    static func imagePath(ofJSONLine line: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        return object["image"] as? String
    }
}
