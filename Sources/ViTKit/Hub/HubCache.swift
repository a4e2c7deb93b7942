import Foundation

/// The Hugging Face cache layout that `huggingface_hub` (and so timm and transformers) reads and writes, checked
/// against `huggingface_hub` 2.4.0 (`file_download.py`):
///
/// ```
/// <root>/CACHEDIR.TAG
/// <root>/models--ORG--NAME/refs/<revision>                  the commit hash the revision resolved to
/// <root>/models--ORG--NAME/blobs/<etag>                     file content, named by its ETag (SHA-256 for LFS files)
/// <root>/models--ORG--NAME/snapshots/<commit>/<filename>    relative symlink to ../../blobs/<etag>
/// <root>/models--ORG--NAME/.no_exist/<commit>/<filename>    empty: the file is known not to exist at that commit
/// <root>/.locks/models--ORG--NAME/<etag>.lock               flock(2) lock held while the blob is downloaded
/// ```
///
/// A snapshot entry appears only after its blob is complete and checked, so whatever a snapshot folder holds is
/// usable. vitclassify resumes a cut download from `blobs/<etag>.incomplete` (written only under the lock);
/// `huggingface_hub` 2.4.0 writes its own `blobs/<etag>.<random>.incomplete` files and never touches ours.
package struct HubCache: Sendable {
    package let root: String

    package init(root: String) { self.root = root }

    /// `models--ORG--NAME`, as `huggingface_hub.file_download.repo_folder_name`.
    static func folderName(_ repository: String) -> String {
        (["models"] + repository.split(separator: "/").map(String.init)).joined(separator: "--")
    }

    package func repositoryFolder(_ repository: String) -> String { root + "/" + Self.folderName(repository) }

    func blobPath(_ repository: String, etag: String) -> String { repositoryFolder(repository) + "/blobs/" + etag }

    package func snapshotFolder(_ repository: String, commit: String) -> String {
        repositoryFolder(repository) + "/snapshots/" + commit
    }

    func pointerPath(_ repository: String, commit: String, filename: String) -> String {
        snapshotFolder(repository, commit: commit) + "/" + filename
    }

    func refPath(_ repository: String, revision: String) -> String {
        repositoryFolder(repository) + "/refs/" + revision
    }

    func noExistPath(_ repository: String, commit: String, filename: String) -> String {
        repositoryFolder(repository) + "/.no_exist/" + commit + "/" + filename
    }

    func lockPath(_ repository: String, etag: String) -> String {
        root + "/.locks/" + Self.folderName(repository) + "/" + etag + ".lock"
    }

    /// The commit a revision stands for in the cache: the revision itself if it is a commit hash, else the content
    /// of `refs/<revision>` (written when it was last resolved online).
    func commit(_ repository: String, revision: String) -> String? {
        if HubModelID.isCommitHash(revision) { return revision }
        guard let data = FileManager.default.contents(atPath: refPath(repository, revision: revision)),
            let text = String(data: data, encoding: .utf8)
        else { return nil }
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return HubModelID.isCommitHash(commit) ? commit : nil
    }

    /// The snapshot entry of a file, if it is there and leads to a regular file.
    func cachedFile(_ repository: String, commit: String, filename: String) -> String? {
        let path = pointerPath(repository, commit: commit, filename: filename)
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
        return path
    }

    func isKnownMissing(_ repository: String, commit: String, filename: String) -> Bool {
        FileManager.default.fileExists(atPath: noExistPath(repository, commit: commit, filename: filename))
    }

    /// The folder name of a snapshot, `ORG/NAME` when `folder` is `…/models--ORG--NAME/snapshots/<commit>`.
    package static func repository(ofSnapshotFolder folder: String) -> String? {
        let parts = URL(fileURLWithPath: folder).standardizedFileURL.pathComponents
        guard parts.count >= 3, parts[parts.count - 2] == "snapshots", HubModelID.isCommitHash(parts[parts.count - 1])
        else { return nil }
        let name = parts[parts.count - 3].components(separatedBy: "--")
        guard name.count == 3, name[0] == "models" else { return nil }
        return name[1] + "/" + name[2]
    }

    // MARK: Writing

    /// Records the commit a revision resolved to (atomically: a reader never sees half a hash).
    func writeRef(_ repository: String, revision: String, commit: String) throws {
        guard revision != commit else { return }
        let path = refPath(repository, revision: revision)
        if self.commit(repository, revision: revision) == commit { return }
        try makeParent(of: path)
        try writeAtomically(path, Data(commit.utf8))
    }

    /// Records that a file does not exist at a commit, as `huggingface_hub` does after a 404 `EntryNotFound`.
    func recordMissing(_ repository: String, commit: String, filename: String) {
        let path = noExistPath(repository, commit: commit, filename: filename)
        try? makeParent(of: path)
        _ = FileManager.default.createFile(atPath: path, contents: nil)
    }

    /// Points `snapshots/<commit>/<filename>` at `blobs/<etag>` with a relative symlink, replacing whatever was
    /// there in one rename.
    func link(_ repository: String, commit: String, filename: String, etag: String) throws {
        let pointer = pointerPath(repository, commit: commit, filename: filename)
        try makeParent(of: pointer)
        let depth = filename.split(separator: "/").count + 1  // snapshots/<commit>/<dirs…>/file → repository folder
        let target = String(repeating: "../", count: depth) + "blobs/" + etag
        let temporary = pointer + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).link"
        guard symlink(target, temporary) == 0 else {
            throw ViTError.writeFailed(path: pointer, reason: "cannot create symlink: \(FileIO.errnoText())")
        }
        guard rename(temporary, pointer) == 0 else {
            let reason = FileIO.errnoText()
            unlink(temporary)
            throw ViTError.writeFailed(path: pointer, reason: reason)
        }
    }

    /// Writes `CACHEDIR.TAG` (backup tools skip the folder), as `huggingface_hub` does.
    func tagCacheDirectory() {
        let path = root + "/CACHEDIR.TAG"
        guard !FileManager.default.fileExists(atPath: path) else { return }
        let content =
            "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by huggingface_hub.\n"
            + "# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n"
        try? writeAtomically(path, Data(content.utf8))
    }

    func makeParent(of path: String) throws {
        try makeFolder(URL(fileURLWithPath: path).deletingLastPathComponent().path)
    }

    func makeFolder(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ViTError.writeFailed(path: path, reason: "cannot create folder: \((error as NSError).localizedDescription)")
        }
    }

    private func writeAtomically(_ path: String, _ data: Data) throws {
        let temporary = path + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else {
            throw ViTError.writeFailed(path: path, reason: "cannot create \(temporary)")
        }
        guard rename(temporary, path) == 0 else {
            let reason = FileIO.errnoText()
            unlink(temporary)
            throw ViTError.writeFailed(path: path, reason: reason)
        }
    }
}

