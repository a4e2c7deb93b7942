import Foundation

/// Finding the images of a folder, in a deterministic order, or of a list of files.
package enum ImageFolder {
    /// The extensions a folder walk picks (compared ignoring case); the format itself is told by each file's
    /// signature when it is read.
    package static let extensions = ["png", "jpg", "jpeg"]

    static func isImageName(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: ".") else { return false }
        return extensions.contains(name[name.index(after: dot)...].lowercased())
    }

    /// Whether `name` is the folder of a report's thumbnails and pages (`--report r.html` writes `r.html.files/`):
    /// output, never read as input.
    package static func isReportFolder(_ name: String) -> Bool { name.hasSuffix(".html.files") }

    /// Every `*.png`, `*.jpg` and `*.jpeg` (extension case-insensitive) under `directory` — recursively when asked,
    /// skipping the `*.html.files` folders that reports write — as paths `directory/relative`, sorted by the bytes of
    /// their UTF-8 paths.
    package static func imageFiles(in directory: String, recursive: Bool) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw ViTError.fileUnreadable(path: directory, reason: "no such folder")
        }
        guard isDirectory.boolValue else { throw ViTError.fileUnreadable(path: directory, reason: "not a folder") }
        let base = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        var relatives: [String] = []
        if recursive {
            guard let enumerator = FileManager.default.enumerator(atPath: directory) else {
                throw ViTError.fileUnreadable(path: directory, reason: "cannot list the folder")
            }
            while let relative = enumerator.nextObject() as? String {
                if isReportFolder(relative) {
                    enumerator.skipDescendants()
                    continue
                }
                if isImageName(relative) { relatives.append(relative) }
            }
        } else {
            do {
                relatives = try FileManager.default.contentsOfDirectory(atPath: directory).filter(isImageName)
            } catch {
                throw ViTError.fileUnreadable(path: directory, reason: "cannot list the folder: \(FileIO.errnoText(EACCES))")
            }
        }
        let paths = relatives.map { base.isEmpty ? "/" + $0 : base + "/" + $0 }.filter { path in
            var isDirectory: ObjCBool = false
            return !(FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue)
        }
        return paths.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// The paths listed in a file, one per line, in the order given (LF or CRLF line ends; empty lines are skipped);
    /// a path may name any file (its format is told by its signature when it is read).
    package static func listedFiles(at path: String) throws -> [String] {
        listedFiles(String(decoding: try FileIO.read(path, limit: 1 << 30), as: UTF8.self))
    }

    /// The paths listed in `text` (see ``listedFiles(at:)``).
    package static func listedFiles(_ text: String) -> [String] {
        // "\r\n" is one Character in Swift: split on any line break (\n, \r\n, \r).
        text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline).map(String.init)
    }
}
