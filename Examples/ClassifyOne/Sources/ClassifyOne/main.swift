// Classifies one image with ViTKit: `ClassifyOne MODEL IMAGE` prints the top label and its probability.
// Only ViTKit's public API: Classifier, its options, Classification, Prediction, ViTError.
import Foundation
import ViTKit

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: ClassifyOne MODEL_FOLDER IMAGE\n".utf8))
    exit(2)
}
do {
    let classifier = try Classifier(contentsOf: arguments[1], options: .init(threads: 1))
    let top = try classifier.classify(contentsOf: arguments[2], topK: 1).predictions[0]
    print("\(top.label)\t\(top.probability)")
} catch {
    FileHandle.standardError.write(Data("error: \(error.errorDescription ?? "\(error)")\n".utf8))
    exit(1)
}
