import Foundation

/// Files shipped with the library (`Sources/ViTKit/Resources`), found without trapping when they are missing.
///
/// SwiftPM copies them into a `vitclassify_ViTKit.resources` folder beside the built executable (a consumer package's
/// executable too). Its generated `Bundle.module` stops the process when that folder is missing; this looks in the same
/// places, and in `PREFIX/share/vitclassify/` for an installed binary, and throws a one-line error instead.
enum BundledResources {
    static let bundleName = "vitclassify_ViTKit"

    /// The folders that may hold the resources, most specific first.
    static var candidates: [URL] {
        var folders: [URL] = [Bundle.main.bundleURL]
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent() {
            folders += [executable, executable.deletingLastPathComponent().appendingPathComponent("share/vitclassify")]
        }
        return folders.flatMap { folder in
            [
                folder.appendingPathComponent("\(bundleName).resources"),  // Linux
                folder.appendingPathComponent("\(bundleName).bundle/Contents/Resources"),  // Apple platforms
                folder.appendingPathComponent("\(bundleName).bundle"),
            ]
        }
    }

    /// The file at `relative` (e.g. `labels/imagenet-1k.txt`) inside the resources.
    ///
    /// - Throws: ``ViTError/fileUnreadable(path:reason:)`` naming the folders searched, when none has it.
    static func url(_ relative: String) throws -> URL {
        let folders = candidates
        for folder in folders {
            let file = folder.appendingPathComponent("Resources").appendingPathComponent(relative)
            if FileManager.default.fileExists(atPath: file.path) { return file }
        }
        throw ViTError.fileUnreadable(
            path: relative,
            reason:
                "vitclassify's resource file is missing: keep the \(bundleName).resources folder beside the binary or in PREFIX/share/vitclassify (looked in \(folders.first?.deletingLastPathComponent().path ?? "?"))"
        )
    }

    /// The lines of a text resource (a final newline ends the last line, it does not start an empty one).
    static func lines(_ relative: String) throws -> [String] {
        let url = try url(relative)
        let text = try FileIO.read(url.path, limit: 16 << 20)
        var lines = String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        return lines.map(String.init)
    }
}
