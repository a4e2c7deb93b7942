import Foundation

/// The `--report` gallery of `batch` and `eval`: one HTML file plus a folder beside it (`REPORT.files/`) holding a
/// small overlay thumbnail per image, the records the report is built from and, with `--explore-pages`, one explore
/// page per image. Links inside are relative, so the report and its folder can be moved or shared together.
///
/// Memory stays bounded whatever the image count: each image's thumbnail and record go to disk as it is classified
/// (`records.jsonl`, one compact JSON array a line), and ``finish(title:confusion:)`` streams them into the page,
/// written atomically. The page holds only the records (about 150 bytes an image); the browser shows them 100 at a
/// time and loads only those thumbnails. `--resume` appends to the same records, so the report covers both runs.
package final class ReportWriter {
    /// The longest side of a thumbnail, in pixels.
    package static let thumbnailSide = 96

    package let reportPath: String
    package let folder: String
    let folderName: String
    let recordsPath: String
    let overwrite: Bool
    private let records: FileHandle
    private var count: Int

    /// Opens the report's folder; `resume` keeps the records of an earlier run, otherwise they start empty.
    ///
    /// - Throws: ``ViTError/refusingToOverwrite(path:reason:)`` when the report exists and neither `overwrite` nor
    ///   `resume` is set (checked now, before any image is classified).
    package init(path: String, overwrite: Bool, resume: Bool) throws {
        reportPath = path
        folderName = URL(fileURLWithPath: path).lastPathComponent + ".files"
        folder = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(folderName).path
        recordsPath = folder + "/records.jsonl"
        self.overwrite = overwrite || resume
        if !self.overwrite && FileManager.default.fileExists(atPath: path) {
            throw ViTError.refusingToOverwrite(path: path, reason: "file exists (use --force to replace it)")
        }
        do {
            try FileManager.default.createDirectory(atPath: folder + "/thumbs", withIntermediateDirectories: true)
        } catch {
            throw ViTError.writeFailed(path: folder, reason: "cannot create the report's folder")
        }
        if !resume || !FileManager.default.fileExists(atPath: recordsPath) {
            guard FileManager.default.createFile(atPath: recordsPath, contents: nil) else {
                throw ViTError.writeFailed(path: recordsPath, reason: "cannot create the file")
            }
        }
        guard let handle = FileHandle(forUpdatingAtPath: recordsPath) else {
            throw ViTError.writeFailed(path: recordsPath, reason: "cannot open the file")
        }
        records = handle
        // Count the records already there (resume), cutting off an incomplete last line.
        let existing = (try? handle.readToEnd()) ?? Data()
        let complete = existing.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
        count = existing[..<complete].reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        try handle.truncate(atOffset: UInt64(complete))
        try handle.seek(toOffset: UInt64(complete))
    }

    deinit { try? records.close() }

    /// The relative path (from the report) of the next image's explore page, `REPORT.files/pages/N.html`.
    package var nextPagePath: (absolute: String, relative: String) {
        let name = "pages/\(count).html"
        return (folder + "/" + name, folderName + "/" + name)
    }

    /// Records one image: its thumbnail (the attention `map` drawn over it, when there is one) and its predictions.
    ///
    /// - Parameters:
    ///   - name: how the report names the image (its path as given on the command line, relative if it was).
    ///   - truth: the true class index (`eval`), or nil.
    ///   - page: the relative path of its explore page, if one was written.
    package func add(
        name: String, image: RGBImage?, map: [Float]?, grid: (height: Int, width: Int), preprocessing: Preprocessing,
        predictions: [Prediction], truth: Int?, error: String?, page: String?, colormap: Colormap = .inferno, alpha: Float = 0.5
    ) throws {
        var thumb = ""
        if let image, image.width > 0, image.height > 0 {
            let budget = Overlay.Budget(maxSide: Self.thumbnailSide, maxPixels: Self.thumbnailSide * Self.thumbnailSide)
            let drawn: RGBImage
            if let map {
                drawn = Overlay.render(
                    image: image, map: map, gridHeight: grid.height, gridWidth: grid.width, preprocessing: preprocessing,
                    colormap: colormap, alpha: alpha, budget: budget)
            } else {
                let (w, h) = Overlay.size(width: image.width, height: image.height, budget: budget)
                drawn = RGBImage(width: w, height: h, trustedPixels: Overlay.resampled(image, width: w, height: h))
            }
            let file = "thumbs/\(count).png"
            try PNGEncoder.write(drawn, to: folder + "/" + file, overwrite: true)
            thumb = folderName + "/" + file
        }
        let top = predictions.first
        let record: JSONValue = .array([
            .string(name), .string(thumb), .string(top?.label ?? ""), .int(top?.index ?? -1),
            top.map { .double(($0.probability * 1e4).rounded() / 1e4) } ?? .null, truth.map(JSONValue.int) ?? .null,
            .string(page ?? ""), error.map(JSONValue.string) ?? .null,
        ])
        try records.write(contentsOf: Data((record.rendered.replacingOccurrences(of: "<", with: "\\u003c") + "\n").utf8))
        count += 1
    }

    /// The confusion matrix of an evaluation: labels (the model's), and `counts[true][predicted]` for `classes`.
    package struct Confusion {
        package var labels: [String]
        package var classes: [Int]
        package var counts: [[Int]]
        package init(labels: [String], classes: [Int], counts: [[Int]]) {
            self.labels = labels
            self.classes = classes
            self.counts = counts
        }
    }

    /// Writes the report (atomically: a temporary file renamed over `reportPath`), streaming the records into it.
    package func finish(title: String, model: String, labels: [String], confusion: Confusion?) throws {
        try records.synchronize()
        let template = try ExplorePage.fill(
            try Self.resource("report.html"),
            [
                "TITLE": ExplorePage.escape(title), "HEADING": ExplorePage.escape(title),
                "STYLE": try Self.resource("report.css"), "SCRIPT": try Self.resource("report.js"),
                "CONFUSION": confusion.map(Self.confusionTable) ?? "",
                "META": JSONValue.object([
                    ("model", .string(model)), ("labels", .array(labels.map(JSONValue.string))),
                    ("eval", .bool(confusion != nil)),
                    ("fields", .array(["name", "thumb", "label", "index", "probability", "truth", "page", "error"].map(JSONValue.string))),
                ]).rendered.replacingOccurrences(of: "<", with: "\\u003c"),
                "RECORDS": "\u{1}",
            ])
        let parts = template.components(separatedBy: "\u{1}")
        guard parts.count == 2 else { throw ViTError.invalidArgument("report.html must hold {{RECORDS}} once") }
        try FileIO.writeAtomically(reportPath, overwrite: overwrite) { temporary in
            guard FileManager.default.createFile(atPath: temporary, contents: nil), let out = FileHandle(forWritingAtPath: temporary)
            else { throw ViTError.writeFailed(path: reportPath, reason: "cannot create the file") }
            defer { try? out.close() }
            do {
                try out.write(contentsOf: Data(parts[0].utf8))
                // Stream records.jsonl into a JSON array, one record a line, a megabyte at a time.
                guard let input = FileHandle(forReadingAtPath: recordsPath) else {
                    throw ViTError.fileUnreadable(path: recordsPath, reason: "cannot open the file")
                }
                defer { try? input.close() }
                var first = true
                var pending = Data()
                while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
                    pending.append(chunk)
                    guard let last = pending.lastIndex(of: UInt8(ascii: "\n")) else { continue }
                    var text = Data()
                    for line in pending[..<last].split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
                        text.append(contentsOf: Array((first ? "\n" : ",\n").utf8))
                        text.append(line)
                        first = false
                    }
                    try out.write(contentsOf: text)
                    pending = Data(pending[(last + 1)...])
                }
                try out.write(contentsOf: Data(parts[1].utf8))
            } catch let error as ViTError {
                throw error
            } catch {
                throw ViTError.writeFailed(path: reportPath, reason: error.localizedDescription)
            }
        }
    }

    /// The confusion matrix as an HTML table (shown with or without JavaScript; its cells filter the gallery).
    static func confusionTable(_ c: Confusion) -> String {
        var html = "<table class=\"confusion\"><thead><tr><th>true \\ predicted</th>"
        for p in c.classes { html += "<th>\(ExplorePage.escape(c.labels[p]))</th>" }
        html += "</tr></thead><tbody>\n"
        for t in c.classes {
            html += "<tr><th>\(ExplorePage.escape(c.labels[t]))</th>"
            for p in c.classes {
                let n = c.counts[t][p]
                html += "<td data-true=\"\(t)\" data-pred=\"\(p)\" class=\"\(t == p ? "diag" : (n > 0 ? "off" : "zero"))\">\(n)</td>"
            }
            html += "</tr>\n"
        }
        return html + "</tbody></table>"
    }

    static func resource(_ name: String) throws -> String {
        let url = try BundledResources.url("report/" + name)
        return String(decoding: try FileIO.read(url.path, limit: 4 << 20), as: UTF8.self)
    }
}
