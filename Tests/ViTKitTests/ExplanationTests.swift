import Foundation
import Testing

@testable import ViTKit

/// The backward pass and the class-specific maps against PyTorch autograd in float64
/// (tools/make_explain_fixtures.py: timm and Hugging Face fixture checkpoints, every pre-norm variant).
@Suite("Class-specific explanations")
struct ExplanationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let model: String
        let dir: String
        let reference: String
        let image: String
        let targets: [Int]
        var testDescription: String { "\(model) \(image)" }
    }

    static let root = Fixtures.resources.appendingPathComponent("explain")

    nonisolated(unsafe) static let manifest: [String: Any] = {
        let data = try! Data(contentsOf: root.appendingPathComponent("manifest.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    static let cases: [Case] = (manifest["models"] as! [[String: Any]]).flatMap { m in
        (m["cases"] as! [[String: Any]]).map { c in
            Case(
                model: m["name"] as! String, dir: Fixtures.resources.appendingPathComponent(m["dir"] as! String).path,
                reference: root.appendingPathComponent(m["reference"] as! String).path, image: c["name"] as! String,
                targets: c["targets"] as! [Int])
        }
    }

    /// max |a − b| / max |b|.
    static func relativeError(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float {
        let scale = b.map { abs($0) }.max() ?? 0
        let diff = maxAbsDifference(Array(a), Array(b))
        return scale > 0 ? diff / scale : diff
    }

    static func run(_ c: Case) throws -> (Explainer, SafeTensorsFile, [Float], AttentionMaps, [ViTGradients]) {
        let explainer = try Explainer(classifier: try Classifier(modelPath: c.dir))
        let reference = try SafeTensorsFile(path: c.reference)
        let input = try reference.floats("pixel_values.\(c.image)")
        let (logits, maps, _, gradients) = explainer.gradients(preprocessed: input, targets: c.targets)
        #expect(maxAbsDifference(logits, try reference.floats("logits.\(c.image)")) <= 1e-4)
        return (explainer, reference, input, maps, gradients)
    }

    @Test("∂logit/∂A per layer and ∂logit/∂x per block within 1e-4 relative of PyTorch", arguments: cases)
    func gradients(c: Case) throws {
        let (_, reference, _, _, gradients) = try Self.run(c)
        var worst: (attention: Float, tokens: Float) = (0, 0)
        defer { print("\(c.testDescription): worst relative error ∂A \(worst.attention), ∂x \(worst.tokens)") }
        for (t, g) in zip(c.targets, gradients) {
            let attention = try reference.floats("attention_grad.\(c.image).\(t)")
            let tokens = try reference.floats("token_grad.\(c.image).\(t)")
            let layerSize = g.heads * g.tokens * g.tokens, tokenSize = g.tokens * g.embedDim
            #expect(attention.count == g.layers * layerSize)
            for l in 0..<g.layers {
                let range = (l * layerSize)..<((l + 1) * layerSize)
                let error = Self.relativeError(g.attention[range], attention[range])
                #expect(error <= 1e-4, "target \(t) layer \(l): attention gradient relative error \(error)")
                worst.attention = max(worst.attention, error)
                let tokenRange = (l * tokenSize)..<((l + 1) * tokenSize)
                let tokenError = Self.relativeError(g.tokenGradients[tokenRange], tokens[tokenRange])
                #expect(tokenError <= 1e-4, "target \(t) layer \(l): token gradient relative error \(tokenError)")
                worst.tokens = max(worst.tokens, tokenError)
            }
        }
    }

    @Test("transformer attribution, grad-rollout, Grad-CAM and input gradient within 1e-4 of PyTorch", arguments: cases)
    func maps(c: Case) throws {
        let (explainer, reference, input, maps, gradients) = try Self.run(c)
        var worst: [ExplanationMethod: Float] = [:]
        defer {
            print("\(c.testDescription): worst map errors " + worst.map { "\($0.key.rawValue) \($0.value)" }.sorted().joined(separator: ", "))
        }
        for (t, g) in zip(c.targets, gradients) {
            func check(_ method: ExplanationMethod, _ key: String, discard: Double = 0) throws {
                let ours = try explainer.explanation(
                    method, target: t, gradients: g, maps: maps, input: input,
                    settings: ExplanationSettings(discardRatio: discard)
                ).values
                let expected = try reference.floats(key)
                #expect(ours.count == expected.count)
                // The same normalisation for both: divided by the reference's largest magnitude.
                let error = Self.relativeError(ours[...], expected[...])
                #expect(error <= 1e-4, "\(method) target \(t): \(error)")
                worst[method] = max(worst[method] ?? 0, error)
            }
            try check(.transformerAttribution, "transformer_attribution.\(c.image).\(t)")
            try check(.gradRollout, "grad_rollout.\(c.image).\(t).0")
            try check(.gradRollout, "grad_rollout.\(c.image).\(t).0.5", discard: 0.5)
            try check(.gradcam, "gradcam.\(c.image).\(t)")
            try check(.inputGradient, "input_gradient.\(c.image).\(t)")
        }
    }

    @Test("per-head maps (--overlay-heads): (∇A_h ⊙ A_h)⁺ of the last layer from PyTorch's ∂logit/∂A, within 1e-4", arguments: cases)
    func headMaps(c: Case) throws {
        let (explainer, reference, input, maps, gradients) = try Self.run(c)
        let a = explainer.classifier.model.architecture, n = a.tokens, p = a.prefixTokens, l = a.depth - 1
        for (t, g) in zip(c.targets, gradients) {
            let torchGradients = try reference.floats("attention_grad.\(c.image).\(t)")
            for method in [ExplanationMethod.transformerAttribution, .gradRollout] {
                let heads = try #require(
                    try explainer.explanation(method, target: t, gradients: g, maps: maps, input: input, settings: ExplanationSettings()).heads)
                #expect(heads.count == a.heads)
                for (h, ours) in heads.enumerated() {
                    // The class token's query row (or, without one, the mean of the patch rows) over the patches.
                    let queries = a.classToken ? [0] : Array(p..<n)
                    let expected = (p..<n).map { j in
                        queries.map { q -> Float in
                            let i = ((l * a.heads + h) * n + q) * n + j
                            return max(torchGradients[i] * maps.probabilities[l][h][q * n + j], 0)
                        }.reduce(0, +) / Float(queries.count)
                    }
                    let error = Self.relativeError(ours[...], expected[...])
                    #expect(error <= 1e-4, "\(method) target \(t) head \(h): \(error)")
                }
            }
            let attentionHeads = try #require(
                try explainer.explanation(.attention, target: t, gradients: g, maps: maps, input: input, settings: ExplanationSettings()).heads)
            #expect(try attentionHeads == (0..<a.heads).map { try maps.layerMap(l, heads: .head($0)) })
            #expect(try explainer.explanation(.gradcam, target: t, gradients: g, maps: maps, input: input, settings: ExplanationSettings()).heads == nil)
        }
    }

    @Test("recording the trace leaves the forward's logits and attention bit-identical")
    func traceDoesNotChangeForward() throws {
        let c = Self.cases[0]
        let classifier = try Classifier(modelPath: c.dir)
        let input = try SafeTensorsFile(path: c.reference).floats("pixel_values.\(c.image)")
        let (plain, recorder) = classifier.logits(preprocessed: [input], attention: true)
        let (traced, maps, _, _) = try Explainer(classifier: classifier).gradients(preprocessed: input, targets: [0])
        #expect(plain[0] == traced)
        #expect(try #require(recorder).attention(image: 0) == maps.probabilities)
    }

    @Test("unsupported families are refused by name, not explained wrongly")
    func unsupported() throws {
        for name in ["rpn", "siglip_map", "eva02", "beit"] {
            let classifier = try Classifier(modelPath: Fixtures.path("families/\(name)"))
            #expect {
                _ = try Explainer(classifier: classifier)
            } throws: { error in
                "\(error.localizedDescription)".contains("explanations are not implemented for")
            }
        }
    }

    @Test("--target takes an index or a label")
    func targets() throws {
        let explainer = try Explainer(classifier: try Classifier(modelPath: Fixtures.path("models/timm_vit")))
        #expect(try explainer.target("3") == 3)
        #expect(try explainer.target("cat") == 3)
        #expect(try explainer.target("Truck") == 9)
        #expect(throws: ViTError.self) { try explainer.target("10") }
        #expect(throws: ViTError.self) { try explainer.target("zebra") }
    }

    @Test("classify --explain --target prints the issue's JSON: one entry per method and target from one forward pass")
    func cliJSON() throws {
        let model = Fixtures.path("models/timm_vit"), image = Fixtures.path("images/rgb8_32x32.png")
        let outcome = try CLI.run([
            image, "--model", model, "--format", "json", "--explain", "transformer-attribution,input-gradient", "--target", "3",
            "--target", "deer",
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: outcome.stdout) as? [String: Any])
        let explanations = try #require(object["explanations"] as? [[String: Any]])
        #expect(explanations.map { $0["method"] as? String } == ["transformer-attribution", "input-gradient", "transformer-attribution", "input-gradient"])
        #expect(explanations.map { $0["target"] as? Int } == [3, 3, 4, 4])
        #expect(explanations.map { $0["label"] as? String } == ["cat", "cat", "deer", "deer"])
        #expect(Set(explanations[0].keys) == ["method", "target", "label", "grid", "values"])
        #expect(Set(explanations[1].keys) == ["method", "target", "label", "size", "values"])
        #expect(explanations[0]["grid"] as? [Int] == [4, 4])
        #expect((explanations[0]["values"] as? [Double])?.count == 16)
        #expect(explanations[1]["size"] as? [Int] == [32, 32])
        #expect((explanations[1]["values"] as? [Double])?.count == 1024)
        let bad = try CLI.run([image, "--model", Fixtures.path("families/rpn"), "--explain", "gradcam"])
        #expect(bad.status == 1 && bad.stderr.contains("explanations are not implemented for residual post-norm blocks"))
    }

    @Test("--overlay-heads with --explain: the method's per-head maps (a different picture from the attention heads), refused where none exist")
    func cliHeadOverlays() throws {
        let model = Fixtures.path("models/timm_vit"), image = Fixtures.path("images/rgb8_32x32.png")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vitclassify-heads-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func heads(_ extra: [String], _ name: String) throws -> (CLI.Outcome, Data?) {
            let path = dir.appendingPathComponent(name).path
            let outcome = try CLI.run([image, "--model", model, "--overlay-heads", path] + extra)
            return (outcome, FileManager.default.contents(atPath: path))
        }
        let (plain, attention) = try heads([], "attention.png")
        let (explained, attribution) = try heads(["--explain", "transformer-attribution", "--target", "cat"], "ta.png")
        #expect(plain.status == 0 && explained.status == 0, "\(plain.stderr) \(explained.stderr)")
        let a = try #require(attention), t = try #require(attribution)
        #expect(a != t)
        let (sameAsPlain, attentionAgain) = try heads(["--explain", "attention"], "attention-explained.png")
        #expect(sameAsPlain.status == 0 && attentionAgain == a)
        let (refused, none) = try heads(["--explain", "gradcam"], "gradcam.png")
        #expect(refused.status == 1 && refused.stderr.contains("gradcam has no per-head maps") && none == nil)
    }

    @Test("the faithfulness benchmark: one row per method plus random, AUCs in [0, 100], the same bits with 1 or 3 workers")
    func faithfulness() throws {
        let c = Self.cases[0]
        let explainer = try Explainer(classifier: try Classifier(modelPath: c.dir))
        let reference = try SafeTensorsFile(path: c.reference)
        let inputs = try Self.cases.filter({ $0.model == c.model }).map { try reference.floats("pixel_values.\($0.image)") }
        func run(workers: Int, oneByOne: Bool) throws -> [FaithfulnessBenchmark.Row] {
            let benchmark = try FaithfulnessBenchmark(
                explainer: explainer, methods: [.rollout, .transformerAttribution], steps: 4, workers: workers)
            // The same images twice, with different labels, so that the random orders (seeded by position) differ.
            let batch = inputs.map { ($0, 3) } + inputs.map { ($0, 5) }
            if oneByOne { for (input, label) in batch { try benchmark.add(input, label: label) } } else { try benchmark.add(batch) }
            #expect(benchmark.images == 2 * inputs.count)
            return benchmark.rows
        }
        let rows = try run(workers: 1, oneByOne: true)
        #expect(rows.map(\.method) == ["rollout", "transformer-attribution", "random"])
        for r in rows {
            for v in [r.positiveAUC, r.negativeAUC, r.deletionAUC, r.insertionAUC] { #expect(v >= 0 && v <= 100) }
        }
        let concurrent = try run(workers: 3, oneByOne: false)
        #expect(concurrent.map(\.method) == rows.map(\.method))
        for (x, y) in zip(concurrent, rows) {
            #expect([x.positiveAUC, x.negativeAUC, x.deletionAUC, x.insertionAUC] == [y.positiveAUC, y.negativeAUC, y.deletionAUC, y.insertionAUC])
        }
    }
}
