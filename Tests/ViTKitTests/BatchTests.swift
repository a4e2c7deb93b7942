import ArgumentParser
import Foundation
import Testing

@testable import ViTKit
@testable import vitclassify

/// A temporary folder of PNGs: fixture images (some in a subfolder) and broken files.
final class ImageDirectory {
    let url: URL
    var path: String { url.path }

    init(name: String) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vit-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: url.appendingPathComponent("sub/deeper"), withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func copy(_ fixture: String, as relative: String) throws {
        try FileManager.default.copyItem(atPath: Fixtures.image(fixture).file, toPath: url.appendingPathComponent(relative).path)
    }

    func write(_ relative: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: url.appendingPathComponent(relative))
    }

    func file(_ relative: String) -> String { url.appendingPathComponent(relative).path }

    /// Fixture images, a non-PNG, a truncated PNG and a non-PNG extension that must be ignored.
    static func mixed() throws -> ImageDirectory {
        let d = try ImageDirectory(name: "batch")
        try d.copy("rgb8_32x32", as: "b.png")
        try d.copy("pal8_32x32", as: "A.PNG")
        try d.copy("rgb8_37x23", as: "c,with \"quote\".png")
        try d.copy("gray8_45x61", as: "sub/d.png")
        try d.copy("rgba8_45x61", as: "sub/deeper/e.Png")
        try d.copy("rgb16_37x23", as: "z.png")
        try d.write("notes.txt", Array("not an image".utf8))
        try d.write("broken.png", Array("hello".utf8))
        let good = try Data(contentsOf: URL(fileURLWithPath: Fixtures.image("rgb8_48x48").file))
        try d.write("truncated.png", Array(good.prefix(good.count / 2)))
        return d
    }
}

@Suite("Batch classification and evaluation")
struct BatchTests {
    static let model = Fixtures.models.first { $0.name == "timm_vit" }!.dir

    func runBatch(_ arguments: [String]) throws -> Int32 {
        let command = try Batch.parse(arguments + ["--model", Self.model, "--quiet"])
        do {
            try command.run()
            return 0
        } catch let exit as ExitCode {
            return exit.rawValue
        }
    }

    /// The lines of a file, split on the byte "\n" (a CSV row keeps its "\r").
    func lines(_ path: String) throws -> [String] {
        try Data(contentsOf: URL(fileURLWithPath: path)).split(separator: UInt8(ascii: "\n")).map {
            String(decoding: $0, as: UTF8.self)
        }
    }

    @Test("files are found by extension in byte order, recursively on request; bad files get error rows and exit 2")
    func orderingAndErrors() throws {
        let d = try ImageDirectory.mixed()
        let out = d.file("rows.csv")
        #expect(try runBatch([d.path, "--output", out, "--top-k", "2"]) == 2)
        let rows = try lines(out)
        #expect(rows[0] == "image,label,probability,index,label_2,probability_2,index_2,error\r")
        let names = rows.dropFirst().map { BatchRows.imagePath(ofCSVRow: String($0.dropLast()))! }
        #expect(
            names == ["A.PNG", "b.png", "broken.png", "c,with \"quote\".png", "truncated.png", "z.png"].map { d.path + "/" + $0 })
        #expect(rows.filter { $0.hasSuffix(",\r") }.count == 4)  // four classified rows have an empty error field
        #expect(rows[3].contains("not a PNG file"))
        #expect(rows[5].contains("truncated"))
        #expect(rows[4].hasPrefix("\"") && rows[4].contains("c,with \"\"quote\"\".png"))

