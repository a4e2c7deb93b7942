import Foundation
import Testing

@testable import ViTKit
@testable import vitclassify

/// Hub models by name, against `tools/fake_hub.py` on 127.0.0.1 (a random port): nothing here reaches the internet.
@Suite("Hugging Face Hub")
struct HubTests {
    static let timmModel = Fixtures.models.first { $0.name == "timm_vit" }!
    static let hfModel = Fixtures.models.first { $0.name == "hf_vit" }!

    /// The files of a fixture model folder, by name.
    static func files(_ model: Fixtures.Model) -> [String: String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: model.dir)) ?? []
        return Dictionary(uniqueKeysWithValues: names.map { ($0, model.dir + "/" + $0) })
    }

    static func sha256(ofFile path: String) throws -> String {
        let digest = try ContentCheck.sha256(String(repeating: "0", count: 64)).digest(ofFileAt: path)
        return try #require(digest)
    }

    // MARK: Names and settings (no server)

    @Test("Model ids, revisions and file names are parsed and validated")
    func parsing() throws {
        let plain = try HubModelID(parsing: "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k")
        #expect(plain.repository == "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k" && plain.revision == "main")
        let timm = try HubModelID(parsing: "hf-hub:timm/vit_tiny_patch16_224.augreg_in21k@v1.0")
        #expect(timm.repository == "timm/vit_tiny_patch16_224.augreg_in21k" && timm.revision == "v1.0")
        let pr = try HubModelID(parsing: "google/vit-base-patch16-224@refs/pr/12")
        #expect(pr.revision == "refs/pr/12" && !pr.revisionIsCommit)
        #expect(try HubModelID(parsing: "a/b@" + String(repeating: "ab12", count: 10)).revisionIsCommit)
        for bad in [
            "a/b/c", "/a/b", "a/..", "../a/b", "a--x/b", "a/b.git", "a/-b", "a/b.", "a/b c", "a/b@", "a/b@../../etc",
            "a/b@/etc", "a/b@x\ny", "a/b@x//y", "a/b@x\\y", "hf-hub:b", "a/" + String(repeating: "x", count: 97),
        ] {
            #expect(throws: ViTError.self, "\(bad)") { try HubModelID(parsing: bad) }
        }
        for bad in ["../x", "/etc/passwd", "a/../b", "a\\b", "", "a//b", "./a", "C:x"] {
            #expect(throws: ViTError.self, "\(bad)") { try HubModelID.validateFilename(bad) }
        }
        try HubModelID.validateFilename("model-00001-of-00002.safetensors")
        try HubModelID.validateFilename("sub/folder/config.json")
        // A path-looking value is never sent to the Hub.
        for path in ["weights/model.safetensors", "./a/b", "/a/b", "~/a", "a", "a/b/c", "x/config.json"] {
            #expect(!HubModelID.looksLikeID(path), "\(path)")
        }
        for id in ["timm/vit_tiny", "hf-hub:timm/vit_tiny", "google/vit-base-patch16-224@main"] {
            #expect(HubModelID.looksLikeID(id), "\(id)")
        }
    }

    @Test("Settings come from the same environment variables as huggingface_hub")
    func settings() {
        var s = HubSettings(environment: ["HOME": "/home/u"])
        #expect(s.cacheDirectory == "/home/u/.cache/huggingface/hub" && s.endpoint == "https://huggingface.co")
        #expect(s.token == nil && !s.offline && s.metadataTimeout == 10)
        s = HubSettings(environment: ["HOME": "/home/u", "XDG_CACHE_HOME": "/xdg"])
        #expect(s.cacheDirectory == "/xdg/huggingface/hub")
        s = HubSettings(environment: ["HOME": "/home/u", "HF_HOME": "~/hf", "XDG_CACHE_HOME": "/xdg"])
        #expect(s.cacheDirectory == "/home/u/hf/hub")
        s = HubSettings(environment: ["HF_HOME": "/hf", "HF_HUB_CACHE": "$ROOT/c", "ROOT": "/r", "HUGGINGFACE_HUB_CACHE": "/old"])
        #expect(s.cacheDirectory == "/r/c")
        s = HubSettings(environment: ["HF_HOME": "/hf", "HUGGINGFACE_HUB_CACHE": "/old"])
        #expect(s.cacheDirectory == "/old")
        s = HubSettings(environment: ["HF_ENDPOINT": "http://mirror.local:8080/", "HF_TOKEN": "t", "HF_HUB_OFFLINE": "yes"])
        #expect(s.endpoint == "http://mirror.local:8080" && s.token == "t" && s.offline)
        s = HubSettings(environment: ["HUGGING_FACE_HUB_TOKEN": "old", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_OFFLINE": ""])
        #expect(s.token == "old" && s.offline)
        #expect(!HubSettings(environment: ["HF_HUB_OFFLINE": "0"]).offline)
    }

    @Test("SHA-256 and git blob SHA-1 match known digests")
    func digests() throws {
        var sha = SHA256Digest()
        sha.update(Array("abc".utf8))
        #expect(sha.hexDigest() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var long = SHA256Digest()
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        for start in stride(from: 0, to: million.count, by: 999) {
            long.update(Array(million[start..<min(start + 999, million.count)]))
        }
        #expect(long.hexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        var sha1 = SHA1Digest()
        sha1.update(Array("blob 6\0hello\n".utf8))  // git hash-object of "hello\n"
        #expect(sha1.hexDigest() == "ce013625030ba8dba906f756967f9e9ca394464a")
        let config = Self.timmModel.dir + "/config.json"
        #expect(try Self.sha256(ofFile: Self.timmModel.dir + "/model.safetensors").count == 64)
        #expect(try ContentCheck(etag: String(repeating: "a", count: 40)).digest(ofFileAt: config)?.count == 40)
    }

    // MARK: Downloads from the local server

    @Test("First download: files in the huggingface_hub cache layout, then classified", .enabled(if: FakeHub.pythonAvailable, FakeHub.needs))
    func firstDownload() throws {
        let hub = try FakeHub(repos: [
            "tests/timm-vit": .init(files: Self.files(Self.timmModel)), "tests/hf-vit": .init(files: Self.files(Self.hfModel)),
        ])
        defer { hub.stop() }
        let image = Fixtures.images[0].file
        let remote = try CLI.run([image, "--model", "tests/timm-vit", "--format", "json"], environment: hub.environment())
        #expect(remote.status == 0, "\(remote.stderr)")
        let local = try CLI.run([image, "--model", Self.timmModel.dir, "--format", "json"])
        #expect(try Self.predictions(remote.stdout) == Self.predictions(local.stdout))
        #expect(remote.stderr.isEmpty, "\(remote.stderr)")  // not a terminal: no progress bar

        let inspect = try CLI.run(["inspect", "hf-hub:tests/hf-vit", "--format", "json"], environment: hub.environment())
        #expect(inspect.status == 0, "\(inspect.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: inspect.stdout) as? [String: Any])
        #expect(json["model"] as? String == "tests/hf-vit")
        #expect(json["format"] as? String == "huggingface")

        // The layout, file by file.
        for (repository, model) in [("tests/timm-vit", Self.timmModel), ("tests/hf-vit", Self.hfModel)] {
            let folder = hub.cache + "/" + HubCache.folderName(repository)
            let commit = try String(contentsOfFile: folder + "/refs/main", encoding: .utf8)
            #expect(HubModelID.isCommitHash(commit))
            let expected =
                repository == "tests/hf-vit"
                ? ["config.json", "model.safetensors", "preprocessor_config.json"] : ["config.json", "model.safetensors"]
            let snapshot = folder + "/snapshots/" + commit
            #expect(try FileManager.default.contentsOfDirectory(atPath: snapshot).sorted() == expected)
            for name in expected {
                let target = try FileManager.default.destinationOfSymbolicLink(atPath: snapshot + "/" + name)
                #expect(target.hasPrefix("../../blobs/"), "\(target)")
                #expect(Self.sameContent(snapshot + "/" + name, model.dir + "/" + name))
            }
            let weightsBlob = try FileManager.default.destinationOfSymbolicLink(atPath: snapshot + "/model.safetensors")
            #expect(weightsBlob == "../../blobs/" + (try Self.sha256(ofFile: model.dir + "/model.safetensors")))
            let blobs = try FileManager.default.contentsOfDirectory(atPath: folder + "/blobs")
            #expect(blobs.count == expected.count && !blobs.contains { $0.hasSuffix(".incomplete") })
            let locks = try FileManager.default.contentsOfDirectory(
                atPath: hub.cache + "/.locks/" + HubCache.folderName(repository))
            #expect(Set(locks) == Set(blobs.map { $0 + ".lock" }))
        }
        #expect(FileManager.default.fileExists(atPath: hub.cache + "/CACHEDIR.TAG"))
        // Every request went to the local server; LFS content through the redirect to the second ("CDN") port.
        let cdn = hub.requests().filter { $0.server == "cdn" }
        #expect(cdn.count == 2 && cdn.allSatisfy { $0.method == "GET" && $0.authorization == "none" })
    }

    @Test(
        "A cached model is used without downloading, and without the network (with a warning)",
        .enabled(if: FakeHub.pythonAvailable, FakeHub.needs))
    func cacheHit() throws {
        let hub = try FakeHub(repos: ["tests/timm-vit": .init(files: Self.files(Self.timmModel))])
        defer { hub.stop() }
        #expect(try CLI.run(["inspect", "tests/timm-vit"], environment: hub.environment()).status == 0)
        let before = hub.requests().count
        // Online: one metadata request tells the commit, whose snapshot is complete: nothing is downloaded.
        let again = try CLI.run(["inspect", "tests/timm-vit"], environment: hub.environment())
        #expect(again.status == 0 && again.stderr.isEmpty, "\(again.stderr)")
        let second = hub.requests().dropFirst(before)
        #expect(second.count == 1 && second.allSatisfy { $0.method == "HEAD" }, "\(second)")
        // The network gone: the snapshot the revision last resolved to, with a one-line warning.
        let offline = try CLI.run(["inspect", "tests/timm-vit"], environment: hub.environment(endpoint: "http://127.0.0.1:1"))
        #expect(offline.status == 0, "\(offline.stderr)")
        let lines = offline.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("warning: tests/timm-vit: config.json: cannot reach"), "\(offline.stderr)")
        #expect(lines.first?.contains("using the cached snapshot") == true)
        // A server error is a network failure too.
        let broken = try FakeHub(repos: ["tests/timm-vit": .init(files: Self.files(Self.timmModel), status: 503)])
        defer { broken.stop() }
        let failing = try CLI.run(["inspect", "tests/timm-vit"], environment: broken.environment(cache: hub.cache))
        #expect(failing.status == 0 && failing.stderr.contains("HTTP 503"), "\(failing.stderr)")
        // $VITCLASSIFY_MODEL may name a Hub model too.
        let viaEnvironment = try CLI.run(
            ["inspect", "--format", "json"], environment: hub.environment(extra: ["VITCLASSIFY_MODEL": "tests/timm-vit"]))
        #expect(viaEnvironment.status == 0, "\(viaEnvironment.stderr)")
        #expect(try JSONSerialization.jsonObject(with: viaEnvironment.stdout) as? [String: Any] != nil)
        #expect((try JSONSerialization.jsonObject(with: viaEnvironment.stdout) as? [String: Any])?["model"] as? String == "tests/timm-vit")
        // A commit hash whose snapshot is complete needs no request at all.
        let commit = try String(contentsOfFile: hub.cache + "/models--tests--timm-vit/refs/main", encoding: .utf8)
        let count = hub.requests().count
        #expect(try CLI.run(["inspect", "tests/timm-vit@" + commit], environment: hub.environment()).status == 0)
        #expect(hub.requests().count == count)
    }

    @Test("HF_HUB_OFFLINE=1 never touches the network", .enabled(if: FakeHub.pythonAvailable, FakeHub.needs))
    func offlineMode() throws {
        let hub = try FakeHub(repos: ["tests/timm-vit": .init(files: Self.files(Self.timmModel))])
        defer { hub.stop() }
        let missing = try CLI.run(["inspect", "tests/timm-vit"], environment: hub.environment(extra: ["HF_HUB_OFFLINE": "1"]))
        #expect(missing.status == 1)
        #expect(Self.oneLine(missing.stderr).contains("tests/timm-vit: not in the Hugging Face cache"), "\(missing.stderr)")
        #expect(missing.stderr.contains("HF_HUB_OFFLINE"))
        #expect(hub.requests().isEmpty)
        #expect(try CLI.run(["inspect", "tests/timm-vit"], environment: hub.environment()).status == 0)
        let count = hub.requests().count
        let cached = try CLI.run(["inspect", "tests/timm-vit"], environment: hub.environment(extra: ["HF_HUB_OFFLINE": "1"]))
        #expect(cached.status == 0 && cached.stderr.isEmpty, "\(cached.stderr)")
        #expect(hub.requests().count == count)
        // A revision never resolved online is not guessed.
        let other = try CLI.run(["inspect", "tests/timm-vit@v1"], environment: hub.environment(extra: ["HF_HUB_OFFLINE": "1"]))
        #expect(other.status == 1 && other.stderr.contains("tests/timm-vit@v1: not in the Hugging Face cache"))
    }

    @Test("A cut download resumes with a Range request, in the same run and in the next", .enabled(if: FakeHub.pythonAvailable, FakeHub.needs))
    func resume() throws {
        let weights = Self.timmModel.dir + "/model.safetensors"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: weights)[.size] as? Int)
        // The server drops the connection after 100,000 bytes, once: the same run asks for the rest.
        let hub = try FakeHub(repos: [
            "tests/timm-vit": .init(files: Self.files(Self.timmModel), faults: ["model.safetensors": ["cut_after": 100_000]])
        ])
        defer { hub.stop() }
        let run = try CLI.run(["inspect", "tests/timm-vit"], environment: hub.environment())
        #expect(run.status == 0, "\(run.stderr)")
        #expect(
            run.stderr.contains("warning: tests/timm-vit: model.safetensors:") && run.stderr.contains("resuming"), "\(run.stderr)"
        )
        let gets = hub.requests().filter { $0.server == "cdn" }
        #expect(gets.map(\.range) == [nil, "bytes=100000-"], "\(gets)")
        let snapshot = hub.snapshot("tests/timm-vit")
        #expect(Self.sameContent(snapshot + "/model.safetensors", weights))

        // An interrupted run left part of the file: the next one asks only for the rest.
        let second = try FakeHub(repos: ["tests/timm-vit": .init(files: Self.files(Self.timmModel))])
        defer { second.stop() }
        let blob = second.cache + "/models--tests--timm-vit/blobs/" + (try Self.sha256(ofFile: weights))
        try FileManager.default.createDirectory(
            atPath: second.cache + "/models--tests--timm-vit/blobs", withIntermediateDirectories: true)
        try Data(try Data(contentsOf: URL(fileURLWithPath: weights)).prefix(123_456)).write(
            to: URL(fileURLWithPath: blob + ".incomplete"))
        let resumed = try CLI.run(["inspect", "tests/timm-vit"], environment: second.environment())
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(second.requests().filter { $0.server == "cdn" }.map(\.range) == ["bytes=123456-"])
        #expect(Self.sameContent(blob, weights))
        #expect(!FileManager.default.fileExists(atPath: blob + ".incomplete"))

        // A server that ignores Range sends the whole file again: it replaces the partial one.
        let third = try FakeHub(repos: [
            "tests/timm-vit": .init(files: Self.files(Self.timmModel), faults: ["model.safetensors": ["no_range": true]])
        ])
        defer { third.stop() }
        let blob3 = third.cache + "/models--tests--timm-vit/blobs/" + (try Self.sha256(ofFile: weights))
        try FileManager.default.createDirectory(
            atPath: third.cache + "/models--tests--timm-vit/blobs", withIntermediateDirectories: true)
        try Data(repeating: 7, count: 5000).write(to: URL(fileURLWithPath: blob3 + ".incomplete"))
        #expect(try CLI.run(["inspect", "tests/timm-vit"], environment: third.environment()).status == 0)
        #expect(Self.sameContent(blob3, weights))
        #expect(size > 123_456)
    }

    @Test("Content that does not match its SHA-256 is refused and removed", .enabled(if: FakeHub.pythonAvailable, FakeHub.needs))
    func checksumMismatch() throws {
        let hub = try FakeHub(repos: [
            "tests/timm-vit": .init(files: Self.files(Self.timmModel), faults: ["model.safetensors": ["corrupt": true]])
        ])
        defer { hub.stop() }
        let run = try CLI.run(["inspect", "tests/timm-vit"], environment: hub.environment())
        #expect(run.status == 1)
        let line = Self.oneLine(run.stderr)
        #expect(line.hasPrefix("Error: tests/timm-vit: model.safetensors: SHA-256 mismatch (expected "), "\(line)")
        #expect(line.contains("the download was discarded"))
        let folder = hub.cache + "/models--tests--timm-vit"
        let blobs = try FileManager.default.contentsOfDirectory(atPath: folder + "/blobs")
        #expect(blobs.count == 1 && !blobs[0].hasSuffix(".incomplete"), "\(blobs)")  // config.json only
        #expect(!FileManager.default.fileExists(atPath: folder + "/refs/main"))  // no half model behind a ref
        let snapshots = try FileManager.default.contentsOfDirectory(atPath: folder + "/snapshots")
        #expect(
            try snapshots.allSatisfy {
                try FileManager.default.contentsOfDirectory(atPath: folder + "/snapshots/" + $0) == ["config.json"]
            })
    }

    @Test(
        "The token goes to the endpoint only, never to the storage host, and is never printed",
        .enabled(if: FakeHub.pythonAvailable, FakeHub.needs))
    func token() throws {
        let secret = "hf_TestSecret0123456789"
        let hub = try FakeHub(repos: ["tests/private": .init(files: Self.files(Self.timmModel), isPrivate: true)], token: secret)
        defer { hub.stop() }
        let anonymous = try CLI.run(["inspect", "tests/private"], environment: hub.environment())
        #expect(anonymous.status == 1)
        #expect(Self.oneLine(anonymous.stderr).contains("HTTP 401 RepoNotFound"), "\(anonymous.stderr)")
        #expect(anonymous.stderr.contains("set HF_TOKEN"))
        let wrong = try CLI.run(["inspect", "tests/private"], environment: hub.environment(extra: ["HF_TOKEN": secret + "x"]))
        #expect(wrong.status == 1 && !wrong.stderr.contains(secret) && wrong.stderr.contains("HF_TOKEN does not give access"))
        let requestsBefore = hub.requests().count
        let run = try CLI.run(
            ["inspect", "tests/private", "--format", "json"], environment: hub.environment(extra: ["HF_TOKEN": secret]))
        #expect(run.status == 0, "\(run.stderr)")
        for output in [run.stderr, String(decoding: run.stdout, as: UTF8.self), anonymous.stderr] {
            #expect(!output.contains(secret))
        }
        let requests = hub.requests().dropFirst(requestsBefore)
        #expect(requests.filter { $0.server == "hub" }.allSatisfy { $0.authorization == "token" })
        #expect(requests.contains { $0.server == "cdn" })
        #expect(requests.filter { $0.server == "cdn" }.allSatisfy { $0.authorization == "none" })
        // The library's own messages scrub it too, whatever a server sends back.
        let client = HubClient(
            settings: HubSettings(environment: [
                "HF_ENDPOINT": "http://127.0.0.1:1/" + secret, "HF_TOKEN": secret, "HF_HUB_CACHE": hub.cache + "-other",
            ]))
        let error = expectViTError { _ = try client.snapshot(for: HubModelID(parsing: "tests/private")) }
        #expect(error?.errorDescription?.contains(secret) == false)
        // A malformed endpoint is a one-line error, not a crash.
        let malformed = HubClient(settings: HubSettings(environment: ["HF_ENDPOINT": "not a url", "HF_HUB_CACHE": hub.cache + "-x"]))
        let endpointError = expectViTError { _ = try malformed.snapshot(for: HubModelID(parsing: "tests/private")) }
        #expect(endpointError?.errorDescription?.contains("HF_ENDPOINT 'not a url' is not an http:// or https:// URL") == true)
    }

    @Test(
        "HTTP errors are one line naming the model, the file and the status", .enabled(if: FakeHub.pythonAvailable, FakeHub.needs),
        arguments: [404, 401, 500])
    func httpErrors(status: Int) throws {
        var files = Self.files(Self.timmModel)
        if status == 404 { files["config.json"] = nil }
        let hub = try FakeHub(repos: ["tests/model": .init(files: files, status: status == 500 ? 500 : nil)])
        defer { hub.stop() }
        let id = status == 401 ? "tests/nonexistent" : "tests/model"
        let run = try CLI.run(["inspect", id], environment: hub.environment())
        #expect(run.status == 1)
        let line = Self.oneLine(run.stderr)
        #expect(line.hasPrefix("Error: \(id): config.json: HTTP \(status) "), "\(line)")
        #expect(line.contains("http://127.0.0.1:\(hub.port)/\(id)/resolve/main/config.json"))
        let reason = [404: "no such file at this revision", 401: "no such repository", 500: "server error"][status]!
        #expect(line.contains(reason), "\(line)")
        // A revision that does not exist: 404 RevisionNotFound.
        if status == 404 {
            let revision = try CLI.run(["inspect", "tests/model@nope"], environment: hub.environment())
            #expect(Self.oneLine(revision.stderr).contains("HTTP 404 RevisionNotFound"), "\(revision.stderr)")
        }
    }

    @Test(
        "A repository with only pytorch_model.bin gets a clear error; pickles are not loaded",
        .enabled(if: FakeHub.pythonAvailable, FakeHub.needs))
    func pickleOnly() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vit-hub-pickle-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let pickle = directory.appendingPathComponent("pytorch_model.bin").path
        try Data("PK\u{3}\u{4} not really a pickle".utf8).write(to: URL(fileURLWithPath: pickle))
        let hub = try FakeHub(repos: [
            "tests/pickle": .init(files: ["config.json": Self.timmModel.dir + "/config.json", "pytorch_model.bin": pickle])
        ])
        defer { hub.stop() }
        let run = try CLI.run(["inspect", "tests/pickle"], environment: hub.environment())
        #expect(run.status == 1)
        let line = Self.oneLine(run.stderr)
        #expect(
            line.hasPrefix(
                "Error: tests/pickle: pytorch_model.bin: the repository has PyTorch pickle weights but no model.safetensors"),
            "\(line)")
        // The pickle was never downloaded.
        #expect(!hub.requests().contains { $0.path.contains("pytorch_model.bin") && $0.method == "GET" })
    }

    @Test("Sharded safetensors: the index and every shard are downloaded and loaded", .enabled(if: FakeHub.pythonAvailable, FakeHub.needs))
    func sharded() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vit-hub-shards-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = try Self.writeShards(of: Self.hfModel, into: directory)
        let hub = try FakeHub(repos: ["tests/sharded": .init(files: files)])
        defer { hub.stop() }
        let run = try CLI.run(["inspect", "tests/sharded", "--format", "json"], environment: hub.environment())
        #expect(run.status == 0, "\(run.stderr)")
        let snapshot = hub.snapshot("tests/sharded")
        #expect(try FileManager.default.contentsOfDirectory(atPath: snapshot).sorted() == files.keys.sorted())
        // Same logits as the single-file checkpoint.
        let image = Fixtures.images[0].file
        let sharded = try CLI.run([image, "--model", "tests/sharded", "--format", "json"], environment: hub.environment())
        let single = try CLI.run([image, "--model", Self.hfModel.dir, "--format", "json"])
        #expect(sharded.status == 0, "\(sharded.stderr)")
        #expect(try Self.predictions(sharded.stdout) == Self.predictions(single.stdout))

        // A shard name that would leave the snapshot folder is refused before anything is written for it.
        let evil = directory.appendingPathComponent("evil")
        try FileManager.default.createDirectory(at: evil, withIntermediateDirectories: true)
        let index = evil.appendingPathComponent("model.safetensors.index.json").path
        try Data(#"{"metadata": {}, "weight_map": {"a": "../../../escape.safetensors"}}"#.utf8).write(
            to: URL(fileURLWithPath: index))
        let bad = try FakeHub(repos: [
            "tests/evil": .init(files: ["config.json": Self.hfModel.dir + "/config.json", "model.safetensors.index.json": index])
        ])
        defer { bad.stop() }
        let refused = try CLI.run(["inspect", "tests/evil"], environment: bad.environment())
        #expect(refused.status == 1 && Self.oneLine(refused.stderr).contains("'..' path segments"), "\(refused.stderr)")
        #expect(!bad.requests().contains { $0.path.contains("escape") })
    }

    @Test(
        "Two processes downloading the same model at once: one downloads, the other waits, both succeed",
        .enabled(if: FakeHub.pythonAvailable, FakeHub.needs))
    func concurrentDownloads() throws {
        let hub = try FakeHub(repos: [
            "tests/timm-vit": .init(files: Self.files(Self.timmModel), faults: ["model.safetensors": ["delay_per_chunk": 0.08]])
        ])
        defer { hub.stop() }
        let outcomes = LockedBox<[CLI.Outcome]>([])
        let group = DispatchGroup()
        for _ in 0..<2 {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                if let outcome = try? CLI.run(["inspect", "tests/timm-vit", "--format", "json"], environment: hub.environment()) {
                    outcomes.withValue { $0.append(outcome) }
                }
            }
        }
        group.wait()
        #expect(outcomes.value.count == 2)
        for outcome in outcomes.value { #expect(outcome.status == 0, "\(outcome.stderr)") }
        let weights = Self.timmModel.dir + "/model.safetensors"
        #expect(hub.requests().filter { $0.server == "cdn" }.count == 1)
        let blobs = hub.cache + "/models--tests--timm-vit/blobs"
        #expect(Self.sameContent(blobs + "/" + (try Self.sha256(ofFile: weights)), weights))
        #expect(try !FileManager.default.contentsOfDirectory(atPath: blobs).contains { $0.contains("incomplete") })
    }

    @Test("Invalid ids and revisions are refused before any request", .enabled(if: FakeHub.pythonAvailable, FakeHub.needs))
    func invalidIDs() throws {
        let hub = try FakeHub(repos: [:])
        defer { hub.stop() }
        for model in ["tests/model@../../etc", "hf-hub:a/b/c", "hf-hub:tests--x/y"] {
            let run = try CLI.run(["inspect", model], environment: hub.environment())
            #expect(run.status == 1)
            #expect(Self.oneLine(run.stderr).contains("not a Hugging Face model id"), "\(run.stderr)")
        }
        #expect(hub.requests().isEmpty)
    }

    // MARK: Cross-checks with the real huggingface_hub

    @Test(
        "huggingface_hub's hf_hub_download fills a cache that vitclassify then uses offline",
        .enabled(
            if: FakeHub.pythonAvailable && (HubPython.required || HubPython.available),
            "needs huggingface_hub (python3 -m pip install huggingface_hub); set VITCLASSIFY_REQUIRE_HUGGINGFACE_HUB=1 to fail instead of skipping"
        ))
    func pythonFillsCache() throws {
        try #require(
            HubPython.available, "VITCLASSIFY_REQUIRE_HUGGINGFACE_HUB is set, but no python3 here imports huggingface_hub")
        let hub = try FakeHub(repos: ["tests/hf-vit": .init(files: Self.files(Self.hfModel))])
        defer { hub.stop() }
        let script = """
            import sys
            from huggingface_hub import hf_hub_download
            for name in ["config.json", "model.safetensors", "preprocessor_config.json"]:
                print(hf_hub_download("tests/hf-vit", name))
            """
        let python = try HubPython.run(script, environment: hub.environment())
        #expect(python.status == 0, "\(python.stderr)")
        let paths = python.stdout.split(separator: "\n").map(String.init)
        #expect(
            paths.count == 3 && paths.allSatisfy { $0.hasPrefix(hub.cache + "/models--tests--hf-vit/snapshots/") }, "\(paths)")
        let count = hub.requests().count
        let run = try CLI.run(
            ["inspect", "tests/hf-vit", "--format", "json"], environment: hub.environment(extra: ["HF_HUB_OFFLINE": "1"]))
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.isEmpty, "\(run.stderr)")
        #expect(hub.requests().count == count)
        let json = try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [String: Any])
        #expect((json["path"] as? String)?.hasPrefix(hub.cache) == true)
        #expect(json["preprocessing"] as? String == (try Self.inspectJSON(Self.hfModel.dir))["preprocessing"] as? String)
    }

    @Test(
        "huggingface_hub finds what vitclassify downloaded (try_to_load_from_cache, scan_cache_dir, offline hf_hub_download)",
        .enabled(
            if: FakeHub.pythonAvailable && (HubPython.required || HubPython.available),
            "needs huggingface_hub (python3 -m pip install huggingface_hub); set VITCLASSIFY_REQUIRE_HUGGINGFACE_HUB=1 to fail instead of skipping"
        ))
    func pythonReadsCache() throws {
        try #require(
            HubPython.available, "VITCLASSIFY_REQUIRE_HUGGINGFACE_HUB is set, but no python3 here imports huggingface_hub")
        let hub = try FakeHub(repos: ["tests/hf-vit": .init(files: Self.files(Self.hfModel), tags: ["v1"])])
        defer { hub.stop() }
        #expect(try CLI.run(["inspect", "tests/hf-vit@v1"], environment: hub.environment()).status == 0)
        let script = """
            import hashlib, sys
            from huggingface_hub import try_to_load_from_cache, hf_hub_download, scan_cache_dir
            for name in ["config.json", "model.safetensors", "preprocessor_config.json"]:
                path = try_to_load_from_cache("tests/hf-vit", name, revision="v1")
                assert isinstance(path, str), (name, path)
                assert path == hf_hub_download("tests/hf-vit", name, revision="v1"), name
                print(name, hashlib.sha256(open(path, "rb").read()).hexdigest())
            info = scan_cache_dir()
            assert not info.warnings, info.warnings
            (repo,) = info.repos
            assert repo.repo_id == "tests/hf-vit" and repo.repo_type == "model", repo
            (revision,) = repo.revisions
            assert revision.refs == frozenset({"v1"}), revision.refs
            assert sorted(f.file_name for f in revision.files) == ["config.json", "model.safetensors", "preprocessor_config.json"]
            print("ok", revision.commit_hash)
            """
        let python = try HubPython.run(script, environment: hub.environment(extra: ["HF_HUB_OFFLINE": "1"]))
        #expect(python.status == 0, "\(python.stderr)")
        let lines = python.stdout.split(separator: "\n").map(String.init)
        for name in ["config.json", "model.safetensors", "preprocessor_config.json"] {
            #expect(lines.contains("\(name) \(try Self.sha256(ofFile: Self.hfModel.dir + "/" + name))"), "\(lines)")
        }
        #expect(lines.last?.hasPrefix("ok ") == true)
    }

    @Test(
        "vitclassify waits for a lock that huggingface_hub holds on the same blob",
        .enabled(
            if: FakeHub.pythonAvailable && (HubPython.required || HubPython.available),
            "needs huggingface_hub (python3 -m pip install huggingface_hub); set VITCLASSIFY_REQUIRE_HUGGINGFACE_HUB=1 to fail instead of skipping"
        ))
    func pythonLockInterop() throws {
        try #require(
            HubPython.available, "VITCLASSIFY_REQUIRE_HUGGINGFACE_HUB is set, but no python3 here imports huggingface_hub")
        let hub = try FakeHub(repos: ["tests/timm-vit": .init(files: Self.files(Self.timmModel))])
        defer { hub.stop() }
        let etag = try Self.sha256(ofFile: Self.timmModel.dir + "/model.safetensors")
        let lock = hub.cache + "/.locks/models--tests--timm-vit/\(etag).lock"
        let ready = hub.cache + "/locked", release = hub.cache + "/release"
        // huggingface_hub's own lock helper holds the blob's lock, as during its download, until told to let go.
        let script = """
            import os, sys, time
            from huggingface_hub.utils import WeakFileLock
            os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
            with WeakFileLock(sys.argv[1]):
                open(sys.argv[2], "w").close()
                deadline = time.time() + 60
                while not os.path.exists(sys.argv[3]) and time.time() < deadline:
                    time.sleep(0.02)
            """
        let holder = try HubPython.start(script, arguments: [lock, ready, release], environment: hub.environment())
        defer {
            FileManager.default.createFile(atPath: release, contents: nil)
            holder.waitUntilExit()
        }
        let start = Date()
        while !FileManager.default.fileExists(atPath: ready) && Date().timeIntervalSince(start) < 30 { usleep(20_000) }
        let run = try CLI.run(["inspect", "tests/timm-vit"], environment: hub.environment()) { _ in
            // Once vitclassify has config.json, it is about to wait for the weights' lock: hold it 3.5 s more.
            let config = hub.cache + "/models--tests--timm-vit/snapshots"
            let begin = Date()
            while Date().timeIntervalSince(begin) < 30,
                ((try? FileManager.default.subpathsOfDirectory(atPath: config)) ?? []).allSatisfy({ !$0.hasSuffix("config.json") })
            {
                usleep(20_000)
            }
            Thread.sleep(forTimeInterval: 3.5)
            FileManager.default.createFile(atPath: release, contents: nil)
        }
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("another process is downloading model.safetensors"), "\(run.stderr)")
        #expect(Self.sameContent(hub.snapshot("tests/timm-vit") + "/model.safetensors", Self.timmModel.dir + "/model.safetensors"))
    }

    // MARK: Helpers

    static func oneLine(_ text: String) -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
        #expect(lines.count == 1, "expected one line: \(text)")
        return lines.first.map(String.init) ?? ""
    }

    /// "index label logit" of each prediction in `--format json` output.
    static func predictions(_ output: Data) throws -> [String] {
        let object = try #require(try JSONSerialization.jsonObject(with: output) as? [String: Any])
        let predictions = try #require(object["predictions"] as? [[String: Any]])
        #expect(!predictions.isEmpty)
        return predictions.map { "\($0["index"] ?? "?") \($0["label"] ?? "?") \($0["logit"] ?? "?")" }
    }

    /// Whether two files (symlinks followed) hold the same bytes.
    static func sameContent(_ a: String, _ b: String) -> Bool {
        guard let x = FileManager.default.contents(atPath: a), let y = FileManager.default.contents(atPath: b) else {
            return false
        }
        return x == y
    }

    static func inspectJSON(_ model: String) throws -> [String: Any] {
        let run = try CLI.run(["inspect", model, "--format", "json"])
        return try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [String: Any])
    }

    /// Splits a fixture checkpoint into two safetensors shards plus `model.safetensors.index.json`, as
    /// `save_pretrained(max_shard_size=…)` writes them.
    static func writeShards(of model: Fixtures.Model, into directory: URL) throws -> [String: String] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let data = try Data(contentsOf: URL(fileURLWithPath: model.dir + "/model.safetensors"))
        let headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
        let header = try #require(
            try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        let body = data.subdata(in: (8 + headerLength)..<data.count)
        let names = header.keys.filter { $0 != "__metadata__" }.sorted()
        var weightMap: [String: String] = [:]
        var files: [String: String] = [:]
        for (index, part) in [names.prefix(names.count / 2), names.suffix(from: names.count / 2)].enumerated() {
            let shard = "model-0000\(index + 1)-of-00002.safetensors"
            var entries: [String: Any] = ["__metadata__": ["format": "pt"]]
            var bytes = Data()
            for name in part {
                let entry = header[name] as! [String: Any]
                let offsets = entry["data_offsets"] as! [Int]
                entries[name] = [
                    "dtype": entry["dtype"]!, "shape": entry["shape"]!,
                    "data_offsets": [bytes.count, bytes.count + offsets[1] - offsets[0]],
                ]
                bytes.append(body.subdata(in: offsets[0]..<offsets[1]))
                weightMap[name] = shard
            }
            var json = try JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys])
            while json.count % 8 != 0 { json.append(0x20) }
            var file = Data()
            withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
            file.append(json)
            file.append(bytes)
            let path = directory.appendingPathComponent(shard).path
            try file.write(to: URL(fileURLWithPath: path))
            files[shard] = path
        }
        let index = directory.appendingPathComponent("model.safetensors.index.json").path
        try JSONSerialization.data(
            withJSONObject: ["metadata": ["total_size": body.count], "weight_map": weightMap], options: [.sortedKeys]
        )
        .write(to: URL(fileURLWithPath: index))
        files["model.safetensors.index.json"] = index
        for name in ["config.json", "preprocessor_config.json"] { files[name] = model.dir + "/" + name }
        return files
    }
}

