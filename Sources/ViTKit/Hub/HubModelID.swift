import Foundation

/// A model repository on the Hugging Face Hub and the revision to use: `ORG/NAME[@REVISION]`, or timm's spelling
/// `hf-hub:ORG/NAME[@REVISION]`.
///
/// Repository ids follow `huggingface_hub`'s `validate_repo_id`: two parts of 1–96 characters from `A–Z a–z 0–9 - _ .`,
/// each starting and ending with a letter, digit or `_`, no `--` or `..`, not ending in `.git`. Revisions (branch,
/// tag, commit, `refs/pr/N`) and file names are checked so that neither can leave the cache folder: no empty, `.` or
/// `..` segment, no leading `/`, no backslash or control character.
package struct HubModelID: Sendable, Equatable, CustomStringConvertible {
    /// `ORG/NAME`.
    package let repository: String
    /// A branch, tag or commit hash; `main` unless given.
    package let revision: String

    package static let defaultRevision = "main"

    package var description: String { revision == Self.defaultRevision ? repository : "\(repository)@\(revision)" }

    /// Whether the revision is a full commit hash (then the cache can answer without asking the Hub).
    package var revisionIsCommit: Bool { Self.isCommitHash(revision) }

    package init(repository: String, revision: String = HubModelID.defaultRevision) throws {
        try Self.validateRepository(repository)
        try Self.validateRevision(revision)
        self.repository = repository
        self.revision = revision
    }

    /// Parses `ORG/NAME`, `ORG/NAME@REVISION`, or the same after `hf-hub:`.
    ///
    /// - Throws: ``ViTError/invalidArgument(_:)`` naming what is wrong with the id.
    package init(parsing text: String) throws {
        var rest = Substring(text)
        if rest.hasPrefix(Self.timmPrefix) { rest = rest.dropFirst(Self.timmPrefix.count) }
        var revision = Self.defaultRevision
        if let at = rest.firstIndex(of: "@") {
            revision = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
        }
        do {
            try self.init(repository: String(rest), revision: revision)
        } catch ViTError.invalidArgument(let reason) {
            throw ViTError.invalidArgument("'\(text.forMessage)' is not a Hugging Face model id: \(reason)")
        }
    }

    /// timm's prefix for Hub models: `timm.create_model("hf-hub:timm/vit_base_patch16_224.augreg2_in21k_ft_in1k")`.
    package static let timmPrefix = "hf-hub:"

    /// Whether a `--model` value that is not an existing path is meant as a Hub id: `hf-hub:…`, or exactly one `/`
    /// between two non-empty parts, not starting like a path (`/`, `.`, `~`) and not naming a file by its extension.
    package static func looksLikeID(_ text: String) -> Bool {
        if text.hasPrefix(timmPrefix) { return true }
        let name = text.split(separator: "@", maxSplits: 1).first.map(String.init) ?? text
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return false }
        if let first = text.first, "/.~".contains(first) { return false }
        let lower = name.lowercased()
        return ![".safetensors", ".json", ".bin", ".png"].contains { lower.hasSuffix($0) }
    }

    static func isCommitHash(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    static func validateRepository(_ repository: String) throws {
        func fail(_ reason: String) -> ViTError { .invalidArgument(reason) }
        let parts = repository.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw fail("expected ORG/NAME") }
        for part in parts {
            guard (1...96).contains(part.utf8.count) else { throw fail("each part of ORG/NAME must have 1 to 96 characters") }
            guard part.utf8.allSatisfy({ isWordByte($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }) else {
                throw fail("only letters, digits, '-', '_' and '.' are allowed")
            }
            guard isWordByte(part.utf8.first!), isWordByte(part.utf8.last!) else {
                throw fail("ORG and NAME must start and end with a letter, digit or '_'")
            }
        }
        guard !repository.contains("--"), !repository.contains("..") else { throw fail("'--' and '..' are not allowed") }
        guard !repository.hasSuffix(".git") else { throw fail("a repository id cannot end in '.git'") }
    }

    static func validateRevision(_ revision: String) throws {
        do {
            try validateRelativePath(revision, maxLength: 255)
        } catch ViTError.invalidArgument(let reason) {
            throw ViTError.invalidArgument("revision '\(revision.forMessage)': \(reason)")
        }
    }

    /// Checks a file name from the Hub (or a shard index) before it becomes a path in the cache.
    static func validateFilename(_ filename: String) throws {
        do {
            try validateRelativePath(filename, maxLength: 1024)
        } catch ViTError.invalidArgument(let reason) {
            throw ViTError.invalidArgument("file name '\(filename.forMessage)': \(reason)")
        }
    }

    private static func validateRelativePath(_ text: String, maxLength: Int) throws {
        func fail(_ reason: String) -> ViTError { .invalidArgument(reason) }
        guard !text.isEmpty else { throw fail("is empty") }
        guard text.utf8.count <= maxLength else { throw fail("is longer than \(maxLength) bytes") }
        guard !text.hasPrefix("/") else { throw fail("must not be an absolute path") }
        guard !text.contains("\\") else { throw fail("must not contain '\\'") }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == ":" }) else {
            throw fail("must not contain control characters or ':'")
        }
        for segment in text.split(separator: "/", omittingEmptySubsequences: false) {
            guard !segment.isEmpty, segment != ".", segment != ".." else {
                throw fail("must not contain empty, '.' or '..' path segments")
            }
        }
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == UInt8(ascii: "_")
    }
}
