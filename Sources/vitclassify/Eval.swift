import ArgumentParser
import Foundation
import ViTKit

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure accuracy on a folder with one subfolder of PNGs per class.",
        discussion: """
            Subfolder names are matched to the model's labels ignoring case and everything but letters and digits
            (so 'ankle-boot', 'Ankle_boot' and 'ankle boot' all match 'Ankle boot'). Prints top-1 and top-5
            accuracy, per-class accuracy and the confusion matrix (rows: true class, columns: predicted class).
            Exit status: 0 on success (unreadable images are counted and reported), 1 for usage or model errors.
            """)

    @Argument(help: ArgumentHelp("Dataset folder: DIR/<class>/*.png.", valueName: "dir"))
    var directory: String

    @OptionGroup var modelArguments: ModelArguments
    @OptionGroup var imageArguments: ImageArguments

    @Option(name: .long, help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Option(name: .long, help: ArgumentHelp("Images per forward pass.", valueName: "N"))
    var batchSize: Int = 64

    @Flag(name: .long, help: "No progress on stderr.")
    var quiet = false

    @OptionGroup(title: "Report") var reportArguments: ReportArguments

    @Flag(name: .long, help: "Replace an existing --report file (and its .files folder); without it an existing report is an error.")
    var force = false

    @OptionGroup(title: "Faithfulness of explanations") var faithfulnessArguments: FaithfulnessArguments

    func validate() throws {
        if batchSize < 1 || batchSize > 4096 { throw ValidationError("--batch-size must be between 1 and 4096") }
    }

    func run() throws {
        let classifier = try modelArguments.load()
        let labels = classifier.info.labels
        let folders = try Evaluation.classFolders(in: directory, labels: labels)
        var truth: [String: Int] = [:]
        var paths: [String] = []
        for (folder, index) in folders {
            for path in try ImageFolder.imageFiles(in: directory + "/" + folder, recursive: true) {
                truth[path] = index
                paths.append(path)
            }
        }
        if faithfulnessArguments.faithfulness {
            return try runFaithfulness(classifier, paths: paths, truth: truth, format: format)
        }
        var evaluation = Evaluation(labels: labels)
        let report = try reportArguments.open(classifier: classifier, force: force, resume: false, root: directory)
        let progress = ProgressReporter(total: paths.count, quiet: quiet)
        let runner = BatchRunner(
            classifier: classifier, batchSize: batchSize, readOptions: imageArguments.options, topK: 5,
            attention: report != nil, keepImages: report != nil)
        try runner.run(paths) { outcomes in
            for outcome in outcomes {
                switch outcome.result {
                case .success(let c):
                    evaluation.add(trueIndex: truth[outcome.path]!, logits: c.logits)
                    try report?.record(path: outcome.path, image: outcome.image, classification: c, error: nil, truth: truth[outcome.path])
                case .failure(let error):
                    evaluation.addFailure()
                    printError("warning: \(error.errorDescription ?? "\(error)")")
                    try report?.record(path: outcome.path, image: nil, classification: nil, error: error.errorDescription, truth: truth[outcome.path])
                }
            }
            progress.update(done: evaluation.images + evaluation.failed, failed: evaluation.failed)
        }
        let seconds = progress.elapsed
        let perClass = evaluation.perClass(
            folders: Dictionary(folders.map { ($0.index, $0.folder) }, uniquingKeysWith: { a, _ in a }))
        let classes = perClass.map(\.index)
        try report?.finish(
            title: "vitclassify eval: \(classifier.info.name) on \(URL(fileURLWithPath: directory).lastPathComponent)",
            confusion: ReportWriter.Confusion(labels: labels, classes: classes, counts: evaluation.confusion))
        switch format {
        case .json:
            print(
                JSONValue.object([
                    ("model", .string(classifier.info.name)), ("directory", .string(directory)),
                    ("images", .int(evaluation.images)), ("failed", .int(evaluation.failed)),
                    ("top1", .double(evaluation.top1)), ("top5", .double(evaluation.top5)),
                    (
                        "per_class",
                        .array(
                            perClass.map {
                                .object([
                                    ("label", .string($0.label)), ("index", .int($0.index)), ("folder", .string($0.folder)),
                                    ("images", .int($0.images)), ("correct", .int($0.correct)),
                                    ("accuracy", .double($0.accuracy)),
                                ])
                            })
                    ),
                    ("confusion_labels", .array(classes.map { .string(labels[$0]) })),
                    ("confusion", .array(classes.map { t in .array(classes.map { .int(evaluation.confusion[t][$0]) }) })),
                    ("seconds", .double(seconds)),
                ]).rendered)
        case .text:
            print(
                "model \(classifier.info.name) on \(directory): \(evaluation.images) images"
                    + (evaluation.failed > 0 ? ", \(evaluation.failed) unreadable" : ""))
            print(
                String(
                    format: "top-1 accuracy  %.2f%%  (%d/%d)", 100 * evaluation.top1, evaluation.top1Correct, evaluation.images))
            print(
                String(
                    format: "top-5 accuracy  %.2f%%  (%d/%d)", 100 * evaluation.top5, evaluation.top5Correct, evaluation.images))
            let width = max(5, perClass.map(\.label.count).max() ?? 0)
            print("\nper class:")
            for c in perClass {
                print(
                    "  " + c.label.padding(toLength: width, withPad: " ", startingAt: 0)
                        + String(format: "  %6.2f%%  (%d/%d)", 100 * c.accuracy, c.correct, c.images))
            }
            print("\nconfusion matrix (rows: true class, columns: predicted, in the order above):")
            for (row, t) in classes.enumerated() {
                print(
                    "  " + String(format: "%2d ", row)
                        + classes.map { String(format: "%6d", evaluation.confusion[t][$0]) }.joined())
            }
        }
    }
}
