/// The tensors of a checkpoint under the one internal (timm) naming, with the dialect's renames and fusions
/// applied lazily, and bookkeeping of which source tensors were used.
///
/// A dialect maps each internal key to one or more source tensors (several are concatenated along the first
/// dimension: Hugging Face's separate query/key/value become timm's fused `qkv`). The part ``zeros`` stands for a
/// tensor of zeros shaped like the others (BEiT's and EVA's absent key bias between `q_bias` and `v_bias`). ``take(_:shape:)`` checks
/// every source tensor's shape and names the *source* key in errors, so messages refer to what is in the file.
struct TensorStore {
    let file: SafeTensorsFile
    private(set) var sources: [String: [String]]
    private(set) var used: Set<String> = []
    /// Source keys that are known and deliberately ignored (e.g. Hugging Face's unused pooler).
    var ignored: Set<String> = []

    /// A fused part that is all zeros, shaped like the other parts.
    static let zeros = "=zeros"

    init(file: SafeTensorsFile, sources: [String: [String]]) {
        self.file = file
        self.sources = sources
    }

    func contains(_ key: String) -> Bool { sources[key] != nil }

    /// The shape of an internal key's tensor (first dimension summed over fused parts), if present.
    func shape(_ key: String) -> [Int]? {
        guard let parts = sources[key], let first = parts.first(where: { $0 != Self.zeros }),
            let partShape = file.tensors[first]?.shape
        else { return nil }
        if parts.count == 1 { return partShape }
        guard !partShape.isEmpty else { return nil }
        var shape = partShape
        shape[0] = 0
        for part in parts {
            guard let other = part == Self.zeros ? partShape : file.tensors[part]?.shape, !other.isEmpty else { return nil }
            shape[0] += other[0]
        }
        return shape
    }

    /// The values of an internal key, after checking that its shape is `expected`.
    mutating func take(_ key: String, shape expected: [Int]) throws -> [Float] {
        guard let parts = sources[key] else { throw ViTError.missingWeight(path: file.path, key: key) }
        var partShape = expected
        if parts.count > 1 { partShape[0] = expected[0] / parts.count }
        // Every part's shape is checked before anything is allocated: `expected` comes from the configuration and
        // its product may be astronomical (or overflow); a tensor that matches it exists in the file, so is bounded.
        let infos = try parts.map { part -> SafeTensorsFile.TensorInfo? in
            if part == Self.zeros { return nil }
            guard let info = file.tensors[part] else { throw ViTError.missingWeight(path: file.path, key: part) }
            guard info.shape == partShape else {
                throw ViTError.shapeMismatch(path: file.path, key: part, expected: partShape, found: info.shape)
            }
            return info
        }
        let partCount = infos.compactMap { $0?.elementCount }.first ?? 0
        var values: [Float] = []
        values.reserveCapacity(partCount * parts.count)
        for info in infos {
            guard let info else {
                values += [Float](repeating: 0, count: partCount)
                continue
            }
            values += file.floats(info)
            file.releasePages(info)
            used.insert(info.name)
        }
        return values
    }

    /// The raw bits of an internal key whose every source tensor is BF16 (parts concatenated, a zeros part as +0),
    /// after checking the shape as ``take(_:shape:)`` does; `nil` (nothing taken) if any part is not BF16.
    mutating func takeBF16Bits(_ key: String, shape expected: [Int]) throws -> [UInt16]? {
        guard let parts = sources[key] else { throw ViTError.missingWeight(path: file.path, key: key) }
        guard parts.allSatisfy({ $0 == Self.zeros || file.tensors[$0]?.dtype == .bf16 }),
            parts.contains(where: { $0 != Self.zeros })
        else { return nil }
        var partShape = expected
        if parts.count > 1 { partShape[0] = expected[0] / parts.count }
        let infos = try parts.map { part -> SafeTensorsFile.TensorInfo? in
            if part == Self.zeros { return nil }
            let info = file.tensors[part]!
            guard info.shape == partShape else {
                throw ViTError.shapeMismatch(path: file.path, key: part, expected: partShape, found: info.shape)
            }
            return info
        }
        let partCount = infos.compactMap { $0?.elementCount }.first ?? 0
        var bits: [UInt16] = []
        bits.reserveCapacity(partCount * parts.count)
        for info in infos {
            guard let info else {
                bits += [UInt16](repeating: 0, count: partCount)
                continue
            }
            bits += file.bf16Bits(info)
            file.releasePages(info)
            used.insert(info.name)
        }
        return bits
    }

    /// Takes an optional tensor: `nil` if the key is absent.
    mutating func takeIfPresent(_ key: String, shape: [Int]) throws -> [Float]? {
        contains(key) ? try take(key, shape: shape) : nil
    }

    /// Fails if any tensor of the file was neither used nor deliberately ignored.
    func checkAllUsed() throws {
        let unused = file.tensors.keys.filter { !used.contains($0) && !ignored.contains($0) }.sorted()
        if !unused.isEmpty { throw ViTError.unusedWeights(path: file.path, keys: unused) }
    }
}