        let recursive = d.file("recursive.jsonl")
        #expect(try runBatch([d.path, "--recursive", "--format", "jsonl", "--output", recursive]) == 2)
        let objects = try lines(recursive).map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(
            objects.map { $0["image"] as! String }
                == [
                    "A.PNG", "b.png", "broken.png", "c,with \"quote\".png", "sub/d.png", "sub/deeper/e.Png", "truncated.png",
                    "z.png",
                ].map { d.path + "/" + $0 })
        #expect(objects.filter { $0["error"] is NSNull }.count == 6)
        #expect((objects[2]["error"] as? String)?.contains("broken.png") == true)
    }

    @Test("JSON Lines rows equal vitclassify --format json plus error; batch logits equal single-image logits")
    func batchEqualsSingle() throws {
        let d = try ImageDirectory.mixed()
        let out = d.file("rows.jsonl")
        _ = try runBatch([d.path, "--recursive", "--format", "jsonl", "--output", out, "--top-k", "3", "--batch-size", "4"])
        let classifier = try Classifier(modelPath: Self.model)
        for line in try lines(out) {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let path = object["image"] as! String
            guard object["error"] is NSNull else { continue }
            let single = classifier.classify([try PNGDecoder.read(path)], topK: 3)[0]
            let expected = PredictionRendering.json(
                image: path, model: classifier.info.name, predictions: single.predictions, extra: [("error", .null)]
            ).rendered
            #expect(line == expected)
        }
    }

    @Test("an interrupted run resumed with --resume equals an uninterrupted run", arguments: ["csv", "jsonl"])
    func resume(format: String) throws {
        let d = try ImageDirectory.mixed()
        let full = d.file("full.\(format)"), partial = d.file("partial.\(format)")
        #expect(try runBatch([d.path, "--recursive", "--format", format, "--output", full]) == 2)
        let complete = try Data(contentsOf: URL(fileURLWithPath: full))
        // An interruption after 3 rows, in the middle of writing the fourth.
        let cut = complete.indices.filter { complete[$0] == UInt8(ascii: "\n") }[format == "csv" ? 3 : 2]
        try (complete[...cut] + Data("/tmp/half-a-row,".utf8)).write(to: URL(fileURLWithPath: partial))
        #expect(try runBatch([d.path, "--recursive", "--format", format, "--output", partial, "--resume"]) == 2)
        #expect(try Data(contentsOf: URL(fileURLWithPath: partial)) == complete)
        // Resuming a finished run adds nothing.
        #expect(try runBatch([d.path, "--recursive", "--format", format, "--output", partial, "--resume"]) == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: partial)) == complete)
    }

    @Test("shards partition the file list exactly")
    func shards() throws {
        let d = try ImageDirectory.mixed()
        let all = try ImageFolder.imageFiles(in: d.path, recursive: true)
        for n in 1...4 {
            var seen: [String] = []
            for k in 1...n {
                let out = d.file("shard-\(k)-of-\(n).jsonl")
                _ = try runBatch([d.path, "--recursive", "--format", "jsonl", "--shard", "\(k)/\(n)", "--output", out])
                seen += try lines(out).map {
                    (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["image"] as! String
                }
            }
            #expect(seen.sorted() == all.sorted())
            #expect(Set(seen).count == all.count)
        }
        #expect(Shard("0/3") == nil && Shard("4/3") == nil && Shard("1/0") == nil && Shard("2/3") != nil)
    }

    @Test("an existing --output is kept unless --resume or --force")
    func existingOutput() throws {
        let d = try ImageDirectory.mixed()
        let out = d.file("keep.csv")
        try Data("precious\n".utf8).write(to: URL(fileURLWithPath: out))
        #expect(throws: ViTError.self) { try runBatch([d.path, "--output", out]) }
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "precious\n")
        #expect(try runBatch([d.path, "--output", out, "--force"]) == 2)
        #expect(try lines(out).count == 7)
    }

    @Test("--overlays writes one overlay per image, mirroring the folder tree")
    func overlays() throws {
        let d = try ImageDirectory.mixed()
        let overlays = d.file("overlays")
        #expect(try runBatch([d.path, "--recursive", "--overlays", overlays, "--output", d.file("o.csv")]) == 2)
        for relative in ["b.png", "A.PNG", "sub/d.png", "sub/deeper/e.Png"] {
            #expect(FileManager.default.fileExists(atPath: overlays + "/" + relative))
        }
        let overlay = try PNGDecoder.read(overlays + "/sub/d.png")
        #expect(overlay.width == 45 * 5 && overlay.height == 61 * 5)
    }

    @Test("eval matches folders to labels and counts accuracy, per class and in the confusion matrix")
    func evaluation() throws {
        let classifier = try Classifier(modelPath: Self.model)
        let d = try ImageDirectory(name: "eval")
        // Each fixture image goes into the folder of the class the model predicts for it, except one.
        let names = ["rgb8_32x32", "pal8_32x32", "rgb8_37x23", "gray8_45x61", "rgba8_45x61"]
        var expectedCorrect = 0
        for (i, name) in names.enumerated() {
            let predicted = classifier.classify([try PNGDecoder.read(Fixtures.image(name).file)])[0].predictions[0].index
            let label = i == 0 ? (predicted + 1) % 10 : predicted
            if i != 0 { expectedCorrect += 1 }
            let folder = d.url.appendingPathComponent(
                classifier.info.labels[label].uppercased().replacingOccurrences(of: "A", with: "A_"))
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: Fixtures.image(name).file, toPath: folder.appendingPathComponent("\(name).png").path)
        }
        try FileManager.default.removeItem(at: d.url.appendingPathComponent("sub"))
        let folders = try Evaluation.classFolders(in: d.path, labels: classifier.info.labels)
        var evaluation = Evaluation(labels: classifier.info.labels)
        for (folder, index) in folders {
            for path in try ImageFolder.imageFiles(in: d.path + "/" + folder, recursive: false) {
                evaluation.add(trueIndex: index, logits: classifier.classify([try PNGDecoder.read(path)])[0].logits)
            }
        }
        #expect(evaluation.images == 5 && evaluation.top1Correct == expectedCorrect)
        #expect(evaluation.confusion.flatMap { $0 }.reduce(0, +) == 5)
        try FileManager.default.createDirectory(
            at: d.url.appendingPathComponent("no-such-class"), withIntermediateDirectories: true)
        #expect(throws: ViTError.self) { try Evaluation.classFolders(in: d.path, labels: classifier.info.labels) }
    }
}

