import Foundation

/// The two digests the Hub names its files by: SHA-256 (the ETag of an LFS file, and the name of its blob) and
/// SHA-1 over a git blob header plus the content (the ETag of a file stored in git itself).
///
/// Incremental, so a file is hashed as it is read back in pieces. Written here because Foundation on Linux has no
/// CryptoKit, and a dependency (swift-crypto) for two small functions would lengthen the build.
struct SHA256Digest {
    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19
    )
    private var buffer = [UInt8](repeating: 0, count: 64)
    private var buffered = 0
    private var length: UInt64 = 0

    private static let k: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]

    mutating func update(_ data: UnsafeRawBufferPointer) {
        length &+= UInt64(data.count)
        var offset = 0
        if buffered > 0 {
            let take = min(64 - buffered, data.count)
            for i in 0..<take { buffer[buffered + i] = data[i] }
            buffered += take
            offset = take
            if buffered == 64 {
                buffer.withUnsafeBytes { compress(UnsafeRawBufferPointer(rebasing: $0[0..<64])) }
                buffered = 0
            }
        }
        let whole = (data.count - offset) / 64 * 64
        if whole > 0 {
            compress(UnsafeRawBufferPointer(rebasing: data[offset..<(offset + whole)]))
            offset += whole
        }
        for i in offset..<data.count { buffer[buffered + i - offset] = data[i] }
        buffered += data.count - offset
    }

    mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// Runs the compression function over whole 64-byte blocks.
    private mutating func compress(_ blocks: UnsafeRawBufferPointer) {
        state = withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
            Self.k.withUnsafeBufferPointer { k in
                var state = self.state
                for base in stride(from: 0, to: blocks.count, by: 64) {
                    for i in 0..<16 {
                        w[i] = UInt32(bigEndian: blocks.loadUnaligned(fromByteOffset: base + 4 * i, as: UInt32.self))
                    }
                    for i in 16..<64 {
                        let s0 = w[i - 15].rotatedRight(7) ^ w[i - 15].rotatedRight(18) ^ (w[i - 15] >> 3)
                        let s1 = w[i - 2].rotatedRight(17) ^ w[i - 2].rotatedRight(19) ^ (w[i - 2] >> 10)
                        w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
                    }
                    var (a, b, c, d, e, f, g, h) = state
                    for i in 0..<64 {
                        let s1 = e.rotatedRight(6) ^ e.rotatedRight(11) ^ e.rotatedRight(25)
                        let t1 = h &+ s1 &+ ((e & f) ^ (~e & g)) &+ k[i] &+ w[i]
                        let s0 = a.rotatedRight(2) ^ a.rotatedRight(13) ^ a.rotatedRight(22)
                        let t2 = s0 &+ ((a & b) ^ (a & c) ^ (b & c))
                        (h, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
                    }
                    state = (
                        state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d, state.4 &+ e, state.5 &+ f,
                        state.6 &+ g, state.7 &+ h
                    )
                }
                return state
            }
        }
    }

    /// The digest as 64 lowercase hex digits.
    mutating func hexDigest() -> String {
        let bits = length &* 8
        update([0x80])
        while buffered != 56 { update([0]) }
        update((0..<8).map { UInt8(truncatingIfNeeded: bits >> (56 - 8 * UInt64($0))) })
        let words = [state.0, state.1, state.2, state.3, state.4, state.5, state.6, state.7]
        return words.map { String(format: "%08x", $0) }.joined()
    }
}

struct SHA1Digest {
    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32) = (
        0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0
    )
    private var buffer = [UInt8](repeating: 0, count: 64)
    private var buffered = 0
    private var length: UInt64 = 0

    mutating func update(_ data: UnsafeRawBufferPointer) {
        length &+= UInt64(data.count)
        var offset = 0
        if buffered > 0 {
            let take = min(64 - buffered, data.count)
            for i in 0..<take { buffer[buffered + i] = data[i] }
            buffered += take
            offset = take
            if buffered == 64 {
                buffer.withUnsafeBytes { compress(UnsafeRawBufferPointer(rebasing: $0[0..<64])) }
                buffered = 0
            }
        }
        let whole = (data.count - offset) / 64 * 64
        if whole > 0 {
            compress(UnsafeRawBufferPointer(rebasing: data[offset..<(offset + whole)]))
            offset += whole
        }
        for i in offset..<data.count { buffer[buffered + i - offset] = data[i] }
        buffered += data.count - offset
    }

    mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    private mutating func compress(_ blocks: UnsafeRawBufferPointer) {
        state = withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { w in
            var state = self.state
            for base in stride(from: 0, to: blocks.count, by: 64) {
                for i in 0..<16 {
                    w[i] = UInt32(bigEndian: blocks.loadUnaligned(fromByteOffset: base + 4 * i, as: UInt32.self))
                }
                for i in 16..<80 { w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotatedLeft(1) }
                var (a, b, c, d, e) = state
                for i in 0..<80 {
                    let f: UInt32, k: UInt32
                    if i < 20 {
                        (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                    } else if i < 40 {
                        (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                    } else if i < 60 {
                        (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                    } else {
                        (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                    }
                    let t = a.rotatedLeft(5) &+ f &+ e &+ k &+ w[i]
                    (e, d, c, b, a) = (d, c, b.rotatedLeft(30), a, t)
                }
                state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d, state.4 &+ e)
            }
            return state
        }
    }

    /// The digest as 40 lowercase hex digits.
    mutating func hexDigest() -> String {
        let bits = length &* 8
        update([0x80])
        while buffered != 56 { update([0]) }
        update((0..<8).map { UInt8(truncatingIfNeeded: bits >> (56 - 8 * UInt64($0))) })
        return [state.0, state.1, state.2, state.3, state.4].map { String(format: "%08x", $0) }.joined()
    }
}

extension UInt32 {
    @inline(__always) fileprivate func rotatedRight(_ n: UInt32) -> UInt32 { (self &>> n) | (self &<< (32 &- n)) }
    @inline(__always) fileprivate func rotatedLeft(_ n: UInt32) -> UInt32 { (self &<< n) | (self &>> (32 &- n)) }
}

/// How a Hub ETag identifies a file's content.
enum ContentCheck: Equatable {
    /// An LFS file: the ETag is the SHA-256 of the content.
    case sha256(String)
    /// A file stored in git: the ETag is the git blob id, SHA-1 of `"blob <size>\0"` + content.
    case gitBlob(String)
    /// Any other ETag: only the size can be checked.
    case none

    init(etag: String) {
        let hex = etag.allSatisfy { $0.isHexDigit && !$0.isUppercase }
        switch (hex, etag.count) {
        case (true, 64): self = .sha256(etag)
        case (true, 40): self = .gitBlob(etag)
        default: self = .none
        }
    }

    /// Hashes the file at `path` (read in 4 MiB pieces) and returns the digest its ETag kind calls for, or `nil`
    /// when the ETag is of no known kind.
    func digest(ofFileAt path: String) throws -> String? {
        if case .none = self { return nil }
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var sha256 = SHA256Digest(), sha1 = SHA1Digest()
        if case .gitBlob = self {
            let size = try handle.seekToEnd()
            try handle.seek(toOffset: 0)
            sha1.update(Array("blob \(size)\0".utf8))
        }
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes {
                if case .sha256 = self { sha256.update($0) } else { sha1.update($0) }
            }
        }
        if case .sha256 = self { return sha256.hexDigest() }
        return sha1.hexDigest()
    }

    var expected: String? {
        switch self {
        case .sha256(let value), .gitBlob(let value): value
        case .none: nil
        }
    }
}
