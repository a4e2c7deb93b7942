import Foundation
import Testing
import ViTKit

/// ViTKit's public API as another package sees it (this file imports ViTKit without `@testable`): a classifier with
/// per-instance options, one image or a batch or a file, and thrown errors — not traps — for bad caller input.
@Suite("Public API")
struct PublicAPITests {
    static let model = DefaultModelTests.modelPath
    static let image = DefaultModelTests.imagesPath + "/bag-1.png"

    @Test("a file, its decoded image and the same image inside a batch give the same bits")
    func sameResultEveryWay() throws {
        let classifier = try Classifier(contentsOf: Self.model, options: .init(threads: 2))
        #expect(classifier.modelName == "fashion-mnist-vit" && classifier.labels.count == 10 && classifier.threads == 2)
        let fromFile = try classifier.classify(contentsOf: Self.image, topK: 3, attention: true)
        #expect(fromFile.predictions.first?.label == "Bag" && fromFile.predictions.count == 3)
        let image = try RGBImage(contentsOf: Self.image)
        let alone = classifier.classify(image, topK: 3)
        let other = try RGBImage(contentsOf: DefaultModelTests.imagesPath + "/coat-1.png")
        let batch = classifier.classify([other, image, other], topK: 3)
        #expect(alone.logits == fromFile.logits && batch[1].logits == alone.logits && batch[1].predictions == alone.predictions)
        let maps = try #require(fromFile.attention)
        #expect(maps.classRows.count == maps.layers && maps.classRows[0].count == maps.heads)
        #expect(try maps.rollout().count == maps.gridHeight * maps.gridWidth)
    }

    @Test("two classifiers with different thread counts agree, bit for bit")
    func perInstanceThreads() throws {
        let one = try Classifier(contentsOf: Self.model, options: .init(threads: 1))
        let two = try Classifier(contentsOf: Self.model, options: .init(threads: 2))
        #expect(try one.classify(contentsOf: Self.image).logits == two.classify(contentsOf: Self.image).logits)
    }

    @Test("bad caller input is a thrown ViTError with one line, never a trap")
    func thrownErrors() throws {
        #expect(throws: ViTError.self) { try Classifier(contentsOf: Self.model, options: .init(threads: 0)) }
        #expect(throws: ViTError.self) { try Classifier(contentsOf: Self.model, options: .init(imageSize: 0)) }
        #expect(throws: ViTError.self) { try Classifier(contentsOf: "/nonexistent/model") }
        #expect(throws: ViTError.self) { try RGBImage(width: 2, height: 2, pixels: [1, 2, 3]) }
        #expect(throws: ViTError.self) { try RGBImage(width: -1, height: 2, pixels: []) }
        #expect(throws: ViTError.self) { try RGBImage(width: Int.max, height: 2, pixels: []) }
        let classifier = try Classifier(contentsOf: Self.model)
        do {
            _ = try classifier.classify(contentsOf: Self.model + "/config.json")
            Issue.record("a JSON file was classified")
        } catch {
            let line = try #require(error.errorDescription)
            #expect(line.contains("config.json") && !line.contains("\n"))
        }
        let tiny = try RGBImage(width: 1, height: 1, pixels: [0, 0, 0])
        #expect(classifier.classify(tiny).predictions.count == 5)
    }
}
