import Foundation

/// Accuracy of a model on an ImageFolder-layout dataset (one subfolder per class).
package struct Evaluation: Sendable {
    package struct ClassResult: Sendable {
        package let label: String
        package let index: Int
        package let folder: String
        package let images: Int
        package let correct: Int
        package var accuracy: Double { images > 0 ? Double(correct) / Double(images) : 0 }
    }

    package let labels: [String]
    /// Images classified (files that could not be read are not counted; see ``failed``).
    package private(set) var images = 0
    package private(set) var top1Correct = 0
    package private(set) var top5Correct = 0
    package private(set) var failed = 0
    /// `confusion[true][predicted]`, over the model's classes.
    package private(set) var confusion: [[Int]]
    private var perClassImages: [Int]
    private var perClassCorrect: [Int]

    package init(labels: [String]) {
        self.labels = labels
        confusion = Array(repeating: Array(repeating: 0, count: labels.count), count: labels.count)
        perClassImages = Array(repeating: 0, count: labels.count)
        perClassCorrect = Array(repeating: 0, count: labels.count)
    }

    package var top1: Double { images > 0 ? Double(top1Correct) / Double(images) : 0 }
    package var top5: Double { images > 0 ? Double(top5Correct) / Double(images) : 0 }

    package mutating func add(trueIndex: Int, logits: [Float]) {
        let ranked = Classifier.rank(logits, labels: labels, topK: 5)
        images += 1
        perClassImages[trueIndex] += 1
        confusion[trueIndex][ranked[0].index] += 1
        if ranked[0].index == trueIndex {
            top1Correct += 1
            perClassCorrect[trueIndex] += 1
        }
        if ranked.contains(where: { $0.index == trueIndex }) { top5Correct += 1 }
    }

    package mutating func addFailure() { failed += 1 }

    package func perClass(folders: [Int: String]) -> [ClassResult] {
        folders.keys.sorted().map { i in
            ClassResult(label: labels[i], index: i, folder: folders[i]!, images: perClassImages[i], correct: perClassCorrect[i])
        }
    }

    /// A class name or folder name reduced to lowercase letters and digits, so that `t-shirt_top`,
    /// `T-shirt/top` and `TShirt Top` match.
    package static func normalise(_ name: String) -> String {
        String(name.lowercased().unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) }.map(Character.init))
    }

    /// Matches each subfolder of `directory` to a label; any unmatched folder is an error listing the labels.
    package static func classFolders(in directory: String, labels: [String]) throws -> [(folder: String, index: Int)] {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        } catch {
            throw ViTError.fileUnreadable(path: directory, reason: "cannot list the folder")
        }
        let folders = entries.filter { name in
            var isDirectory: ObjCBool = false
            return !name.hasPrefix(".") && !ImageFolder.isReportFolder(name)
                && FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory)
                && isDirectory.boolValue
        }
        guard !folders.isEmpty else {
            throw ViTError.invalidArgument("\(directory): no class subfolders (expected DIR/<class>/*.png)")
        }
        var byName: [String: Int] = [:]
        for (i, label) in labels.enumerated() where byName[normalise(label)] == nil { byName[normalise(label)] = i }
        var result: [(String, Int)] = []
        var unmatched: [String] = []
        for folder in folders {
            if let index = byName[normalise(folder)] { result.append((folder, index)) } else { unmatched.append(folder) }
        }
        guard unmatched.isEmpty else {
            let shown =
                labels.count > 30
                ? labels.prefix(30).joined(separator: ", ") + ", … (\(labels.count) labels)" : labels.joined(separator: ", ")
            throw ViTError.invalidArgument(
                "\(directory): folder(s) \(unmatched.map { "'\($0)'" }.joined(separator: ", ")) match no label of the model; labels: \(shown)"
            )
        }
        return result
    }
}
