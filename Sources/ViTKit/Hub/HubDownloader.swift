import Foundation

/// Something worth telling the user while a model is fetched.
package enum HubEvent: Sendable {
    /// A file's download starts (or resumes at `resumingAt` bytes); `total` is its size when the Hub says it.
    case downloadStarted(model: String, file: String, total: Int?, resumingAt: Int)
    /// Bytes of the file on disk so far.
    case downloadProgress(model: String, file: String, received: Int, total: Int?)
    case downloadFinished(model: String, file: String)
    /// A one-line warning (cache fallback, waiting for another process's lock, a retried connection).
    case warning(String)
}

/// What the metadata request (`HEAD …/resolve/<revision>/<file>`) tells about a file, as `huggingface_hub`'s
/// `get_hf_file_metadata` reads it.
struct HubFileMetadata: Sendable {
    /// `X-Repo-Commit`: the commit the revision resolved to.
    let commit: String
    /// `X-Linked-Etag` (LFS: the SHA-256) or `ETag` (git: the blob's SHA-1), without quotes or `W/`.
    let etag: String
    /// `X-Linked-Size`, else `Content-Length` of a response that is not a redirect.
    let size: Int?
    /// Where the content is: the redirect target (an LFS file's storage URL) or the resolve URL itself.
    let location: URL
}

/// A failure talking to the Hub, kept apart from ``ViTError`` until the caller knows whether a cached snapshot can
/// stand in for it.
enum HubFailure: Error {
    case http(file: String, url: URL, status: Int, code: String?, message: String?)
    case transport(file: String, HubHTTP.TransportError)
    case notHub(file: String, url: URL, reason: String)

    /// Whether the cache may answer instead, as `huggingface_hub` falls back to it on every metadata failure except
    /// "this file or revision does not exist" (a definite answer).
    var allowsCacheFallback: Bool {
        if case .http(_, _, 404, let code, _) = self { return code != "EntryNotFound" && code != "RevisionNotFound" }
        return true
    }

    var isEntryNotFound: Bool {
        if case .http(_, _, 404, "EntryNotFound", _) = self { return true }
        return false
    }

    var file: String {
        switch self {
        case .http(let file, _, _, _, _), .transport(let file, _), .notHub(let file, _, _): file
        }
    }

    /// One line: what happened, where (URL without its query, which may hold a storage signature).
    func reason(tokenSet: Bool) -> String {
        switch self {
        case .http(_, let url, let status, let code, let message):
            var text = "HTTP \(status)\(code.map { " \($0.forMessage(limit: 40))" } ?? "") from \(HubFailure.shown(url))"
            switch (status, code) {
            case (404, "EntryNotFound"): text += ": no such file at this revision"
            case (404, "RevisionNotFound"): text += ": no such revision"
            case (401, _), (404, "RepoNotFound"):
                text +=
                    tokenSet
                    ? ": no such repository, or HF_TOKEN does not give access to it"
                    : ": no such repository, or it is private or gated (set HF_TOKEN)"
            case (403, _): text += ": access denied (a gated model: accept its terms on the Hub, and set HF_TOKEN)"
            case (429, _): text += ": rate limited, try again later"
            case (500...599, _): text += ": server error"
            default: break
            }
            if let message, !message.isEmpty { text += " (\(message.forMessage(limit: 160)))" }
            return text
        case .transport(_, let error):
            return
                "cannot reach \(HubHTTP.origin(error.url).replacingOccurrences(of: ":443", with: "")): \(error.reason.forMessage(limit: 160))"
        case .notHub(_, let url, let reason):
            return "\(HubFailure.shown(url)): \(reason)"
        }
    }

    static func shown(_ url: URL) -> String {
        var components = URLComponents(url: url, resolvingAgainstBaseURL: true)
        components?.query = nil
        components?.fragment = nil
        return components?.string ?? url.absoluteString
    }
}

/// Downloads one file of a repository into the cache, as `huggingface_hub`'s `hf_hub_download` does: metadata
/// request, lock, download, check, rename into `blobs/`, symlink from `snapshots/<commit>/`.
///
/// A download goes to `blobs/<etag>.incomplete` under the blob's lock. A connection that drops is resumed with a
/// `Range` request (up to 5 times in a row without progress), and a later run resumes what an interrupted one left.
/// The complete file is checked against its ETag (SHA-256 for LFS files, the git blob SHA-1 otherwise) and its
/// size before it is renamed into place; a file that fails is deleted and reported.
struct HubDownloader {
    let http: HubHTTP
    let cache: HubCache
    let events: @Sendable (HubEvent) -> Void

    static let maxRedirects = 10

    /// `{endpoint}/{repository}/resolve/{revision}/{filename}`, the revision percent-encoded whole (`refs%2Fpr%2F1`),
    /// the file name segment by segment, as `huggingface_hub.hf_hub_url`.
    func resolveURL(_ repository: String, revision: String, filename: String) throws -> URL {
        var unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        let encodedRevision = revision.addingPercentEncoding(withAllowedCharacters: unreserved) ?? revision
        unreserved.insert("/")
        let encodedFile = filename.addingPercentEncoding(withAllowedCharacters: unreserved) ?? filename
        let endpoint = http.settings.endpoint
        guard let url = URL(string: "\(endpoint)/\(repository)/resolve/\(encodedRevision)/\(encodedFile)"),
            ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil
        else {
            throw ViTError.invalidArgument(
                "HF_ENDPOINT '\(endpoint.forMessage)' is not an http:// or https:// URL (e.g. https://huggingface.co)")
        }
        return url
    }

