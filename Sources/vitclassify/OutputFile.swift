import Foundation
import ViTKit

/// Where batch rows go: standard output, or a file written in whole rows (one `write` per batch of complete
/// lines), so an interrupted run leaves only complete rows behind and `--resume` can carry on.
final class RowOutput {
    private let fd: Int32
    private let path: String
    private let ownsDescriptor: Bool

    /// Standard output.
    init() {
        fd = STDOUT_FILENO
        path = "<stdout>"
        ownsDescriptor = false
    }

    enum Mode { case create, replace, append }

    init(path: String, mode: Mode) throws {
        var flags = O_WRONLY | O_CLOEXEC
        if !FileIO.isStream(path) {  // a device or FIFO has nothing to overwrite, truncate or append to
            switch mode {
            case .create: flags |= O_CREAT | O_EXCL
            case .replace: flags |= O_CREAT | O_TRUNC
            case .append: flags |= O_APPEND
            }
        }
        let descriptor = open(path, flags, 0o644)
        guard descriptor >= 0 else {
            if errno == EEXIST {
                throw ViTError.refusingToOverwrite(
                    path: path, reason: "file exists (use --resume to continue it or --force to replace it)")
            }
            throw ViTError.writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
        fd = descriptor
        self.path = path
        ownsDescriptor = true
    }

    deinit { if ownsDescriptor { close(fd) } }

    /// Writes complete rows; a failure (disk full, I/O error) is an error that stops the run.
    func write(_ text: String) throws {
        var bytes = Array(text.utf8)
        var offset = 0
        try bytes.withUnsafeMutableBytes { buffer in
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ViTError.writeFailed(path: path, reason: String(cString: strerror(errno)))
                }
                offset += n
            }
        }
        bytes.removeAll()
    }

    /// Flushes to the disk (regular files only).
    func sync() throws {
        guard ownsDescriptor else { return }
        if fsync(fd) != 0 && errno != EINVAL {
            throw ViTError.writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
    }

    /// For `--resume`: the complete rows already in `path` (a trailing incomplete row is cut off the file).
    static func completeRows(of path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ViTError.fileUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        guard let lastNewline = data.lastIndex(of: UInt8(ascii: "\n")) else {
            if !data.isEmpty { try truncate(path, to: 0) }
            return []
        }
        if lastNewline + 1 < data.count { try truncate(path, to: lastNewline + 1) }
        // Split on the bytes: in Swift "\r\n" is one Character, so String.split(separator: "\n") would not see CSV rows.
        return data[..<(lastNewline + 1)].split(separator: UInt8(ascii: "\n")).map { line in
            String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self)
        }
    }

    private static func truncate(_ path: String, to length: Int) throws {
        if !Platform.truncate(path, length: length) {
            throw ViTError.writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
    }
}

/// Progress on standard error: a bar when it is a terminal, a plain line every few seconds otherwise.
final class ProgressReporter {
    private let total: Int
    private let quiet: Bool
    private let terminal = isatty(STDERR_FILENO) != 0
    private let start = Date()
    private var lastLine = Date.distantPast

    init(total: Int, quiet: Bool) {
        self.total = total
        self.quiet = quiet
    }

    var elapsed: Double { Date().timeIntervalSince(start) }

    func update(done: Int, failed: Int) {
        guard !quiet, total > 0 else { return }
        let seconds = max(elapsed, 1e-6), rate = Double(done) / seconds
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let etaText = String(format: "%d:%02d", Int(eta) / 60, Int(eta) % 60)
        if terminal {
            let width = 30, filled = total > 0 ? width * done / total : width
            let bar =
                String(repeating: "=", count: filled) + (filled < width ? ">" : "")
                + String(repeating: " ", count: max(0, width - filled - 1))
            let line = String(
                format: "\r[%@] %d/%d  %.0f img/s  ETA %@%@", bar, done, total, rate, etaText,
                failed > 0 ? "  \(failed) failed" : "")
            FileHandle.standardError.write(Data(line.utf8))
            if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else if Date().timeIntervalSince(lastLine) >= 5 || done == total {
            lastLine = Date()
            printError(
                String(
                    format: "progress: %d/%d images, %.0f img/s, ETA %@%@", done, total, rate, etaText,
                    failed > 0 ? ", \(failed) failed" : ""))
        }
    }

    func summary(classified: Int, failed: Int) {
        guard !quiet else { return }
        let seconds = elapsed
        printError(
            String(
                format: "done: %d classified, %d failed, %.2f s, %.1f images/s", classified, failed, seconds,
                Double(classified + failed) / max(seconds, 1e-9)))
    }
}

/// Ctrl-C / SIGTERM: finish the current batch, write its rows, stop. A second signal kills at once.
enum Interruption {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    static func install() {
        // A parent may have started us with these signals blocked (e.g. some process launchers): unblock them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        for s in [SIGINT, SIGTERM] {
            signal(s) { number in
                if Interruption.flag != 0 { signal(number, SIG_DFL); raise(number) }
                Interruption.flag = 1
            }
        }
    }

    static var requested: Bool { flag != 0 }
}
