import ArgumentParser
import Foundation
import Testing

@testable import ViTKit
@testable import vitclassify

/// Batch over JPEG and PNG files, found by a folder walk or listed by --files-from.
@Suite("Batch over JPEG and PNG, folders and file lists")
struct BatchFileListTests {
    static let model = BatchTests.model
    static let jpegs = Fixtures.resources.appendingPathComponent("jpeg/images")

    /// A folder with PNGs and JPEGs under every case of their extensions, a JPEG named .png, and a non-image.
    static func folder() throws -> ImageDirectory {
        let d = try ImageDirectory(name: "filelist")
        try d.copy("rgb8_32x32", as: "a.png")
        try d.copy("gray8_45x61", as: "sub/b.PNG")
        for (source, target) in [
            ("rgb_q75_420.jpg", "c.jpg"), ("gray_q70_progressive.jpg", "sub/d.JPEG"), ("cmyk_q90.jpg", "e.Jpg"),
            ("rgb_q90_422.jpg", "f-is-a-jpeg.png"),
        ] {
            try FileManager.default.copyItem(
                atPath: jpegs.appendingPathComponent(source).path, toPath: d.url.appendingPathComponent(target).path)
        }
        try d.write("notes.txt", Array("not an image".utf8))
        try d.write("sub/image.gif", Array("GIF89a".utf8))
        return d
    }

    func run(_ arguments: [String], stdin: String? = nil) throws -> (status: Int32, stdout: String) {
        let outcome = try CLI.run(arguments + ["--model", Self.model, "--quiet"], standardInput: stdin)
        return (outcome.status, String(decoding: outcome.stdout, as: UTF8.self))
    }

    /// The image column of CSV rows (after the header).
    func images(_ csv: String) -> [String] {
        csv.split(separator: "\r\n").dropFirst().map { BatchRows.imagePath(ofCSVRow: String($0))! }
    }

    @Test("a folder walk picks *.png, *.jpg and *.jpeg in any case, in byte order; formats are told by signature")
    func folderWalk() throws {
        let d = try Self.folder()
        // A report's thumbnail folder (batch/eval --report r.html writes r.html.files/) is output: never walked.
        try FileManager.default.createDirectory(
            at: d.url.appendingPathComponent("r.html.files/thumbs"), withIntermediateDirectories: true)
        try d.copy("rgb8_32x32", as: "r.html.files/thumbs/0.png")
        let found = try ImageFolder.imageFiles(in: d.path, recursive: true)
        #expect(found == ["a.png", "c.jpg", "e.Jpg", "f-is-a-jpeg.png", "sub/b.PNG", "sub/d.JPEG"].map { d.path + "/" + $0 })
        let (status, csv) = try run(["batch", d.path, "--recursive", "--top-k", "1"])
        #expect(status == 0)
        #expect(images(csv) == found)
        // Every row classified (the JPEG named .png too), and each equals classifying that file alone.
        for (path, row) in zip(found, csv.split(separator: "\r\n").dropFirst()) {
            #expect(row.hasSuffix(","))
            let single = try CLI.run([path, "--format", "json", "--top-k", "1", "--model", Self.model])
            // The same label and the same probability digits as classifying the file alone (compared as text: a
            // JSON parser may round the last digit).
            let fields = row.split(separator: ",", omittingEmptySubsequences: false)
            let text = String(decoding: single.stdout, as: UTF8.self)
            #expect(text.contains("\"label\": \"\(fields[1])\", \"probability\": \(fields[2]),"), "\(path): \(row)")
        }
    }

    @Test("--files-from keeps the listed order (LF or CRLF, empty lines skipped), from a file or standard input")
    func filesFrom() throws {
        let d = try Self.folder()
        let listed = ["sub/d.JPEG", "a.png", "e.Jpg", "notes.txt", "a.png"].map { d.path + "/" + $0 }
        let list = d.file("list.txt")
        try Data((listed.joined(separator: "\r\n") + "\n\n").utf8).write(to: URL(fileURLWithPath: list))
        let fromFile = try run(["batch", "--files-from", list, "--top-k", "1"])
        #expect(fromFile.status == 2)  // notes.txt is not an image: an error row, the others classified
        #expect(images(fromFile.stdout) == listed)
        let fromStdin = try run(["batch", "--files-from", "-", "--top-k", "1"], stdin: listed.joined(separator: "\n"))
        #expect(fromStdin.stdout == fromFile.stdout)
        // A folder and a list together, or a list with --recursive, are usage errors.
        #expect(try run(["batch", d.path, "--files-from", list]).status != 0)
        #expect(try run(["batch", "--files-from", list, "--recursive"]).status != 0)
        let missing = try CLI.run(["batch", "--files-from", d.file("no-such-list"), "--model", Self.model])
        #expect(missing.status == 1 && missing.stderr.contains("no-such-list"))
    }

    @Test("--files-from with --shard partitions the list in order; --resume completes a cut run byte for byte")
    func filesFromShardsAndResume() throws {
        let d = try Self.folder()
        let listed = try ImageFolder.imageFiles(in: d.path, recursive: true).reversed().map { $0 }
        let list = d.file("list.txt")
        try Data(listed.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: list))
        var seen: [String] = []
        for k in 1...3 {
            let part = try run(["batch", "--files-from", list, "--shard", "\(k)/3", "--top-k", "1"])
            let rows = images(part.stdout)
            #expect(rows == stride(from: k - 1, to: listed.count, by: 3).map { listed[$0] })
            seen += rows
        }
        #expect(seen.sorted() == listed.sorted())

        let full = d.file("full.jsonl"), partial = d.file("partial.jsonl")
        _ = try run(["batch", "--files-from", list, "--format", "jsonl", "--output", full])
        let complete = try Data(contentsOf: URL(fileURLWithPath: full))
        let cut = complete.indices.filter { complete[$0] == UInt8(ascii: "\n") }[2]
        try (complete[...cut] + Data("{\"image\": \"half".utf8)).write(to: URL(fileURLWithPath: partial))
        _ = try run(["batch", "--files-from", list, "--format", "jsonl", "--output", partial, "--resume"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: partial)) == complete)
    }

    @Test("overlays of listed and JPEG files are PNGs inside the overlay folder")
    func overlayPaths() {
        #expect(Batch.overlayPath(for: "photos/a/b.png", directory: "photos", root: "/o") == "/o/a/b.png")
        #expect(Batch.overlayPath(for: "photos/c.JPG", directory: "photos/", root: "/o") == "/o/c.JPG.png")
        #expect(Batch.overlayPath(for: "/data/x/y.jpeg", directory: nil, root: "/o") == "/o/data/x/y.jpeg.png")
        #expect(Batch.overlayPath(for: "../up/./z.png", directory: nil, root: "/o") == "/o/_../up/z.png")
    }
}