@Suite("Batch runs interrupted for real")
struct BatchInterruptionTests {
    /// A folder of `count` small PNGs, `img-00000.png` …
    static func manyImages(_ count: Int) throws -> ImageDirectory {
        let d = try ImageDirectory(name: "many")
        let names = ["rgb8_32x32", "pal8_32x32", "gray8_45x61", "rgba8_45x61", "rgb8_37x23"]
        for i in 0..<count { try d.copy(names[i % names.count], as: String(format: "img-%05d.png", i)) }
        return d
    }

    /// The complete lines of a file so far (0 while it does not exist).
    static func completeLines(_ path: String) -> Int {
        (FileManager.default.contents(atPath: path) ?? Data()).count(where: { $0 == UInt8(ascii: "\n") })
    }

    /// The environment of a run that holds (the batch command's test hook) once `rows` rows are written, until it is
    /// signalled or the file `release` appears.
    static func hold(after rows: Int, release: String) -> [String: String] {
        ["VITCLASSIFY_TEST_HOLD": "\(rows):\(release)"]
    }

    @Test("SIGKILL or Ctrl-C mid-run, then --resume: the file equals an uninterrupted run's", arguments: [SIGKILL, SIGINT])
    func interruptAndResume(signal: Int32) throws {
        let images = 40, held = 10
        let d = try Self.manyImages(images)
        let model = Fixtures.models.first { $0.name == "timm_vit" }!.dir
        let full = d.file("full.csv"), partial = d.file("partial.csv")
        let common = ["batch", d.path, "--model", model, "--batch-size", "1", "--threads", "1"]
        #expect(try CLI.run(common + ["--output", full]).status == 0)
        let expected = try Data(contentsOf: URL(fileURLWithPath: full))
        #expect(Self.completeLines(full) == 1 + images)
        // The run holds after `held` rows (no release file is ever made): the signal lands mid-run, whatever the speed.
        let outcome = try CLI.run(
            common + ["--output", partial], environment: Self.hold(after: held, release: d.file("never"))
        ) { process in
            while process.isRunning && Self.completeLines(partial) < 1 + held { usleep(1000) }
            kill(process.processIdentifier, signal)
        }
        if signal == SIGINT {
            #expect(outcome.reason == .exit && outcome.status == 130, "\(outcome.stderr)")
            #expect(outcome.stderr.contains("interrupted: \(held) of \(images) images written"))
        } else {
            #expect(outcome.reason == .uncaughtSignal && outcome.status == SIGKILL)
        }
        // Killed mid-way: exactly the header and the first `held` rows of the uninterrupted run.
        let interrupted = try Data(contentsOf: URL(fileURLWithPath: partial))
        let cut = try #require(expected.indices.filter { expected[$0] == UInt8(ascii: "\n") }.dropFirst(held).first)
        #expect(interrupted == expected[...cut])
        #expect(interrupted.count < expected.count)
        let resumed = try CLI.run(common + ["--output", partial, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming: \(held) images already in \(partial), \(images - held) to go"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: partial)) == expected)
    }
}

@Suite("Batch runs under faults")
struct BatchFaultTests {
    static let model = Fixtures.models.first { $0.name == "timm_vit" }!.dir

    func run(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let outcome = try CLI.run(arguments)
        return (outcome.status, outcome.stderr)
    }

    @Test("a FIFO, a folder and a dangling link named *.png get error rows; the run goes on and exits 2")
    func unreadableEntries() throws {
        let d = try ImageDirectory.mixed()
        #expect(mkfifo(d.file("fifo.png"), 0o644) == 0)
        try FileManager.default.createDirectory(atPath: d.file("folder.png"), withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: d.file("dangling.png"), withDestinationPath: d.file("nowhere.png"))
        let out = d.file("rows.jsonl")
        let (status, stderr) = try run(["batch", d.path, "--model", Self.model, "--format", "jsonl", "--output", out, "--quiet"])
        #expect(status == 2)
        let rows = try Data(contentsOf: URL(fileURLWithPath: out)).split(separator: UInt8(ascii: "\n")).map {
            try JSONSerialization.jsonObject(with: Data($0)) as! [String: Any]
        }
        func error(_ name: String) -> String? {
            rows.first { ($0["image"] as! String).hasSuffix("/" + name) }?["error"] as? String
        }
        #expect(error("fifo.png")?.contains("not a regular file") == true)
        #expect(error("dangling.png")?.contains("No such file") == true)
        #expect(rows.contains { ($0["image"] as! String).hasSuffix("/folder.png") } == false)  // folders are not files
        #expect(rows.filter { $0["error"] is NSNull }.count == 4)
        #expect(stderr.contains("warning:") && stderr.contains("fifo.png"))
    }

    @Test("a file deleted while the run is under way gets an error row")
    func deletedMidRun() throws {
        let d = try BatchInterruptionTests.manyImages(40)
        let out = d.file("rows.csv"), victim = d.file("img-00030.png"), release = d.file("release")
        // The run holds after its first row (test hook) while the victim is deleted, far ahead of what was read.
        let outcome = try CLI.run(
            ["batch", d.path, "--model", Self.model, "--batch-size", "1", "--output", out, "--quiet"],
            environment: BatchInterruptionTests.hold(after: 1, release: release)
        ) { process in
            defer { _ = FileManager.default.createFile(atPath: release, contents: nil) }
            while process.isRunning && BatchInterruptionTests.completeLines(out) < 2 { usleep(1000) }
            #expect(BatchInterruptionTests.completeLines(out) == 2)  // the header and one row: mid-run
            try FileManager.default.removeItem(atPath: victim)
        }
        #expect(outcome.status == 2)
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.contains("img-00030.png,,,,,,,,,,,,,,,") && text.contains("No such file"))
        #expect(text.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count == 41)
    }

    /// /dev/full, where every write fails with ENOSPC (Linux): a character device, not a file --force would create.
    static let hasDevFull: Bool = {
        var status = stat()
        return stat("/dev/full", &status) == 0 && (status.st_mode & S_IFMT) == S_IFCHR
    }()

    @Test(
        "a full disk stops the run with a clear message and exit status 1",
        .enabled(if: hasDevFull, "needs the /dev/full device"))
    func diskFull() throws {
        let d = try ImageDirectory.mixed()
        let (status, stderr) = try run(["batch", d.path, "--model", Self.model, "--output", "/dev/full", "--force", "--quiet"])
        #expect(status == 1)
        #expect(stderr.contains("/dev/full: cannot write: No space left on device"))
    }

    @Test("--output may name a device such as /dev/null without --force (there is no file to overwrite)")
    func outputToDevice() throws {
        let d = try ImageDirectory.mixed()
        let (status, stderr) = try run(["batch", d.path, "--model", Self.model, "--output", "/dev/null", "--quiet"])
        #expect(status == 2, "\(stderr)")  // the mixed folder has unreadable files
        #expect(!stderr.contains("refusing"))
    }
}
