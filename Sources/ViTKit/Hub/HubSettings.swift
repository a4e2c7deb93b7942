import Foundation

/// Where and how to reach the Hub, read from the same environment variables as `huggingface_hub` (checked against
/// its 2.4.0 `constants.py`).
package struct HubSettings: Sendable {
    /// `$HF_ENDPOINT` (a mirror), default `https://huggingface.co`; without a trailing `/`.
    package var endpoint: String
    /// The cache root: `$HF_HUB_CACHE`, else `$HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, else
    /// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
    package var cacheDirectory: String
    /// `$HF_TOKEN` (or the older `$HUGGING_FACE_HUB_TOKEN`): sent as a bearer token to the endpoint only.
    package var token: String?
    /// `$HF_HUB_OFFLINE` (or `$TRANSFORMERS_OFFLINE`) is 1/ON/YES/TRUE: never touch the network.
    package var offline: Bool
    /// Seconds to wait for the metadata (HEAD) answer: `$HF_HUB_ETAG_TIMEOUT`, default 10.
    package var metadataTimeout: TimeInterval
    /// Seconds without data before a download is given up (then retried from where it stopped):
    /// `$HF_HUB_DOWNLOAD_TIMEOUT`, default 10.
    package var downloadTimeout: TimeInterval

    package static let defaultEndpoint = "https://huggingface.co"

    package init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        func value(_ name: String) -> String? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            return text
        }
        func path(_ text: String) -> String { Self.expand(text, environment: environment) }
        endpoint = (value("HF_ENDPOINT") ?? Self.defaultEndpoint)
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        let home =
            value("HF_HOME").map(path)
            ?? ((value("XDG_CACHE_HOME").map(path) ?? path("~/.cache")) + "/huggingface")
        cacheDirectory = (value("HF_HUB_CACHE") ?? value("HUGGINGFACE_HUB_CACHE")).map(path) ?? home + "/hub"
        token = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN")
        let truthy: Set<String> = ["1", "ON", "YES", "TRUE"]
        offline = [value("HF_HUB_OFFLINE"), value("TRANSFORMERS_OFFLINE")].contains {
            $0.map { truthy.contains($0.uppercased()) } ?? false
        }
        metadataTimeout = value("HF_HUB_ETAG_TIMEOUT").flatMap(TimeInterval.init) ?? 10
        downloadTimeout = value("HF_HUB_DOWNLOAD_TIMEOUT").flatMap(TimeInterval.init) ?? 10
    }

    /// `~` and `$VAR` / `${VAR}` expanded, as Python's `os.path.expanduser(os.path.expandvars(…))`.
    static func expand(_ text: String, environment: [String: String]) -> String {
        var out = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            out += rest[..<dollar]
            var name = Substring(""), after = rest.index(after: dollar)
            if rest[after...].hasPrefix("{"), let close = rest[after...].firstIndex(of: "}") {
                name = rest[rest.index(after: after)..<close]
                after = rest.index(after: close)
            } else {
                let end = rest[after...].firstIndex { !($0.isLetter || $0.isNumber || $0 == "_") } ?? rest.endIndex
                name = rest[after..<end]
                after = end
            }
            if !name.isEmpty, let replacement = environment[String(name)] {
                out += replacement
            } else {
                out += rest[dollar..<after]  // unknown variables are left as they are, as Python does
            }
            rest = rest[after...]
        }
        out += rest
        if out == "~" || out.hasPrefix("~/") {
            let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
            out = home + out.dropFirst()
        }
        return out
    }
}
