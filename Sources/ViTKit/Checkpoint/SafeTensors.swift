import Foundation

/// A `.safetensors` file, memory-mapped, with every header entry checked against the file; or a sharded set of them
/// named by a `model.safetensors.index.json` (its `weight_map` says which shard holds which tensor), read as one.
///
/// Layout: an 8-byte little-endian header length `n`, `n` bytes of JSON mapping each tensor name to
/// `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the end of the header), then the data.
/// Every offset, shape and byte count is checked, with overflow-checked arithmetic, before any tensor is read.
package final class SafeTensorsFile: @unchecked Sendable {
    package enum DType: String, Sendable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64", u8 = "U8", i64 = "I64"

        var byteSize: Int {
            switch self {
            case .u8: 1
            case .f16, .bf16: 2
            case .f32: 4
            case .f64, .i64: 8
            }
        }
    }

    package struct TensorInfo: Sendable, Equatable {
        package let name: String
        package let dtype: DType
        package let shape: [Int]
        /// Byte range inside the data section.
        let begin: Int
        let end: Int
        /// Which file of a sharded set holds the tensor (0 for a single file).
        var shard = 0
        package var elementCount: Int { shape.reduce(1, *) }
    }

    /// Headers above this size are refused before they are read.
    package static let maxHeaderBytes = 100 * 1024 * 1024

    /// The file, or the index of a sharded set.
    package let path: String
    package let tensors: [String: TensorInfo]
    package let metadata: [String: String]
    /// Each file's mapping and where its data section starts.
    private let shards: [(file: MappedFile, dataStart: Int)]

    /// Opens a `.safetensors` file, or every shard a `….safetensors.index.json` names.
    package convenience init(path: String) throws {
        if path.hasSuffix(".index.json") {
            try self.init(indexPath: path)
        } else {
            try self.init(file: MappedFile(path: path))
        }
    }

    /// Tensors with shapes but no data (F32), for checking how a configuration reads a checkpoint's tensor layout
    /// (the architecture-table test). Reading a tensor's values from it is a programming error.
    init(shapesOnly shapes: [String: [Int]], path: String) {
        self.path = path
        tensors = Dictionary(
            uniqueKeysWithValues: shapes.map { ($0.key, TensorInfo(name: $0.key, dtype: .f32, shape: $0.value, begin: 0, end: 0)) })
        metadata = [:]
        shards = []
    }

    init(file: MappedFile) throws {
        self.path = file.path
        let (dataStart, tensors, metadata) = try Self.parse(file.bytes, path: file.path)
        (self.tensors, self.metadata, shards) = (tensors, metadata, [(file, dataStart)])
    }

    /// A sharded checkpoint: each shard is checked as a file of its own, and the index's `weight_map` must name
    /// exactly the tensors each shard holds.
    init(indexPath: String) throws {
        func fail(_ reason: String) -> ViTError { .invalidCheckpoint(path: indexPath, reason: reason) }
        path = indexPath
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: try FileIO.read(indexPath, limit: 64 << 20))
        } catch let error as ViTError {
            throw error
        } catch {
            throw fail("index is not valid JSON")
        }
        guard let map = (json as? [String: Any])?["weight_map"] as? [String: Any], !map.isEmpty else {
            throw fail("index has no 'weight_map' object naming the shards")
        }
        var shardOf: [String: String] = [:]
        for (tensor, value) in map {
            guard let shard = value as? String, !shard.isEmpty, !shard.contains("/"), !shard.contains("\\"), shard != ".",
                shard != ".."
            else { throw fail("weight_map['\(tensor.forMessage)'] is not a file name in the index's folder") }
            shardOf[tensor] = shard
        }
        let folder = URL(fileURLWithPath: indexPath).deletingLastPathComponent()
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        var shards: [(file: MappedFile, dataStart: Int)] = []
        for name in Set(shardOf.values).sorted() {
            let file = try MappedFile(path: folder.appendingPathComponent(name).path)
            let (dataStart, found, shardMetadata) = try Self.parse(file.bytes, path: file.path)
            for (tensor, var info) in found {
                guard shardOf[tensor] == name else {
                    throw fail("shard \(name.forMessage) holds '\(tensor.forMessage)', which weight_map places elsewhere")
                }
                info.shard = shards.count
                tensors[tensor] = info
            }
            metadata.merge(shardMetadata) { first, _ in first }
            shards.append((file, dataStart))
        }
        if let absent = shardOf.keys.sorted().first(where: { tensors[$0] == nil }) {
            throw fail("weight_map places '\(absent.forMessage)' in \(shardOf[absent]!.forMessage), which does not hold it")
        }
        (self.tensors, self.metadata, self.shards) = (tensors, metadata, shards)
    }

    /// Reads and validates the length prefix and the header of a whole safetensors file held in `bytes`.
    ///
    /// Nothing is allocated before the header length has been checked against ``maxHeaderBytes`` and the file size.
    /// - Returns: where the data section starts, the tensors and the metadata.
    static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws
        -> (dataStart: Int, tensors: [String: TensorInfo], metadata: [String: String])
    {
        func fail(_ reason: String) -> ViTError { .invalidCheckpoint(path: path, reason: reason) }
        guard bytes.count >= 8 else {
            throw fail(bytes.isEmpty ? "file is empty" : "file is \(bytes.count) bytes, too short for a header")
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw fail("header length \(headerLength) exceeds the limit of \(Self.maxHeaderBytes) bytes")
        }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw fail("header length \(headerLength) runs past the end of the file (\(bytes.count) bytes)")
        }
        let dataStart = 8 + Int(headerLength)
        let header = Data(bytes[8..<dataStart])
        let (tensors, metadata) = try parseHeader(header, dataSize: bytes.count - dataStart, path: path)
        return (dataStart, tensors, metadata)
    }

    /// Parses and validates a header against a data section of `dataSize` bytes.
    static func parseHeader(_ header: Data, dataSize: Int, path: String) throws -> ([String: TensorInfo], [String: String]) {
        func fail(_ reason: String) -> ViTError { .invalidCheckpoint(path: path, reason: reason) }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: header, options: [])
        } catch {
            throw fail("header is not valid JSON")
        }
        guard let entries = json as? [String: Any] else { throw fail("header is not a JSON object") }
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        // In name order, so that of several bad entries the same one is reported every time.
        for (name, value) in entries.sorted(by: { $0.key < $1.key }) {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in map { metadata[k] = v as? String ?? "\(v)" }
                continue
            }
            guard let entry = value as? [String: Any] else { throw fail("entry '\(name.forMessage)' is not an object") }
            guard let dtypeName = entry["dtype"] as? String else { throw fail("tensor '\(name.forMessage)' has no dtype") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw fail(
                    "tensor '\(name.forMessage)' has unsupported dtype \(dtypeName.forMessage) (supported: F32, F16, BF16, F64, U8, I64)"
                )
            }
            guard let shapeValues = entry["shape"] as? [Any] else { throw fail("tensor '\(name.forMessage)' has no shape") }
            var shape: [Int] = []
            for dimension in shapeValues {
                guard let number = dimension as? NSNumber, let d = Int(exactly: number.doubleValue), d >= 0,
                    number.doubleValue <= Double(Int32.max)
                else { throw fail("tensor '\(name.forMessage)' has an invalid shape \("\(shapeValues)".forMessage)") }
                shape.append(d)
            }
            guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
                let beginNumber = offsets[0] as? NSNumber, let endNumber = offsets[1] as? NSNumber,
                let begin = Int(exactly: beginNumber.doubleValue), let end = Int(exactly: endNumber.doubleValue),
                beginNumber.doubleValue < 9.0e18, endNumber.doubleValue < 9.0e18
            else { throw fail("tensor '\(name.forMessage)' has invalid data_offsets") }
            guard begin >= 0, begin <= end else {
                throw fail(
                    "tensor '\(name.forMessage)' data_offsets [\(begin), \(end)] outside the \(dataSize)-byte data section")
            }
            guard end <= dataSize else {
                throw fail(
                    "tensor '\(name.forMessage)' data_offsets [\(begin), \(end)] outside the \(dataSize)-byte data section"
                        + " (is the file truncated?)")
            }
            var bytes = dtype.byteSize
            for d in shape {
                let (product, overflow) = bytes.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("tensor '\(name.forMessage)' shape \(shape) overflows") }
                bytes = product
            }
            guard bytes == end - begin else {
                throw fail(
                    "tensor '\(name.forMessage)' shape \(shape) × \(dtype.rawValue) needs \(bytes) bytes but data_offsets span \(end - begin)"
                )
            }
            tensors[name] = TensorInfo(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
        }
        let ordered = tensors.values.filter { $0.end > $0.begin }.sorted { ($0.begin, $0.name) < ($1.begin, $1.name) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where b.begin < a.end {
            throw fail("tensors '\(a.name.forMessage)' and '\(b.name.forMessage)' overlap in the data section")
        }
        return (tensors, metadata)
    }

    /// The tensor's values converted to Float (F32 copied, F16/BF16/F64 converted).
    package func floats(_ name: String) throws -> [Float] {
        guard let info = tensors[name] else { throw ViTError.missingWeight(path: path, key: name) }
        return floats(info)
    }

    func floats(_ info: TensorInfo) -> [Float] {
        Self.floats(info, from: bytes(of: info))
    }

    /// The tensor's bytes inside its file's mapping.
    private func bytes(of info: TensorInfo) -> UnsafeRawBufferPointer {
        let (file, dataStart) = shards[info.shard]
        return UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + info.begin)..<(dataStart + info.end)])
    }

    /// Converts a tensor's bytes (`info.end - info.begin` of them, as checked by ``parseHeader(_:dataSize:path:)``)
    /// to Float.
    static func floats(_ info: TensorInfo, from source: UnsafeRawBufferPointer) -> [Float] {
        let count = info.elementCount
        precondition(source.count == count * info.dtype.byteSize, "tensor byte count mismatch")
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            switch info.dtype {
            case .f32:
                for i in 0..<count {
                    out[i] = Float(bitPattern: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian)
                }
            case .f16:
                for i in 0..<count {
                    out[i] = Half.float(bits: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)
                }
            case .bf16:
                for i in 0..<count {
                    let bits = UInt32(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) << 16
                    out[i] = Float(bitPattern: bits)
                }
            case .f64:
                for i in 0..<count {
                    out[i] = Float(Double(bitPattern: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian))
                }
            case .u8:
                for i in 0..<count { out[i] = Float(source[i]) }
            case .i64:
                for i in 0..<count {
                    out[i] = Float(Int64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
                }
            }
            initialized = count
        }
    }

    /// A BF16 tensor's raw bits (little-endian in the file), with no conversion to Float.
    func bf16Bits(_ info: TensorInfo) -> [UInt16] {
        precondition(info.dtype == .bf16, "not a BF16 tensor")
        let source = bytes(of: info), count = info.elementCount
        precondition(source.count == 2 * count, "tensor byte count mismatch")
        return [UInt16](unsafeUninitializedCapacity: count) { out, initialized in
            for i in 0..<count { out[i] = source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian }
            initialized = count
        }
    }

    /// Tells the kernel the tensor's pages are no longer needed (after its values were converted), so a loaded
    /// model does not hold its weights twice: once converted, once as mapped file pages.
    func releasePages(_ info: TensorInfo) {
        let (file, dataStart) = shards[info.shard]
        file.release(offset: dataStart + info.begin, count: info.end - info.begin)
    }

    /// Raw bytes of a U8 tensor (used for test fixtures).
    package func bytes(_ name: String) throws -> [UInt8] {
        guard let info = tensors[name] else { throw ViTError.missingWeight(path: path, key: name) }
        return [UInt8](bytes(of: info))
    }
}
