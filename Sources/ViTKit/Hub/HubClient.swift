import Foundation

/// Finds a Hub model's files in the Hugging Face cache, downloading what is missing.
///
/// ```swift
/// let client = HubClient(settings: HubSettings())
/// let folder = try client.snapshot(for: HubModelID(parsing: "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k"))
/// let classifier = try Classifier(modelPath: folder)
/// ```
///
/// A model is `config.json`, the weights (`model.safetensors`, or `model.safetensors.index.json` and its shards)
/// and, for the Hugging Face format, `preprocessor_config.json` when the repository has one. The revision is
/// resolved to a commit once (with the metadata request for `config.json`) and every other file is fetched at that
/// commit, so the files always belong together; `refs/<revision>` is updated once they are all in place.
///
/// - With `HF_HUB_OFFLINE=1`, only the cache is read.
/// - A revision that is a commit hash whose snapshot is complete is used without any request.
/// - When the Hub cannot be reached (or answers with an error other than "no such file/revision"), the snapshot the
///   revision last resolved to is used, with a warning.
package final class HubClient: Sendable {
    package let settings: HubSettings
    package let cache: HubCache
    private let events: @Sendable (HubEvent) -> Void
    private let downloader: HubDownloader

    package init(settings: HubSettings = HubSettings(), events: @escaping @Sendable (HubEvent) -> Void = { _ in }) {
        self.settings = settings
        self.cache = HubCache(root: settings.cacheDirectory)
        self.events = events
        downloader = HubDownloader(http: HubHTTP(settings: settings), cache: cache, events: events)
    }

    /// The snapshot folder (`…/models--ORG--NAME/snapshots/<commit>`) holding the model's files.
    ///
    /// - Throws: ``ViTError/hub(model:file:reason:)`` naming the model, the file and the reason (HTTP status,
    ///   offline and not cached, checksum mismatch, only pickled weights, …), never the token.
    package func snapshot(for id: HubModelID) throws -> String {
        do {
            return try resolve(id)
        } catch let failure as HubFailure {
            var reason = failure.reason(tokenSet: settings.token != nil)
            if failure.allowsCacheFallback { reason += "; no cached snapshot to fall back on" }
            throw scrub(.hub(model: id.description, file: failure.file, reason: reason))
        } catch let error as ViTError {
            throw scrub(error)
        }
    }

    private func resolve(_ id: HubModelID) throws -> String {
        let repository = id.repository
        if settings.offline {
            guard let commit = cache.commit(repository, revision: id.revision) else {
                throw ViTError.hub(
                    model: id.description, file: nil,
                    reason: "not in the Hugging Face cache (\(cache.root)), and HF_HUB_OFFLINE is set: nothing is downloaded")
            }
            return try assemble(id, commit: commit, online: false)
        }
        if id.revisionIsCommit, let folder = try? assemble(id, commit: id.revision, online: false) { return folder }
        let cachedCommit = cache.commit(repository, revision: id.revision)
        do {
            let config = try downloader.metadata(repository, revision: id.revision, filename: "config.json")
            let folder = try assemble(id, commit: config.commit, online: true, known: ["config.json": config])
            // Best effort, as huggingface_hub: a read-only shared cache that has the files still works.
            try? cache.writeRef(repository, revision: id.revision, commit: config.commit)
            return folder
        } catch let failure as HubFailure where failure.allowsCacheFallback {
            guard let commit = cachedCommit, let folder = try? assemble(id, commit: commit, online: false) else {
                throw failure
            }
            events(
                .warning(
                    scrub(
                        "\(id): \(failure.file): \(failure.reason(tokenSet: settings.token != nil)); "
                            + "using the cached snapshot \(commit.prefix(12))")))
            return folder
        }
    }

    private struct NotCached: Error {
        let file: String
    }

    /// Makes sure the snapshot of `commit` has the model's files, from the cache alone or (`online`) downloading
    /// what is missing. - Returns: the snapshot folder.
    private func assemble(
        _ id: HubModelID, commit: String, online: Bool, known: [String: HubFileMetadata] = [:]
    ) throws -> String {
        let repository = id.repository
        /// The snapshot path of `name`, or `nil` if the file does not exist at this commit.
        func file(_ name: String) throws -> String? {
            try HubModelID.validateFilename(name)
            if let path = cache.cachedFile(repository, commit: commit, filename: name) { return path }
            if cache.isKnownMissing(repository, commit: commit, filename: name) { return nil }
            guard online else { throw NotCached(file: name) }
            let metadata: HubFileMetadata
            do {
                metadata = try known[name] ?? downloader.metadata(repository, revision: commit, filename: name)
            } catch let failure as HubFailure where failure.isEntryNotFound {
                cache.recordMissing(repository, commit: commit, filename: name)
                return nil
            }
            return try downloader.fetch(id.description, repository: repository, filename: name, metadata: metadata)
        }
        func missing(_ name: String, _ reason: String) -> ViTError { .hub(model: id.description, file: name, reason: reason) }

        do {
            guard let config = try file("config.json") else {
                throw missing("config.json", "the repository has no config.json at commit \(commit)")
            }
            if try file("model.safetensors") == nil {
                guard let index = try file("model.safetensors.index.json") else {
                    let pickle = ["pytorch_model.bin", "model.pt", "pytorch_model.bin.index.json"].first { name in
                        (try? exists(repository, commit: commit, filename: name, online: online)) == true
                    }
                    if let pickle {
                        throw missing(
                            pickle,
                            "the repository has PyTorch pickle weights but no model.safetensors; pickles are not loaded "
                                + "(they can run code): use a revision with safetensors weights, or convert them")
                    }
                    throw missing("model.safetensors", "the repository has no model.safetensors (nor a sharded index)")
                }
                for shard in try Self.shards(ofIndex: index, model: id.description) where try file(shard) == nil {
                    throw missing(shard, "listed in model.safetensors.index.json but not in the repository")
                }
            }
            if Self.isHuggingFaceFormat(config) {
                do {
                    _ = try file("preprocessor_config.json")
                } catch is NotCached {
                    events(
                        .warning(
                            "\(id): preprocessor_config.json is not in the cache; the image processor's defaults are assumed"))
                }
            }
        } catch let notCached as NotCached {
            let why = settings.offline ? "HF_HUB_OFFLINE is set: nothing is downloaded" : "the Hub could not be asked"
            throw ViTError.hub(
                model: id.description, file: notCached.file,
                reason: "not in the Hugging Face cache (\(cache.snapshotFolder(repository, commit: commit))), and \(why)")
        }
        return cache.snapshotFolder(repository, commit: commit)
    }

    /// Whether the repository has a file at `commit` (the cache first, then a metadata request).
    private func exists(_ repository: String, commit: String, filename: String, online: Bool) throws -> Bool {
        if cache.cachedFile(repository, commit: commit, filename: filename) != nil { return true }
        if cache.isKnownMissing(repository, commit: commit, filename: filename) || !online { return false }
        do {
            _ = try downloader.metadata(repository, revision: commit, filename: filename)
            return true
        } catch let failure as HubFailure where failure.isEntryNotFound {
            cache.recordMissing(repository, commit: commit, filename: filename)
            return false
        }
    }

    /// The shard files a `model.safetensors.index.json` names (its `weight_map` values), each validated.
    static func shards(ofIndex path: String, model: String) throws -> [String] {
        let data = try FileIO.read(path, limit: 64 << 20)
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let map = object["weight_map"] as? [String: Any]
        else { throw ViTError.invalidConfiguration(path: path, reason: "no 'weight_map' object") }
        var names = Set<String>()
        for (tensor, value) in map {
            guard let name = value as? String else {
                throw ViTError.invalidConfiguration(path: path, reason: "weight_map['\(tensor.forMessage)'] is not a file name")
            }
            try HubModelID.validateFilename(name)
            names.insert(name)
        }
        guard !names.isEmpty else { throw ViTError.invalidConfiguration(path: path, reason: "weight_map is empty") }
        return names.sorted()
    }

    /// A Hugging Face (transformers) config has `model_type` / `architectures`; a timm one has `architecture`.
    static func isHuggingFaceFormat(_ configPath: String) -> Bool {
        guard let data = try? FileIO.read(configPath, limit: 16 << 20),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return false }
        return object["architecture"] == nil && (object["model_type"] != nil || object["architectures"] != nil)
    }

    /// The token never appears in a message, whatever a server echoes back.
    private func scrub(_ text: String) -> String {
        guard let token = settings.token, !token.isEmpty else { return text }
        return text.replacingOccurrences(of: token, with: "<HF_TOKEN>")
    }

    private func scrub(_ error: ViTError) -> ViTError {
        guard let token = settings.token, !token.isEmpty, let text = error.errorDescription, text.contains(token) else {
            return error
        }
        return .invalidArgument(scrub(text))
    }
}
