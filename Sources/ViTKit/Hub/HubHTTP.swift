import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// HTTP for the Hub: Foundation's `URLSession` (on Linux, FoundationNetworking over libcurl, part of the Swift
/// toolchain, so no package dependency), used synchronously, one request at a time.
///
/// Redirects are never followed by `URLSession` itself: ``HubDownloader`` follows them one by one, so that the token
/// goes to the endpoint's origin (scheme, host, port) and nowhere else — not to the storage host an LFS file
/// redirects to.
final class HubHTTP: Sendable {
    struct Response: Sendable {
        let url: URL
        let status: Int
        /// Header names in lower case.
        let headers: [String: String]

        func header(_ name: String) -> String? { headers[name.lowercased()] }
        var isRedirect: Bool { [301, 302, 303, 307, 308].contains(status) && header("location") != nil }

        /// The redirect target, resolved against the request's URL.
        var location: URL? {
            guard let text = header("location") else { return nil }
            return URL(string: text, relativeTo: url)?.absoluteURL
        }
    }

    /// A failure below HTTP: no connection, timeout, connection dropped, …
    struct TransportError: Error, Sendable {
        let url: URL
        let reason: String
        /// Bytes of the body received before the failure.
        let received: Int
    }

    let settings: HubSettings

    init(settings: HubSettings) { self.settings = settings }

    /// (scheme, host, port) of a URL, the port defaulted from the scheme.
    static func origin(_ url: URL) -> String {
        let scheme = url.scheme?.lowercased() ?? ""
        let port = url.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : 0)
        return "\(scheme)://\(url.host?.lowercased() ?? ""):\(port)"
    }

    /// Whether requests to `url` carry the token: only those to the endpoint's own origin.
    func sendsToken(to url: URL) -> Bool {
        guard settings.token != nil, let endpoint = URL(string: settings.endpoint) else { return false }
        return Self.origin(url) == Self.origin(endpoint)
    }

    private func request(_ method: String, _ url: URL, headers: [String: String], timeout: TimeInterval) -> URLRequest {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalAndRemoteCacheData, timeoutInterval: timeout)
        request.httpMethod = method
        request.setValue("vitclassify/0.1 (ViTKit; hf_hub-compatible)", forHTTPHeaderField: "User-Agent")
        // The size and digest are those of the bytes as stored: no compression (and Range offsets stay meaningful).
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let token = settings.token, sendsToken(to: url) {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        return request
    }

    /// A `HEAD` request; a redirect comes back as it is.
    func head(_ url: URL) throws -> Response {
        try perform(
            request("HEAD", url, headers: [:], timeout: settings.metadataTimeout), onResponse: { _ in true }, onData: { _ in })
    }

    /// A `GET` request whose body is handed to `onData` piece by piece; `onResponse` sees the status and headers
    /// first and returns whether the body is wanted (a redirect's or an error's is not). A redirect comes back as
    /// it is.
    func get(
        _ url: URL, headers: [String: String] = [:], onResponse: @escaping (Response) throws -> Bool,
        onData: @escaping (Data) throws -> Void
    ) throws -> Response {
        try perform(
            request("GET", url, headers: headers, timeout: settings.downloadTimeout), onResponse: onResponse, onData: onData)
    }

    private func perform(
        _ request: URLRequest, onResponse: @escaping (Response) throws -> Bool, onData: @escaping (Data) throws -> Void
    ) throws -> Response {
        let transfer = Transfer(onResponse: onResponse, onData: onData)
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = request.timeoutInterval  // time without data, not the whole transfer
        configuration.timeoutIntervalForResource = 7 * 24 * 3600
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        let session = URLSession(configuration: configuration, delegate: transfer, delegateQueue: queue)
        defer { session.finishTasksAndInvalidate() }
        session.dataTask(with: request).resume()
        transfer.done.wait()
        return try transfer.outcome(url: request.url!)
    }
}

/// The delegate of one request. Its state is touched only on the session's serial delegate queue until `done` is
/// signalled, and read only after that.
private final class Transfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let done = DispatchSemaphore(value: 0)
    private let onResponse: (HubHTTP.Response) throws -> Bool
    private let onData: (Data) throws -> Void
    private var response: HubHTTP.Response?
    private var received = 0
    private var callbackError: Error?
    private var transportError: Error?

    init(onResponse: @escaping (HubHTTP.Response) throws -> Bool, onData: @escaping (Data) throws -> Void) {
        self.onResponse = onResponse
        self.onData = onData
    }

    static func convert(_ response: URLResponse?, url: URL) -> HubHTTP.Response? {
        guard let http = response as? HTTPURLResponse else { return nil }
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
        }
        return HubHTTP.Response(url: http.url ?? url, status: http.statusCode, headers: headers)
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        completionHandler(nil)  // the caller follows redirects itself (see HubHTTP)
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void
    ) {
        guard let converted = Self.convert(response, url: dataTask.originalRequest?.url ?? URL(fileURLWithPath: "/")) else {
            completionHandler(.cancel)
            return
        }
        self.response = converted
        do {
            completionHandler(try onResponse(converted) ? .allow : .cancel)
        } catch {
            callbackError = error
            completionHandler(.cancel)
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard callbackError == nil else { return }
        do {
            try onData(data)
            received += data.count
        } catch {
            callbackError = error
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if response == nil, let url = task.originalRequest?.url { response = Self.convert(task.response, url: url) }
        transportError = error
        done.signal()
    }

    func outcome(url: URL) throws -> HubHTTP.Response {
        if let callbackError { throw callbackError }
        if let response, transportError == nil || (transportError as? URLError)?.code == .cancelled {
            return response
        }
        let reason: String
        if let error = transportError as NSError? {
            reason = (error.userInfo[NSLocalizedDescriptionKey] as? String) ?? error.localizedDescription
        } else {
            reason = "no HTTP response"
        }
        throw HubHTTP.TransportError(url: url, reason: reason, received: received)
    }
}