/// `tools/fake_hub.py`, started for one test on 127.0.0.1 with ports the system picks, and stopped by it (or when
/// the test process goes away: the server exits when its standard input closes).
final class FakeHub: @unchecked Sendable {
    struct Repo {
        var files: [String: String]
        var faults: [String: [String: Any]] = [:]
        var isPrivate = false
        var status: Int? = nil
        var tags: [String] = []
    }

    struct Request: Decodable, CustomStringConvertible {
        let server: String
        let method: String
        let path: String
        let range: String?
        let authorization: String
        var description: String { "\(server) \(method) \(path) range=\(range ?? "-") auth=\(authorization)" }
    }

    /// Why a test that needs the server is skipped.
    static let needs: Comment = "needs python3 to run tools/fake_hub.py"

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tools/fake_hub.py").path

    /// Whether `python3` runs here (the server needs nothing else).
    static let pythonAvailable: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import http.server"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0 && FileManager.default.fileExists(atPath: script)
    }()

    let directory: URL
    let cache: String
    let port: Int
    let endpoint: String
    private let process: Process
    private let input: Pipe
    private let log: String

    init(repos: [String: Repo], token: String? = nil) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vit-hub-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        cache = directory.appendingPathComponent("cache").path
        log = directory.appendingPathComponent("requests.jsonl").path
        var manifest: [String: Any] = [:]
        for (id, repo) in repos {
            var spec: [String: Any] = ["files": repo.files, "faults": repo.faults, "private": repo.isPrivate, "tags": repo.tags]
            if let status = repo.status { spec["status"] = status }
            manifest[id] = spec
        }
        let manifestPath = directory.appendingPathComponent("manifest.json")
        try JSONSerialization.data(withJSONObject: ["repos": manifest]).write(to: manifestPath)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            ["python3", Self.script, "--manifest", manifestPath.path, "--log", log] + (token.map { ["--token", $0] } ?? [])
        input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        var text = ""
        while !text.contains("\n") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let words = text.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard words.count == 3, words[0] == "PORT", let port = Int(words[1]) else {
            process.terminate()
            throw ViTError.invalidArgument("fake_hub.py did not start: '\(text)'")
        }
        self.port = port
        endpoint = "http://127.0.0.1:\(port)"
    }

    /// The environment a vitclassify (or huggingface_hub) run needs to use this server and a cache of its own.
    func environment(endpoint: String? = nil, cache: String? = nil, extra: [String: String] = [:]) -> [String: String] {
        [
            "HF_ENDPOINT": endpoint ?? self.endpoint, "HF_HUB_CACHE": cache ?? self.cache,
            "HF_HOME": directory.appendingPathComponent("home").path, "HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "",
            "HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "", "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1", "VITCLASSIFY_MODEL": "",
        ].merging(extra) { $1 }
    }

    /// The snapshot folder `refs/main` of a repository points at.
    func snapshot(_ repository: String) -> String {
        let folder = cache + "/" + HubCache.folderName(repository)
        let commit = (try? String(contentsOfFile: folder + "/refs/main", encoding: .utf8)) ?? "?"
        return folder + "/snapshots/" + commit
    }

    func requests() -> [Request] {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A Python interpreter with `huggingface_hub`, for the cross-checks: `$VITCLASSIFY_HUB_PYTHON`, else `python3`,
/// else the repository's `.venv-tools/bin/python` (the developers' tool environment).
enum HubPython {
    /// Set in CI once it installs huggingface_hub: a missing package then fails the tests instead of skipping them.
    static let required = ProcessInfo.processInfo.environment["VITCLASSIFY_REQUIRE_HUGGINGFACE_HUB"].map { !$0.isEmpty } ?? false

    static let interpreter: String? = {
        let repository = URL(fileURLWithPath: FakeHub.script).deletingLastPathComponent().deletingLastPathComponent().path
        var candidates = ["python3", repository + "/.venv-tools/bin/python"]
        if let chosen = ProcessInfo.processInfo.environment["VITCLASSIFY_HUB_PYTHON"], !chosen.isEmpty { candidates = [chosen] }
        return candidates.first { candidate in
            guard let process = try? start("import huggingface_hub", interpreter: candidate, environment: [:]) else {
                return false
            }
            process.waitUntilExit()
            return process.terminationStatus == 0
        }
    }()

    static var available: Bool { interpreter != nil }

    static func start(
        _ script: String, interpreter: String? = nil, arguments: [String] = [], environment: [String: String],
        output: FileHandle? = nil, errors: FileHandle? = nil
    ) throws -> Process {
        let process = Process()
        let python = interpreter ?? Self.interpreter ?? "python3"
        if python.contains("/") {
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = ["-c", script] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [python, "-c", script] + arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = output ?? FileHandle.nullDevice
        process.standardError = errors ?? FileHandle.nullDevice
        try process.run()
        return process
    }

    static func run(_ script: String, environment: [String: String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("vit-hubpy-\(UUID().uuidString)")
        let out = base.appendingPathExtension("out"), err = base.appendingPathExtension("err")
        defer { for url in [out, err] { try? FileManager.default.removeItem(at: url) } }
        for url in [out, err] { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        let process = try start(
            script, environment: environment, output: try FileHandle(forWritingTo: out), errors: try FileHandle(forWritingTo: err)
        )
        process.waitUntilExit()
        return (
            process.terminationStatus, try String(contentsOf: out, encoding: .utf8), try String(contentsOf: err, encoding: .utf8)
        )
    }
}
