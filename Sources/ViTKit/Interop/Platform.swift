import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The calls that differ between Linux (Glibc) and Apple's systems (Darwin), in one place.
///
/// Everything else the package calls is POSIX with the same names on both (`open`, `fstat`, `flock`, `rename`, …,
/// reached through Foundation, which re-exports the C library). Built and tested on Linux x86-64 only: this machine
/// kind has no macOS, so the Darwin branches compile by construction, not by a test run.
package enum Platform {
    /// This process's peak resident set in bytes: `VmHWM` from /proc/self/status on Linux (not `getrusage`, whose
    /// `ru_maxrss` carries a large parent's peak across fork and exec there), `getrusage` elsewhere (bytes on Darwin).
    package static func peakResidentBytes() -> Int {
        #if os(Linux)
            if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
                let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
            {
                return kilobytes * 1024
            }
        #endif
        var usage = rusage()
        #if os(Linux)
            getrusage(RUSAGE_SELF.rawValue, &usage)
            return Int(usage.ru_maxrss) * 1024  // kilobytes on Linux
        #else
            getrusage(RUSAGE_SELF, &usage)
            return Int(usage.ru_maxrss)  // bytes on Darwin
        #endif
    }

    /// The running executable's path.
    package static var executablePath: String {
        #if os(Linux)
            URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        #else
            Bundle.main.executablePath ?? CommandLine.arguments[0]
        #endif
    }

    /// Sets a file's length (`truncate`).
    package static func truncate(_ path: String, length: Int) -> Bool {
        #if canImport(Glibc)
            Glibc.truncate(path, off_t(length)) == 0
        #else
            Darwin.truncate(path, off_t(length)) == 0
        #endif
    }
}
