import Foundation
import Testing

@testable import ViTKit

/// Parity with timm (and transformers) for every ViT family beyond plain ViT/DeiT: one small random-weight checkpoint
/// per family (`tools/make_family_fixtures.py`, `Resources/fixtures/families`), each checked against the logits and
/// attention probabilities the reference library computed from the same file.
@Suite("Parity across the ViT families timm publishes")
struct FamilyParityTests {
    static let root = Fixtures.root.appendingPathComponent("families")

    struct Family: Sendable, CustomTestStringConvertible {
        let name: String
        let dir: String
        let cases: [String]
        var testDescription: String { name }
    }

    nonisolated(unsafe) static let manifest: [String: Any] = {
        let data = try! Data(contentsOf: root.appendingPathComponent("manifest.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    static let all: [Family] =
        (manifest["families"] as! [[String: Any]]).map {
            Family(name: $0["name"] as! String, dir: root.appendingPathComponent($0["dir"] as! String).path, cases: $0["cases"] as! [String])
        }
        // tools/make_beit_shared_fixture.py: one relative position bias shared by every block.
        + [Family(name: "beit_shared", dir: root.appendingPathComponent("beit_shared").path, cases: ["a_45x37", "b_36x52"])]

    /// The families the engine runs (the others must be refused with one line: ``refused``).
    static let supported: Set<String> = [
        "clip", "clip_quickgelu", "rpn", "beit3", "dinov2_reg", "swiglu_packed", "beit", "beitv2", "eva02", "eva02_swiglu",
        "rope_naver", "rope_naver_ape", "rope_sbb", "rope_mixed", "siglip_map", "pe_core", "hf_beit", "hf_dinov2", "hf_dinov2_reg", "beit_shared",
    ]

    static var runs: [Family] { all.filter { supported.contains($0.name) } }
    static var refusedFamilies: [Family] { all.filter { !supported.contains($0.name) } }

    @Test("logits and attention equal the reference library's", arguments: runs)
    func parity(f: Family) throws {
        let classifier = try Classifier(modelPath: f.dir)
        let reference = try SafeTensorsFile(path: f.dir + "/reference.safetensors")
        for image in f.cases {
            let (logits, recorder) = classifier.logits(
                preprocessed: [try reference.floats("pixel_values.\(image)")], attention: true)
            let expected = try reference.floats("logits.\(image)")
            let difference = maxAbsDifference(logits[0], expected)
            #expect(difference <= 1e-4, "\(image): max logit difference \(difference)")
            #expect(topIndices(logits[0], 5) == topIndices(expected, 5))
            let attention = recorder!.attention(image: 0).flatMap { $0.flatMap { $0 } }
            let expectedAttention = try reference.floats("attentions.\(image)")
            #expect(maxAbsDifference(attention, expectedAttention) <= 1e-5, "\(image): attention")
            // Rollout and the last layer's maps, by tools/make_fixtures.py's definitions (class-token row, or the mean
            // of the patch queries without a class token; registers are prefix tokens, left out of the grid).
            guard reference.tensors["rollout.\(image).mean.0"] != nil else { continue }
            let maps = AttentionMaps(probabilities: recorder!.attention(image: 0), architecture: classifier.model.architecture)
            for (fusion, discard) in [("mean", "0"), ("mean", "0.5"), ("max", "0"), ("min", "0")] {
                let ours = try maps.rollout(fusion: HeadSelection(fusion)!, discardRatio: Double(discard)!)
                let expected = try reference.floats("rollout.\(image).\(fusion).\(discard)")
                #expect(maxAbsDifference(ours, expected) <= 1e-5, "\(image): rollout \(fusion) \(discard)")
            }
            let last = try reference.floats("last.\(image)"), cells = maps.gridHeight * maps.gridWidth
            for h in 0..<maps.heads {
                let ours = try maps.map(.last, heads: .head(h))
                #expect(maxAbsDifference(ours, Array(last[(h * cells)..<((h + 1) * cells)])) <= 1e-5, "\(image): last, head \(h)")
            }
        }
    }

    @Test("BEiT at another input size: relative position bias tables resampled as timm does")
    func beitResized() throws {
        let folder = Self.root.appendingPathComponent("beit").path
        let reference = try SafeTensorsFile(path: folder + "/reference.resized.safetensors")
        let classifier = try Classifier(modelPath: folder, imageSize: 48)
        for image in ["a_45x37", "b_36x52"] {
            let (logits, _) = classifier.logits(preprocessed: [try reference.floats("pixel_values.\(image)")])
            let difference = maxAbsDifference(logits[0], try reference.floats("logits.\(image)"))
            #expect(difference <= 1e-4, "\(image): max logit difference \(difference)")
            // And the preprocessing at that size is timm's.
            let pixels = classifier.preprocess(try PNGDecoder.read(Self.root.appendingPathComponent("images/\(image).png").path))
            #expect(maxAbsDifference(pixels, try reference.floats("pixel_values.\(image)")) <= 1e-6)
        }
    }

    @Test("families not implemented are refused with one line naming what is missing", arguments: refusedFamilies)
    func refused(f: Family) throws {
        do {
            _ = try Classifier(modelPath: f.dir)
            Issue.record("\(f.name) loaded, but it is not in the supported list: add it there with its parity test")
        } catch let error as ViTError {
            let message = error.errorDescription ?? ""
            #expect(!message.contains("\n") && message.contains("not supported"), "\(message)")
        }
    }
}
