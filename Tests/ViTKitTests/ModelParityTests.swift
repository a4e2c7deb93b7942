import Foundation
import Testing

@testable import ViTKit

/// Parity with timm / Hugging Face transformers on every supported checkpoint variant.
@Suite("Parity with the reference implementations")
struct ModelParityTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let model: Fixtures.Model
        let image: String
        var testDescription: String { "\(model.name) on \(image)" }
    }

    static let cases: [Case] = Fixtures.models.flatMap { m in m.cases.map { Case(model: m, image: $0) } }

    /// One LSB of the uint8 input in normalised units is 1/255/std ≤ 1/255/0.224 ≈ 0.0175.
    static let oneLevel: Float = 1 / 255 / 0.224

    @Test("preprocessing reproduces the library's pixel_values", arguments: cases)
    func preprocessing(c: Case) throws {
        let classifier = try Classifier(modelPath: c.model.dir)
        let reference = try SafeTensorsFile(path: c.model.reference).floats("pixel_values.\(c.image)")
        let ours = classifier.preprocess(try PNGDecoder.read(Fixtures.image(c.image).file))
        let difference = maxAbsDifference(ours, reference)
        // Pillow's fixed-point resampling is reproduced exactly, so the only difference is float rounding.
        #expect(difference <= 1e-6, "max difference \(difference) (one uint8 level is \(Self.oneLevel))")
    }

    @Test("logits equal the reference on the reference input", arguments: cases)
    func logitsFromReferenceInput(c: Case) throws {
        let classifier = try Classifier(modelPath: c.model.dir)
        let reference = try SafeTensorsFile(path: c.model.reference)
        let (logits, _) = classifier.logits(preprocessed: [try reference.floats("pixel_values.\(c.image)")])
        let expected = try reference.floats("logits.\(c.image)")
        #expect(logits[0].count == c.model.numClasses)
        let difference = maxAbsDifference(logits[0], expected)
        #expect(difference <= 1e-4, "max logit difference \(difference)")
        #expect(topIndices(logits[0], 5) == topIndices(expected, 5))
    }

    @Test("PNG file to logits matches end to end", arguments: cases)
    func endToEnd(c: Case) throws {
        let classifier = try Classifier(modelPath: c.model.dir)
        let expected = try SafeTensorsFile(path: c.model.reference).floats("logits.\(c.image)")
        let result = classifier.classify([try PNGDecoder.read(Fixtures.image(c.image).file)], topK: 5)[0]
        let difference = maxAbsDifference(result.logits, expected)
        #expect(difference <= 1e-4, "max logit difference \(difference)")
        #expect(result.predictions.map(\.index) == topIndices(expected, 5))
    }

    @Test("attention probabilities equal the reference", arguments: cases)
    func attention(c: Case) throws {
        let classifier = try Classifier(modelPath: c.model.dir)
        let reference = try SafeTensorsFile(path: c.model.reference)
        let (_, recorder) = classifier.logits(preprocessed: [try reference.floats("pixel_values.\(c.image)")], attention: true)
        let ours = try #require(recorder).attention(image: 0).flatMap { $0.flatMap { $0 } }
        let difference = maxAbsDifference(ours, try reference.floats("attentions.\(c.image)"))
        #expect(difference <= 1e-5, "max attention difference \(difference)")
    }

    static let resizedCases: [Case] = Fixtures.models.flatMap { m in (m.resized?.cases ?? []).map { Case(model: m, image: $0) } }

    @Test("--image-size resamples position embeddings as the library does", arguments: resizedCases)
    func resized(c: Case) throws {
        let resized = try #require(c.model.resized)
        let classifier = try Classifier(modelPath: c.model.dir, imageSize: resized.imageSize)
        let reference = try SafeTensorsFile(path: resized.file)
        let pos = classifier.model.weights.positionEmbedding.array
        let expectedPos = try reference.floats("pos_embed")
        let posDifference = maxAbsDifference(pos, expectedPos)
        #expect(posDifference <= 1e-5, "max position-embedding difference \(posDifference)")
        let pixels = classifier.preprocess(try PNGDecoder.read(Fixtures.image(c.image).file))
        #expect(maxAbsDifference(pixels, try reference.floats("pixel_values.\(c.image)")) <= 1e-6)
        let (logits, _) = classifier.logits(preprocessed: [try reference.floats("pixel_values.\(c.image)")])
        let expected = try reference.floats("logits.\(c.image)")
        #expect(maxAbsDifference(logits[0], expected) <= 1e-4)
        #expect(topIndices(logits[0], 5) == topIndices(expected, 5))
    }

    @Test("a batch gives the same logits as one image at a time")
    func batchEqualsSingle() throws {
        let model = Fixtures.models.first { $0.name == "timm_deit_distilled" }!
        let classifier = try Classifier(modelPath: model.dir)
        let images = try model.cases.map { try PNGDecoder.read(Fixtures.image($0).file) }
        let batch = classifier.classify(images, topK: 3)
        for (i, image) in images.enumerated() {
            let single = classifier.classify([image], topK: 3)[0]
            #expect(maxAbsDifference(single.logits, batch[i].logits) <= 1e-5)
        }
    }

    @Test("1000 classes without label names get the ImageNet-1k labels")
    func imageNetLabels() throws {
        let classifier = try Classifier(modelPath: Fixtures.models.first { $0.name == "timm_vit_1000" }!.dir)
        #expect(classifier.info.labels.count == 1000)
        #expect(classifier.info.labels[0] == "tench, Tinca tinca")
    }
}