/// An exclusive `flock(2)` lock on a file, the kind `huggingface_hub`'s `WeakFileLock` (filelock's `UnixFileLock`)
/// takes on `.locks/models--ORG--NAME/<etag>.lock`, so a vitclassify and a Python process downloading the same blob
/// wait for each other. The lock file stays in place (waiters must share its inode); the kernel releases the lock if
/// the process dies.
final class HubFileLock {
    private var descriptor: Int32

    /// Blocks until the lock is held; calls `waiting` once if that takes more than `notifyAfter` seconds.
    init(path: String, notifyAfter: TimeInterval = 2, waiting: () -> Void = {}) throws {
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o664)
        guard descriptor >= 0 else { throw ViTError.writeFailed(path: path, reason: FileIO.errnoText()) }
        fchmod(descriptor, 0o664)  // group-writable like huggingface_hub's, so users sharing a cache can wait; best effort
        let start = Date()
        var notified = false
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            guard code == EWOULDBLOCK else {
                // A file system without flock (some network mounts): go on unlocked, as filelock's soft fallback
                // would; the .incomplete file is then checked by its digest before it is used.
                return
            }
            if !notified, Date().timeIntervalSince(start) > notifyAfter {
                notified = true
                waiting()
            }
            usleep(50_000)
        }
    }

    func unlock() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { unlock() }
}
