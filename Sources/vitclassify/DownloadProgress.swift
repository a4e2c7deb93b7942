import Foundation
import ViTKit

/// Shows Hub downloads on standard error: a progress bar when it is a terminal (and `HF_HUB_DISABLE_PROGRESS_BARS`
/// is not set), nothing otherwise; warnings always, as `warning: …` lines.
final class DownloadProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let enabled: Bool
    private var lastDraw = Date.distantPast
    private var started = Date()
    private var startOffset = 0
    private var drawn = false

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let disabled = ["1", "ON", "YES", "TRUE"].contains((environment["HF_HUB_DISABLE_PROGRESS_BARS"] ?? "").uppercased())
        enabled = isatty(STDERR_FILENO) == 1 && !disabled
    }

    func handle(_ event: HubEvent) {
        lock.withLock {
            switch event {
            case .warning(let message):
                clearLine()
                printError("warning: \(message)")
            case .downloadStarted(let model, let file, let total, let offset):
                started = Date()
                startOffset = offset
                draw(model, file, offset, total, force: true)
            case .downloadProgress(let model, let file, let received, let total):
                draw(model, file, received, total, force: false)
            case .downloadFinished:
                if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
                drawn = false
            }
        }
    }

    private func clearLine() {
        if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        drawn = false
    }

    private func draw(_ model: String, _ file: String, _ received: Int, _ total: Int?, force: Bool) {
        guard enabled else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.1 || received == total else { return }
        lastDraw = now
        let seconds = max(now.timeIntervalSince(started), 0.001)
        let rate = Double(received - startOffset) / seconds
        var line = "Downloading \(model) \(file)"
        if let total, total > 0 {
            let fraction = min(Double(received) / Double(total), 1)
            let width = 24, filled = Int(fraction * Double(width))
            line += String(format: " %3d%% ", Int(fraction * 100))
            line += "|" + String(repeating: "█", count: filled) + String(repeating: " ", count: width - filled) + "| "
            line += "\(Self.size(received))/\(Self.size(total))"
        } else {
            line += " \(Self.size(received))"
        }
        line += "  \(Self.size(Int(rate)))/s"
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        drawn = true
    }

    /// 980 B, 12.3 kB, 345.6 MB, 1.2 GB.
    static func size(_ bytes: Int) -> String {
        let value = Double(bytes)
        switch value {
        case ..<1e3: return "\(bytes) B"
        case ..<1e6: return String(format: "%.1f kB", value / 1e3)
        case ..<1e9: return String(format: "%.1f MB", value / 1e6)
        default: return String(format: "%.2f GB", value / 1e9)
        }
    }
}
