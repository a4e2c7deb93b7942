import ArgumentParser
import Foundation
import ViTKit

/// `--report report.html` and `--explore-pages` for `batch` and `eval`.
struct ReportArguments: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Also write an HTML gallery here (thumbnails with their overlay, label, probability; sortable, filterable, paged), with its thumbnails in REPORT.files/ beside it.",
            valueName: "report.html"))
    var report: String?

    @Flag(name: .long, help: "With --report: also write one 'vitclassify explore' page per image in REPORT.files/pages/, linked from the gallery.")
    var explorePages = false

    func validate() throws {
        if explorePages && report == nil { throw ValidationError("--explore-pages needs --report FILE") }
        if let report, !report.lowercased().hasSuffix(".html") && !report.lowercased().hasSuffix(".htm") {
            throw ValidationError("--report must name an .html file")
        }
    }

    /// Opens the report (before any image is classified, so an existing report is refused at once), or nil.
    ///
    /// - Parameters:
    ///   - root: the folder the images were found in; the report names them relative to it (no absolute path of this
    ///     machine goes into the report).
    ///   - map: the attention map drawn on each thumbnail (rollout unless given).
    func open(
        classifier: Classifier, force: Bool, resume: Bool, root: String?, map: ((AttentionMaps) throws -> [Float])? = nil
    ) throws -> ReportSession? {
        guard let report else { return nil }
        return ReportSession(
            writer: try ReportWriter(path: report, overwrite: force, resume: resume), classifier: classifier,
            explorePages: explorePages, root: root, map: map ?? { try $0.rollout() })
    }
}

/// One report being written: records each classified image, then writes the page.
final class ReportSession {
    let writer: ReportWriter
    let classifier: Classifier
    let explorePages: Bool
    let map: (AttentionMaps) throws -> [Float]
    let root: String?

    init(
        writer: ReportWriter, classifier: Classifier, explorePages: Bool, root: String?,
        map: @escaping (AttentionMaps) throws -> [Float]
    ) {
        self.writer = writer
        self.root = root
        self.classifier = classifier
        self.explorePages = explorePages
        self.map = map
    }

    /// Records one image (`classification` nil when it could not be read).
    func record(path: String, image: RGBImage?, classification: Classification?, error: String?, truth: Int? = nil) throws {
        var page: String?
        var drawn: [Float]?
        let maps = classification?.attention
        if let maps { drawn = try map(maps) }
        if explorePages, let image, let classification, let maps {
            let target = writer.nextPagePath
            try FileManager.default.createDirectory(
                atPath: URL(fileURLWithPath: target.absolute).deletingLastPathComponent().path, withIntermediateDirectories: true)
            let html = try Explore.page(
                imageName: URL(fileURLWithPath: path).lastPathComponent, image: image, classifier: classifier,
                predictions: classification.predictions, maps: maps)
            try FileIO.writeText(html, to: target.absolute, overwrite: true)
            page = target.relative
        }
        try writer.add(
            name: displayName(path), image: image, map: drawn, grid: (maps?.gridHeight ?? 1, maps?.gridWidth ?? 1),
            preprocessing: classifier.info.preprocessing, predictions: classification?.predictions ?? [], truth: truth,
            error: error, page: page)
    }

    /// `path` relative to the root folder; a relative path as it is; otherwise the file's name alone.
    func displayName(_ path: String) -> String {
        if let root {
            let base = root.hasSuffix("/") ? root : root + "/"
            if path.hasPrefix(base) { return String(path.dropFirst(base.count)) }
        }
        return path.hasPrefix("/") ? URL(fileURLWithPath: path).lastPathComponent : path
    }

    func finish(title: String, confusion: ReportWriter.Confusion? = nil) throws {
        try writer.finish(title: title, model: classifier.info.name, labels: classifier.info.labels, confusion: confusion)
    }
}