    /// The metadata request. Redirects within the endpoint's origin are followed (a renamed repository, a small
    /// file's resolve-cache URL); a redirect elsewhere is the answer (an LFS file's storage URL).
    func metadata(_ repository: String, revision: String, filename: String) throws -> HubFileMetadata {
        var url = try resolveURL(repository, revision: revision, filename: filename)
        var response: HubHTTP.Response
        var hops = 0
        while true {
            do {
                response = try http.head(url)
            } catch let error as HubHTTP.TransportError {
                throw HubFailure.transport(file: filename, error)
            }
            guard response.isRedirect, let target = response.location, HubHTTP.origin(target) == HubHTTP.origin(url) else {
                break
            }
            hops += 1
            guard hops <= Self.maxRedirects else {
                throw HubFailure.notHub(file: filename, url: url, reason: "more than \(Self.maxRedirects) redirects")
            }
            url = target
        }
        guard (200...299).contains(response.status) || response.isRedirect else {
            throw HubFailure.http(
                file: filename, url: url, status: response.status, code: response.header("x-error-code"),
                message: response.header("x-error-message"))
        }
        guard let commit = response.header("x-repo-commit"), HubModelID.isCommitHash(commit) else {
            throw HubFailure.notHub(
                file: filename, url: url,
                reason: "the answer has no X-Repo-Commit header (is HF_ENDPOINT a Hugging Face Hub or a mirror of one?)")
        }
        let rawETag = response.header("x-linked-etag") ?? response.header("etag") ?? ""
        var etag = Substring(rawETag)
        if etag.hasPrefix("W/") { etag = etag.dropFirst(2) }
        etag = etag.drop { $0 == "\"" }
        while etag.hasSuffix("\"") { etag = etag.dropLast() }
        guard !etag.isEmpty, etag.count <= 128, !etag.hasPrefix("."),
            etag.unicodeScalars.allSatisfy({
                CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0)
            })
        else {
            throw HubFailure.notHub(
                file: filename, url: url, reason: "the answer has no usable ETag ('\(rawETag.forMessage(limit: 80))')")
        }
        let size = (response.header("x-linked-size") ?? (response.isRedirect ? nil : response.header("content-length")))
            .flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return HubFileMetadata(
            commit: commit, etag: String(etag), size: size, location: response.isRedirect ? response.location! : url)
    }

    /// Makes `snapshots/<commit>/<filename>` point at the checked content, downloading it if no blob has it yet.
    ///
    /// - Returns: the snapshot path.
    func fetch(_ model: String, repository: String, filename: String, metadata: HubFileMetadata) throws -> String {
        if let path = cache.cachedFile(repository, commit: metadata.commit, filename: filename) { return path }
        let blob = cache.blobPath(repository, etag: metadata.etag)
        let lockPath = cache.lockPath(repository, etag: metadata.etag)
        try cache.makeParent(of: blob)
        try cache.makeParent(of: lockPath)
        cache.tagCacheDirectory()
        let lock = try HubFileLock(path: lockPath) {
            events(.warning("\(model): another process is downloading \(filename) (lock \(lockPath)); waiting for it"))
        }
        defer { lock.unlock() }
        if !FileManager.default.fileExists(atPath: blob) {
            try download(model, filename: filename, metadata: metadata, to: blob)
        }
        try cache.link(repository, commit: metadata.commit, filename: filename, etag: metadata.etag)
        return cache.pointerPath(repository, commit: metadata.commit, filename: filename)
    }

    /// Downloads into `<blob>.incomplete` (resuming what is there), checks it, renames it to `blob`. The caller
    /// holds the blob's lock.
    private func download(_ model: String, filename: String, metadata: HubFileMetadata, to blob: String) throws {
        let partial = blob + ".incomplete"
        func fail(_ reason: String) -> ViTError { .hub(model: model, file: filename, reason: reason) }
        let descriptor = open(partial, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw ViTError.writeFailed(path: partial, reason: FileIO.errnoText()) }
        var closed = false
        defer { if !closed { close(descriptor) } }
        var startedFrom = fileSize(descriptor)
        var restartedOnce = false
        while true {
            if let size = metadata.size, fileSize(descriptor) > size { ftruncate(descriptor, 0) }
            startedFrom = fileSize(descriptor)
            try transfer(model, filename: filename, metadata: metadata, into: descriptor, path: partial)
            let size = fileSize(descriptor)
            if let expected = metadata.size, size != expected {
                ftruncate(descriptor, 0)
                throw fail("received \(size) bytes, but the Hub announced \(expected); the partial file was discarded")
            }
            let check = ContentCheck(etag: metadata.etag)
            guard let expected = check.expected else { break }
            let actual = try check.digest(ofFileAt: partial)
            if actual == expected { break }
            ftruncate(descriptor, 0)
            if startedFrom > 0 && !restartedOnce {
                // The resumed prefix may be what was wrong (left by another version of the file): once more, whole.
                restartedOnce = true
                events(.warning("\(model): \(filename): resumed download failed its check; downloading it again from the start"))
                continue
            }
            unlink(partial)
            let kind = if case .sha256 = check { "SHA-256" } else { "git blob SHA-1" }
            throw fail("\(kind) mismatch (expected \(expected), got \(actual ?? "?")): the download was discarded")
        }
        guard fsync(descriptor) == 0 || errno == EINVAL else {
            throw ViTError.writeFailed(path: partial, reason: FileIO.errnoText())
        }
        close(descriptor)
        closed = true
        guard rename(partial, blob) == 0 else { throw ViTError.writeFailed(path: blob, reason: FileIO.errnoText()) }
        events(.downloadFinished(model: model, file: filename))
    }

    /// Brings the partial file to its full length: `GET` with `Range: bytes=<size>-` when something is there,
    /// following redirects (the token only to the endpoint's origin), retrying a dropped connection from where it
    /// stopped.
    private func transfer(
        _ model: String, filename: String, metadata: HubFileMetadata, into descriptor: Int32, path: String
    ) throws {
        var url = metadata.location
        var hops = 0, failuresWithoutProgress = 0
        let writeError = LockedBox<Error?>(nil)
        while true {
            let offset = fileSize(descriptor)
            if let size = metadata.size, offset == size, offset > 0 { return }
            let position = LockedBox(offset)
            let total = LockedBox(metadata.size)
            let response: HubHTTP.Response
            do {
                response = try http.get(
                    url, headers: offset > 0 ? ["Range": "bytes=\(offset)-"] : [:],
                    onResponse: { response in
                        guard !response.isRedirect, (200...299).contains(response.status) else { return false }
                        if response.status == 206 {
                            // "bytes <first>-<last>/<size>": the body must start where the file ends.
                            let range = response.header("content-range") ?? ""
                            let first = range.split(separator: " ").last?.split(separator: "-").first.flatMap { Int($0) }
                            guard first == offset else {
                                ftruncate(descriptor, 0)
                                return false  // an unexpected range: start again from nothing
                            }
                            if total.value == nil, let size = range.split(separator: "/").last.flatMap({ Int($0) }) {
                                total.value = size
                            }
                        } else {
                            if offset > 0 { ftruncate(descriptor, 0) }  // the Range was ignored: the whole file comes
                            position.value = 0
                            if total.value == nil { total.value = response.header("content-length").flatMap { Int($0) } }
                        }
                        events(.downloadStarted(model: model, file: filename, total: total.value, resumingAt: position.value))
                        return true
                    },
                    onData: { data in
                        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
                            var written = 0
                            while written < bytes.count {
                                let n = pwrite(
                                    descriptor, bytes.baseAddress! + written, bytes.count - written,
                                    off_t(position.value + written))
                                if n < 0 {
                                    if errno == EINTR { continue }
                                    let error = ViTError.writeFailed(path: path, reason: FileIO.errnoText())
                                    writeError.value = error
                                    throw error
                                }
                                written += n
                            }
                        }
                        position.value += data.count
                        events(.downloadProgress(model: model, file: filename, received: position.value, total: total.value))
                    })
            } catch let error as HubHTTP.TransportError {
                if error.received == 0 { failuresWithoutProgress += 1 } else { failuresWithoutProgress = 0 }
                guard failuresWithoutProgress < 5 else { throw HubFailure.transport(file: filename, error) }
                events(
                    .warning(
                        "\(model): \(filename): \(error.reason.forMessage(limit: 120)) after \(fileSize(descriptor)) bytes; resuming"
                    ))
                if error.received == 0 { Thread.sleep(forTimeInterval: 1) }
                continue
            }
            if let error = writeError.value { throw error }
            if response.isRedirect, let target = response.location {
                hops += 1
                guard hops <= Self.maxRedirects else {
                    throw HubFailure.notHub(file: filename, url: url, reason: "more than \(Self.maxRedirects) redirects")
                }
                url = target
                continue
            }
            if response.status == 416, offset > 0 {
                ftruncate(descriptor, 0)  // the partial file is longer than the content: start again
                continue
            }
            if response.status == 206, fileSize(descriptor) == 0, offset > 0 { continue }  // unexpected range: restart
            guard (200...299).contains(response.status) else {
                throw HubFailure.http(
                    file: filename, url: url, status: response.status, code: response.header("x-error-code"),
                    message: response.header("x-error-message"))
            }
            return
        }
    }

    private func fileSize(_ descriptor: Int32) -> Int {
        var status = stat()
        return fstat(descriptor, &status) == 0 ? Int(status.st_size) : 0
    }
}

/// A value shared between the caller and `URLSession`'s delegate queue (which calls back one at a time, while the
/// caller waits).
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
    func withValue<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try lock.withLock { try body(&stored) }
    }
}
