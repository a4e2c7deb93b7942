import Foundation
import Testing

@testable import ViTKit

/// Every architecture in the generated timm table (`Resources/timm_architectures.json`) is either read into an
/// architecture that agrees with what timm built (heads, widths, norms, block type, position encodings, tokens) or
/// refused with one line naming what is not supported — from the table's tensor shapes alone, without timm.
@Suite("timm's registry table")
struct TimmTableTests {
    nonisolated(unsafe) static let table: [String: [String: Any]] = {
        let url = try! BundledResources.url("timm_architectures.json")
        let json = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return json["architectures"] as! [String: [String: Any]]
    }()

    @Test("every listed architecture is read as timm built it, or refused by name")
    func everyArchitecture() throws {
        var read = 0, refused: [String: Int] = [:]
        for (name, entry) in Self.table.sorted(by: { $0.key < $1.key }) {
            let derived = entry["derived"] as! [String: Any]
            let depth = derived["depth"] as! Int
            // The table lists block 0's tensors: give every block the same.
            var shapes: [String: [Int]] = [:]
            for (key, shape) in entry["tensors"] as! [String: [Int]] {
                if key.hasPrefix("blocks.0.") {
                    for b in 0..<depth { shapes["blocks.\(b)." + key.dropFirst("blocks.0.".count)] = shape }
                } else {
                    shapes[key] = shape
                }
            }
            let file = SafeTensorsFile(shapesOnly: shapes, path: "\(name)/model.safetensors")
            let config = JSONObject(path: "\(name)/config.json", fieldPath: "", values: ["architecture": name])
            let files = Checkpoint.Files(weights: file.path, config: config.path, name: name)
            do {
                let (info, _) = try TimmDialect.read(files: files, config: config, safetensors: file)
                let a = info.architecture
                try a.validate(path: config.path)
                read += 1
                #expect(a.heads == derived["num_heads"] as? Int && a.headDim == derived["head_dim"] as? Int, "\(name)")
                #expect(a.embedDim == derived["embed_dim"] as? Int && a.depth == depth, "\(name)")
                #expect(a.prefixTokens == derived["num_prefix_tokens"] as? Int, "\(name): prefix tokens")
                let mlp = derived["mlp"] as! [String: Any]
                #expect(a.mlpDim == mlp["hidden"] as? Int, "\(name): MLP width \(a.mlpDim) vs \(mlp["hidden"]!)")
                #expect((a.mlp == .gated) == ((mlp["class"] as? String).map { $0.contains("Glu") || $0.contains("SwiGLU") } ?? false), "\(name): gated")
                if let norm1 = derived["norm1"] as? [String: Any], let eps = norm1["eps"] as? Double {
                    #expect(abs(Double(a.layerNormEps) - eps) <= eps * 1e-6, "\(name): eps \(a.layerNormEps) vs \(eps)")
                }
                #expect((a.block == .residualPostNorm) == (derived["block"] as? String == "ResPostBlock"), "\(name): block")
                #expect(a.relativePositionBias == !(derived["rel_pos_bias"] is NSNull || derived["rel_pos_bias"] == nil), "\(name)")
                #expect((a.rotary != nil) == !(derived["rope"] is NSNull || derived["rope"] == nil), "\(name): rope")
                #expect(a.imageHeight == (derived["img_size"] as! [Int])[0], "\(name): image size")
            } catch let error as ViTError {
                let message = error.errorDescription ?? ""
                #expect(!message.contains("\n") && message.contains("not supported"), "\(name): \(message)")
                let reason = message.components(separatedBy: "): ").dropFirst().first?.components(separatedBy: " is not supported").first ?? message
                refused[reason, default: 0] += 1
            }
        }
        // 251 architectures in timm 1.0.31; those refused are image encoders without a head (num_classes 0 by
        // default), the attention-pool head, DINOv3's RoPE, RMSNorm and the parallel blocks.
        #expect(read + refused.values.reduce(0, +) == Self.table.count)
        #expect(read >= 130, "read \(read); refused: \(refused)")
        print("timm table: \(read) of \(Self.table.count) architectures read; refused: \(refused.sorted { $0.value > $1.value })")
    }
}
