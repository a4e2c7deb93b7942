import Foundation

/// File reading, memory mapping and atomic writes: the POSIX calls, with errno turned into ``ViTError``.
package enum FileIO {
    /// The text of the current `errno`.
    static func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// Reads a whole regular file with `read(2)` (not a mapping, so a file truncated by someone else while we read
    /// it is an error, not a SIGBUS), refusing files larger than `limit` bytes before reading them.
    static func read(_ path: String, limit: Int) throws -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // O_NONBLOCK: a FIFO must not hang the open
        guard fd >= 0 else { throw ViTError.fileUnreadable(path: path, reason: errnoText()) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw ViTError.fileUnreadable(path: path, reason: errnoText()) }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            let kind = (status.st_mode & S_IFMT) == S_IFDIR ? "is a directory" : "not a regular file"
            throw ViTError.fileUnreadable(path: path, reason: kind)
        }
        let size = Int(status.st_size)
        guard size <= limit else {
            throw ViTError.fileUnreadable(path: path, reason: "file is \(size) bytes, over the limit of \(limit)")
        }
        var data = Data(count: size)
        var filled = 0
        try data.withUnsafeMutableBytes { (buffer: UnsafeMutableRawBufferPointer) in
            while filled < size {
                let n = Glibc.read(fd, buffer.baseAddress! + filled, size - filled)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ViTError.fileUnreadable(path: path, reason: errnoText())
                }
                if n == 0 { break }  // shrank while reading: decode what is there (the decoder reports truncation)
                filled += n
            }
        }
        if filled < size { data.removeSubrange(filled..<size) }
        return data
    }

    /// Whether `path` names an existing device, pipe or socket (`/dev/null`, `/dev/stdout`, a FIFO): a stream rather
    /// than a file, so writing to it overwrites nothing.
    package static func isStream(_ path: String) -> Bool {
        var status = stat()
        guard stat(path, &status) == 0 else { return false }
        let type = status.st_mode & S_IFMT
        return type != S_IFREG && type != S_IFDIR
    }

    /// Writes a file so that it appears complete or not at all: the content goes to a temporary file in the same
    /// folder, which is then renamed over `path`. A stream (`/dev/null`, a FIFO) is written directly.
    ///
    /// - Parameters:
    ///   - overwrite: when false, an existing file at `path` is an error (it is left untouched).
    ///   - protected: paths that must never be written (e.g. the input image); compared after resolving links.
    ///   - body: writes the content to the temporary path it is given.
    static func writeAtomically(
        _ path: String, overwrite: Bool, protected: [String] = [], body: (String) throws -> Void
    ) throws {
        let target = URL(fileURLWithPath: path)
        let resolved = target.resolvingSymlinksInPath().standardizedFileURL.path
        for other in protected
        where URL(fileURLWithPath: other).resolvingSymlinksInPath().standardizedFileURL.path == resolved {
            throw ViTError.refusingToOverwrite(path: path, reason: "it is an input file")
        }
        if isStream(path) {
            // Nothing to replace, and a rename would put a regular file where the device was: write straight through.
            try body(path)
            return
        }
        var status = stat()
        if stat(path, &status) == 0 {
            if (status.st_mode & S_IFMT) == S_IFDIR {
                throw ViTError.writeFailed(path: path, reason: "is a directory")
            }
            if !overwrite {
                throw ViTError.refusingToOverwrite(path: path, reason: "file exists (use --force to replace it)")
            }
        }
        let directory = target.deletingLastPathComponent().path
        let temporary = directory + "/." + target.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try body(temporary)
            guard rename(temporary, path) == 0 else {
                throw ViTError.writeFailed(path: path, reason: errnoText())
            }
        } catch {
            unlink(temporary)
            throw error
        }
    }
}

/// A read-only memory mapping of a whole file. Unmapped when the last reference goes away.
final class MappedFile: @unchecked Sendable {
    let path: String
    /// The file's bytes; valid for the lifetime of this object.
    let bytes: UnsafeRawBufferPointer
    var count: Int { bytes.count }

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // O_NONBLOCK: a FIFO must not hang the open
        guard fd >= 0 else { throw ViTError.fileUnreadable(path: path, reason: FileIO.errnoText()) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw ViTError.fileUnreadable(path: path, reason: FileIO.errnoText()) }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            let kind = (status.st_mode & S_IFMT) == S_IFDIR ? "is a directory" : "not a regular file"
            throw ViTError.fileUnreadable(path: path, reason: kind)
        }
        let size = Int(status.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), address != MAP_FAILED else {
            throw ViTError.fileUnreadable(path: path, reason: FileIO.errnoText())
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// Drops the whole pages inside `offset..<offset+count` from memory (`madvise(MADV_DONTNEED)`); reading them
    /// again would fault them back in from the file.
    func release(offset: Int, count: Int) {
        guard let base = bytes.baseAddress, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset + page - 1) / page * page, end = (offset + count) / page * page
        guard end > start else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, Int32(MADV_DONTNEED))
    }
}
