import Foundation
import Testing

@testable import ViTKit

/// Class names for checkpoints whose config has none: the list timm infers from the class count.
@Suite("Built-in labels")
struct LabelTests {
    /// The timm_vit fixture with its head resized to `classes` rows and its label names removed.
    static func checkpoint(classes: Int, in directory: URL) throws -> String {
        let model = Fixtures.models.first { $0.name == "timm_vit" }!
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var config = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: model.dir + "/config.json")))
                as? [String: Any])
        config["label_names"] = nil
        config["num_classes"] = classes
        var args = try #require(config["model_args"] as? [String: Any])
        args["num_classes"] = classes
        config["model_args"] = args
        try JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("config.json"))
        let source = try SafeTensorsFile(path: model.dir + "/model.safetensors")
        var tensors: [(String, [Int], [Float])] = []
        for info in source.tensors.values.sorted(by: { $0.name < $1.name }) {
            switch info.name {
            case "head.weight":
                tensors.append(
                    (info.name, [classes, info.shape[1]], (0..<(classes * info.shape[1])).map { Float($0 % 97) * 1e-3 }))
            case "head.bias": tensors.append((info.name, [classes], [Float](repeating: 0, count: classes)))
            default: tensors.append((info.name, info.shape, try source.floats(info.name)))
            }
        }
        var header: [String: Any] = [:]
        var body = Data()
        for (name, shape, values) in tensors {
            header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [body.count, body.count + 4 * values.count]]
            values.withUnsafeBytes { body.append(contentsOf: $0) }
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var file = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        file.append(body)
        try file.write(to: directory.appendingPathComponent("model.safetensors"))
        return directory.path
    }

    @Test(
        "ImageNet-21k, -12k and -21K-P names are built in, as timm names them",
        arguments: [
            (21843, "ImageNet-21k", ["organism, being", "submarine, pigboat, sub, U-boat", "knothole"]),
            (11821, "ImageNet-12k", ["benthos", "rain stick", "knothole"]),
            (11221, "ImageNet-21K-P", ["benthos", "quad, quadrangle", "knothole"]),
        ])
    func imageNet21kFamily(classes: Int, dataset: String, expected: [String]) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vit-labels-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let classifier = try Classifier(modelPath: try Self.checkpoint(classes: classes, in: directory))
        let labels = classifier.info.labels
        #expect(labels.count == classes)
        #expect([labels[0], labels[classes / 2], labels[classes - 1]] == expected)
        #expect(
            classifier.info.labelSource.hasPrefix(dataset)
                && classifier.info.labelSource.contains("inferred from the class count"))
        let inspect = try CLI.run(["inspect", directory.path])
        #expect(String(decoding: inspect.stdout, as: UTF8.self).contains("classes:        \(classes), labels: \(dataset) ("))
    }

    @Test("Other counts without names get class indices")
    func otherCounts() throws {
        let (labels, source) = try resolveLabels(nil, count: 21842, configPath: "config.json")
        #expect(labels.first == "class_0" && labels.last == "class_21841" && source.hasPrefix("generated"))
        let full = try #require(try BuiltInLabels.imageNet(count: 21843)).labels
        #expect(full.count == 21843 && Set(full).count > 21000)
    }

    @Test("ImageNet-1k names are built in, as timm names them")
    func imageNet1k() throws {
        let (labels, source) = try resolveLabels(nil, count: 1000, configPath: "config.json")
        #expect(labels.count == 1000 && labels[0] == "tench, Tinca tinca" && labels[999].hasPrefix("toilet tissue"))
        #expect(labels[134] == "crane" && labels[517] == "crane" && Set(labels).count == 999)
        #expect(source.hasPrefix("ImageNet-1k (built in"))
    }
}
