import Foundation
import Testing
import ViTKernels

@testable import ViTKit
@testable import vitclassify

/// `--precision bf16|int8` end to end: the parity fixtures against `tools/make_precision_fixtures.py` (each model run
/// in timm / transformers with its linear layers replaced by a NumPy emulation of the scheme, written from
/// vit_qgemm.h), on every reduced-precision kernel this CPU runs; and the default model over the Fashion-MNIST test
/// split against fp32. CI runs it on every instruction-set path (`VITCLASSIFY_ISA=avx2`, `=fallback`).
@Suite("Precision: BF16 and INT8 against the NumPy emulation and fp32", .serialized)
struct PrecisionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let model: Fixtures.Model
        let precision: Precision
        /// nil: this CPU's default kernel at the current instruction-set level.
        let kernel: String?
        var testDescription: String { "\(model.name) \(precision.rawValue) \(kernel ?? "default kernel")" }
    }

    static let kernels: [Precision: [String?]] = [
        .bf16: [nil] + QGemmFixture.bf16Kernels.map { Optional($0) },
        .int8: [nil] + QGemmFixture.q8Kernels.map { Optional($0) },
    ]

    static let cases: [Case] = Fixtures.models.flatMap { m in
        [Precision.bf16, .int8].flatMap { p in kernels[p]!.map { Case(model: m, precision: p, kernel: $0) } }
    }

    static func reference(_ model: Fixtures.Model) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: Fixtures.path("precision/\(model.name).safetensors"))
    }

    @Test("logits equal the NumPy emulation of the scheme within the scheme's tolerance", arguments: cases)
    func againstEmulation(c: Case) throws {
        let classifier = try Classifier(modelPath: c.model.dir, precision: c.precision, kernel: c.kernel)
        #expect(classifier.precision == c.precision)
        if let kernel = c.kernel { #expect(classifier.model.linearKernel == kernel) }
        let inputs = try SafeTensorsFile(path: c.model.reference)
        let expected = try Self.reference(c.model)
        // The emulation of the kernel's scheme: INT8 kernels of the reduced range have their own (vit_qgemm.h).
        let scheme = c.precision == .int8 && vk_q8_kernel_weight_max(classifier.model.linearKernel) == 63
            ? "int8r" : c.precision.rawValue
        let tolerance = try expected.floats("tolerance.\(scheme)")[0]
        var ours: [Float] = [], emulated: [Float] = [], fp32: [Float] = []
        for image in c.model.cases {
            let (logits, _) = classifier.logits(preprocessed: [try inputs.floats("pixel_values.\(image)")])
            let reference = try expected.floats("logits.\(scheme).\(image)")
            let difference = maxAbsDifference(logits[0], reference)
            #expect(difference <= tolerance, "\(image): max logit difference \(difference), tolerance \(tolerance)")
            ours += logits[0]
            emulated += reference
            fp32 += try inputs.floats("logits.\(image)")
        }
        // On these random-weight models a last-bit difference before a quantiser can move a logit by nearly the
        // scheme's whole error (the tolerance above says how far), so the maximum alone cannot tell the scheme from
        // fp32. Over all logits, the implementation must be much closer to the emulated scheme than fp32 is.
        func rms(_ a: [Float], _ b: [Float]) -> Float { (zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Float(a.count)).squareRoot() }
        let toScheme = rms(ours, emulated), fp32ToScheme = rms(fp32, emulated)
        #expect(toScheme < fp32ToScheme / 4, "RMS difference to the emulation \(toScheme), fp32's \(fp32ToScheme)")
    }

    /// INT8 gives the same bits on every kernel of a weight range (vit_qgemm.h); so does BF16 on every kernel but
    /// AMX's.
    @Test("every reduced-precision kernel gives the same bits (INT8: per weight range; BF16: all but AMX)",
          arguments: Fixtures.models)
    func sameBitsOnEveryKernel(model: Fixtures.Model) throws {
        let inputs = try SafeTensorsFile(path: model.reference)
        let images = try model.cases.map { try inputs.floats("pixel_values.\($0)") }
        let groups: [(Precision, (String) -> Bool)] = [
            (.int8, { vk_q8_kernel_weight_max($0) == 127 }), (.int8, { vk_q8_kernel_weight_max($0) == 63 }),
            (.bf16, { !$0.hasPrefix("amx") }),
        ]
        for (precision, member) in groups {
            let kernels = Self.kernels[precision]!.compactMap { $0 }.filter(member)
            let results = try kernels.map { kernel in
                try Classifier(modelPath: model.dir, precision: precision, kernel: kernel).logits(preprocessed: images).logits
                    .map { $0.map(\.bitPattern) }
            }
            for (kernel, result) in zip(kernels, results).dropFirst() {
                let same = result == results[0]
                #expect(same, "\(precision.rawValue): \(kernel) differs from \(kernels[0])")
            }
        }
    }

    @Test("fp32 is the default and unchanged by the option")
    func fp32Unchanged() throws {
        let model = Fixtures.models[0]
        let inputs = try SafeTensorsFile(path: model.reference)
        let image = try inputs.floats("pixel_values.\(model.cases[0])")
        let plain = try Classifier(modelPath: model.dir).logits(preprocessed: [image]).logits[0]
        let explicit = try Classifier(modelPath: model.dir, precision: .fp32).logits(preprocessed: [image]).logits[0]
        #expect(plain.map(\.bitPattern) == explicit.map(\.bitPattern))
        #expect(try Classifier(modelPath: model.dir).precision == .fp32)
    }

    @Test("a BF16 checkpoint is packed from its bits: the same results as its fp32 conversion")
    func bf16CheckpointBits() throws {
        // timm_deit3_layerscale is stored in BF16; its qkv, fc1 and patch embedding take the bits path (proj and
        // fc2 carry LayerScale, folded in fp32 first). Rounding a BF16 value to BF16 again is exact, so converting
        // the file to F32 must not change a bit.
        let model = try #require(Fixtures.models.first { $0.name == "timm_deit3_layerscale" })
        let header = try SafeTensorsFile(path: model.dir + "/model.safetensors")
        #expect(header.tensors["blocks.0.attn.qkv.weight"]?.dtype == .bf16)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vitclassify-bf16-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(atPath: model.dir + "/config.json", toPath: folder.appendingPathComponent("config.json").path)
        try SafeTensorsWriter.writeF32(
            header.tensors.keys.sorted().map { ($0, header.tensors[$0]!.shape, try header.floats($0)) },
            to: folder.appendingPathComponent("model.safetensors").path)
        let inputs = try SafeTensorsFile(path: model.reference)
        let images = try model.cases.map { try inputs.floats("pixel_values.\($0)") }
        let fromBits = try Classifier(modelPath: model.dir, precision: .bf16).logits(preprocessed: images).logits
        let fromF32 = try Classifier(modelPath: folder.path, precision: .bf16).logits(preprocessed: images).logits
        #expect(fromBits.map { $0.map(\.bitPattern) } == fromF32.map { $0.map(\.bitPattern) })
    }

    @Test("--precision parses on classify, batch, eval, bench and inspect; other values are refused")
    func parsing() throws {
        #expect(try Classify.parse(["x.png", "--precision", "int8"]).modelArguments.precision == .int8)
        #expect(try Bench.parse(["--precision", "bf16"]).modelArguments.precision == .bf16)
        #expect(try Bench.parse([]).modelArguments.precision == .fp32)
        #expect(try Inspect.parse(["--precision", "int8"]).precision == .int8)
        #expect(throws: (any Error).self) { try Bench.parse(["--precision", "fp16"]) }
    }

    // MARK: - The default model on the Fashion-MNIST test split

    /// Top-1 of every test image in one precision, and the accuracy.
    static func predictions(_ precision: Precision, kernel: String? = nil, split: DefaultModelTests.TestSplit) throws -> [Int] {
        let classifier = try Classifier(modelPath: DefaultModelTests.modelPath, precision: precision, kernel: kernel)
        var out: [Int] = []
        for first in stride(from: 0, to: split.labels.count, by: 500) {
            let batch = (first..<min(first + 500, split.labels.count)).map { classifier.preprocess(split.rgb($0)) }
            for logits in classifier.logits(preprocessed: batch).logits {
                out.append(logits.indices.max { logits[$0] < logits[$1] }!)
            }
        }
        return out
    }

    @Test(
        "default model, 10,000 test images: BF16 agrees with fp32 on ≥ 99.9%, INT8 on ≥ 99.62% within 0.2 points of its accuracy",
        .enabled(if: DefaultModelTests.hasDataset, "needs the Fashion-MNIST test split in \(DefaultModelTests.datasetPath)"),
        .enabled(if: DefaultModelTests.hasGzip, "needs \(DefaultModelTests.gzip)"))
    func testSplitAgreement() throws {
        let split = try DefaultModelTests.testSplit.get()
        let fp32 = try Self.predictions(.fp32, split: split)
        func accuracy(_ p: [Int]) -> Double { Double(zip(p, split.labels).filter { $0 == $1 }.count) / Double(p.count) * 100 }
        func agreement(_ p: [Int]) -> Double { Double(zip(p, fp32).filter { $0 == $1 }.count) / Double(p.count) * 100 }
        func percent(_ x: Double) -> String { String(format: "%.2f%%", x) }
        let bf16 = try Self.predictions(.bf16, split: split), int8 = try Self.predictions(.int8, split: split)
        print(
            "default model on \(Precision.int8.gemmKernel) / \(Precision.bf16.gemmKernel): accuracy fp32 \(percent(accuracy(fp32))), "
                + "bf16 \(percent(accuracy(bf16))) (agreement \(percent(agreement(bf16)))), "
                + "int8 \(percent(accuracy(int8))) (agreement \(percent(agreement(int8))))")
        #expect(agreement(bf16) >= 99.9)
        #expect(agreement(int8) >= 99.62)
        #expect(abs(accuracy(int8) - accuracy(fp32)) <= 0.2)
        // The INT8 scheme of the other weight range too, where this CPU has a kernel for it (the 7-bit vpmaddubsw
        // kernel on any AVX2 CPU): both schemes must meet the targets, whichever a CPU picks by default.
        let defaultRange = vk_q8_kernel_weight_max(Precision.int8.gemmKernel)
        if let other = QGemmFixture.q8Kernels.first(where: {
            vk_q8_kernel_weight_max($0) != defaultRange && !$0.hasPrefix("portable")
        }) {
            let p = try Self.predictions(.int8, kernel: other, split: split)
            print("default model on \(other): int8 \(percent(accuracy(p))) (agreement \(percent(agreement(p))))")
            #expect(agreement(p) >= 99.62, "\(other)")
            #expect(abs(accuracy(p) - accuracy(fp32)) <= 0.2, "\(other)")
        }
    }
}

/// A minimal safetensors writer for tests (F32 tensors, header padded to 8 bytes).
enum SafeTensorsWriter {
    static func writeF32(_ tensors: [(name: String, shape: [Int], values: [Float])], to path: String) throws {
        var entries: [String] = []
        var offset = 0
        for t in tensors {
            let bytes = 4 * t.values.count
            entries.append(#""\#(t.name)":{"dtype":"F32","shape":\#(t.shape),"data_offsets":[\#(offset),\#(offset + bytes)]}"#)
            offset += bytes
        }
        var header = Array("{\(entries.joined(separator: ","))}".utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        var data = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: header)
        for t in tensors { t.values.withUnsafeBytes { data.append(contentsOf: $0) } }
        try data.write(to: URL(fileURLWithPath: path))
    }
}
