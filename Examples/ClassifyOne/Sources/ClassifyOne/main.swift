// Classifies one image with ViTKit: `ClassifyOne MODEL IMAGE` prints the top label and its probability.
import Foundation
import ViTKit

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: ClassifyOne MODEL_FOLDER IMAGE\n".utf8))
    exit(2)
}
do {
    let classifier = try Classifier(modelPath: arguments[1])
    let image = try ImageDecoder.read(arguments[2])
    let top = classifier.classify([image], topK: 1)[0].predictions[0]
    print("\(top.label)\t\(top.probability)")
} catch {
    FileHandle.standardError.write(Data("error: \((error as? LocalizedError)?.errorDescription ?? "\(error)")\n".utf8))
    exit(1)
}
