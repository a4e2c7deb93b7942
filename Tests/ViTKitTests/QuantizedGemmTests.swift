import Foundation
import Testing
import ViTKernels

@testable import ViTKit

/// The reduced-precision GEMMs (vit_qgemm.h) against `tools/qgemm_reference.py`, a NumPy emulation of the INT8 and
/// BF16 schemes written from their definition, on every kernel this CPU can run (not only the one the current
/// instruction-set level picks, so one run covers AMX, AVX-512 VNNI, AVX-VNNI, AVX2 and portable code alike).
enum QGemmFixture {
    static let file = try! SafeTensorsFile(path: Fixtures.path("qgemm/qgemm_reference.safetensors"))

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let m: Int, k: Int, n: Int
        let accumulate: Bool, bias: Bool
        var testDescription: String { "\(name) M\(m) K\(k) N\(n)\(accumulate ? " +C" : "")\(bias ? " +bias" : "")" }
    }

    static let cases: [Case] = {
        let json = file.metadata["cases"]!.data(using: .utf8)!
        let list = try! JSONSerialization.jsonObject(with: json) as! [[String: Any]]
        return list.map {
            Case(
                name: $0["name"] as! String, m: $0["m"] as! Int, k: $0["k"] as! Int, n: $0["n"] as! Int,
                accumulate: $0["accumulate"] as! Bool, bias: $0["bias"] as! Bool)
        }
    }()

    static func floats(_ c: Case, _ key: String) -> [Float] { try! file.floats("\(c.name).\(key)") }

    static func names(_ at: (Int) -> UnsafePointer<CChar>?) -> [String] {
        var out: [String] = []
        while let p = at(out.count) { out.append(String(cString: p)) }
        return out
    }
    static let q8Kernels = names { vk_q8_kernel_available($0) }
    /// The fixture key of an INT8 kernel's scheme: "q8" (8-bit weights and rows) or "q8r" (reduced range: 7-bit, vit_qgemm.h).
    static func q8Key(_ kernel: String) -> String { vk_q8_kernel_weight_max(kernel) == 63 ? "q8r" : "q8" }
    static let bf16Kernels = names { vk_bf16_kernel_available($0) }
}


/// One packed weight matrix of either precision, for the tests that treat both alike.
private struct Packed {
    let q8: OpaquePointer?
    let bf16: OpaquePointer?
    init(q8: OpaquePointer?, bf16: OpaquePointer?) {
        self.q8 = q8
        self.bf16 = bf16
    }
    init(precision: String, kernel: String?, bt: [Float], k: Int, n: Int) {
        if precision == "int8" {
            q8 = kernel.map { vk_pack_q8_transposed_with(bt, k, n, k, $0) } ?? vk_pack_q8_transposed(bt, k, n, k)
            bf16 = nil
        } else {
            q8 = nil
            bf16 = kernel.map { vk_pack_bf16_transposed_with(bt, k, n, k, $0) } ?? vk_pack_bf16_transposed(bt, k, n, k)
        }
    }
    var valid: Bool { q8 != nil || bf16 != nil }
    func free() {
        vk_packed_q8_free(q8)
        vk_packed_bf16_free(bf16)
    }
    /// C (m × n, rows ldc apart) from A (m rows, lda apart).
    func run(
        _ m: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
        bias: UnsafePointer<Float>?, accumulate: Bool, activation: Int32, threads: Int32
    ) {
        if let q8 {
            vk_gemm_q8(m, a, lda, q8, c, ldc, bias, accumulate ? 1 : 0, activation, threads)
        } else {
            vk_gemm_bf16(m, a, lda, bf16, c, ldc, bias, accumulate ? 1 : 0, activation, threads)
        }
    }
}

private func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

@Suite("Reduced-precision GEMMs (INT8, BF16)")
struct QuantizedGemmTests {
    /// Runs a fixture case with A and C padded (lda = K + 3 with NaN padding that must never be read, ldc = N + 2
    /// with sentinels that must stay), returns the M × N result.
    private static func run(_ c: QGemmFixture.Case, _ packed: Packed, activation: Int32 = 0, threads: Int32) -> [Float]? {
        let a = QGemmFixture.floats(c, "a"), c0 = QGemmFixture.floats(c, "c0"), bias = QGemmFixture.floats(c, "bias")
        let lda = c.k + 3, ldc = c.n + 2
        var ap = [Float](repeating: .nan, count: c.m * lda)
        for i in 0..<c.m { for j in 0..<c.k { ap[i * lda + j] = a[i * c.k + j] } }
        var out = [Float](repeating: -7.25, count: c.m * ldc)
        for i in 0..<c.m { for j in 0..<c.n { out[i * ldc + j] = c0[i * c.n + j] } }
        ap.withUnsafeBufferPointer { a in
            bias.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { o in
                    packed.run(
                        c.m, a.baseAddress!, lda, o.baseAddress!, ldc, bias: c.bias ? b.baseAddress : nil,
                        accumulate: c.accumulate, activation: activation, threads: threads)
                }
            }
        }
        var result = [Float](repeating: 0, count: c.m * c.n)
        for i in 0..<c.m {
            for j in 0..<c.n { result[i * c.n + j] = out[i * ldc + j] }
            for j in c.n..<ldc where out[i * ldc + j] != -7.25 { return nil }  // wrote past N
        }
        return result
    }

    // MARK: INT8

    /// INT8 is integer-exact and every kernel dequantises in the same order, so the expectation is the emulation's
    /// bits exactly, on every kernel and thread count (the emulation of the kernel's range: 8-bit, or 7-bit
    /// weights and rows for the vpmaddubsw kernel); with the GELU epilogue, vk_gelu of those bits.
    @Test("INT8: every kernel gives the NumPy emulation's bits", arguments: QGemmFixture.cases)
    func int8MatchesEmulation(c: QGemmFixture.Case) throws {
        let bt = QGemmFixture.floats(c, "bt")
        for kernel in [nil] + QGemmFixture.q8Kernels.map(Optional.some) {
            let packed = Packed(precision: "int8", kernel: kernel, bt: bt, k: c.k, n: c.n)
            defer { packed.free() }
            try #require(packed.valid, "\(kernel ?? "default") did not pack")
            let name = String(cString: vk_packed_q8_kernel(packed.q8))
            let key = QGemmFixture.q8Key(name)
            let expected = QGemmFixture.floats(c, key), scales = QGemmFixture.floats(c, "\(key)_scale")
            var gelu = expected
            vk_gelu(&gelu, c.m, c.n, c.n, 0)
            #expect(vk_packed_q8_rows(packed.q8) == c.k && vk_packed_q8_cols(packed.q8) == c.n)
            #expect(vk_packed_q8_bytes(packed.q8) >= c.k * c.n + 8 * c.n)
            #expect((0..<c.n).map { vk_packed_q8_scale(packed.q8, $0).bitPattern } == bits(scales), "\(name): scales")
            for threads: Int32 in [1, 2, 3] {
                let out = try #require(Self.run(c, packed, threads: threads), "\(name): wrote past N")
                let bad = zip(out, expected).filter { $0.0.bitPattern != $0.1.bitPattern }.count
                #expect(bad == 0, "\(name) threads \(threads): \(bad) of \(out.count) differ from the emulation")
            }
            let act = try #require(Self.run(c, packed, activation: 1, threads: 2))
            #expect(bits(act) == bits(gelu), "\(name): GELU epilogue")
        }
    }

    /// Independently of the emulation: the INT8 result is within the scheme's own error bound of the exact fp32
    /// product. With â = s_a·(q_a − zp) and ŵ = s_w·q_w: |a − â| ≤ s_a (half a step from rounding, at most one more
    /// where the top of the range clips at 255, or 127) and |w − ŵ| ≤ s_w/2, so
    ///   |Σ a·w − Σ â·ŵ| ≤ (s_w/2)·Σ(|a| + s_a) + s_a·Σ|ŵ| ,  Σ|ŵ| ≤ Σ|w| + K·s_w/2,
    /// plus the fp32 roundings of the dequantisation (3), + C and + bias: 5·2⁻²⁴·(|exact| + |C| + |bias|).
    @Test("INT8 is within the quantisation error bound of the exact product", arguments: QGemmFixture.cases)
    func int8Bound(c: QGemmFixture.Case) throws {
        let a = QGemmFixture.floats(c, "a"), bt = QGemmFixture.floats(c, "bt")
        let c0 = QGemmFixture.floats(c, "c0"), bias = QGemmFixture.floats(c, "bias")
        let packed = Packed(precision: "int8", kernel: nil, bt: bt, k: c.k, n: c.n)
        defer { packed.free() }
        let out = try #require(Self.run(c, packed, threads: 2))
        // Rows have 255 steps, 127 in the reduced range (the step then enters the bound twice as large).
        let levels: Float = vk_q8_kernel_weight_max(vk_packed_q8_kernel(packed.q8)) == 63 ? 127 : 255
        var bad = 0
        for i in 0..<c.m {
            let row = a[(i * c.k)..<((i + 1) * c.k)]
            let lo = min(0, row.min() ?? 0), hi = max(0, row.max() ?? 0)
            let sa = Double(hi - lo >= 1e-30 ? (hi - lo) / levels : 0)
            let sumA = row.reduce(0.0) { $0 + Double(abs($1)) }
            for j in 0..<c.n {
                let w = bt[(j * c.k)..<((j + 1) * c.k)]
                let sw = Double(vk_packed_q8_scale(packed.q8, j))
                var exact = 0.0, sumW = 0.0
                for (x, y) in zip(row, w) {
                    exact += Double(x) * Double(y)
                    sumW += Double(abs(y))
                }
                let smallRow = sa == 0, extra = (c.accumulate ? Double(c0[i * c.n + j]) : 0) + (c.bias ? Double(bias[j]) : 0)
                let quant = smallRow
                    ? Double(hi - lo) * sumW  // a row quantised to zero: the whole product is the error
                    : (sw / 2) * (sumA + Double(c.k) * sa) + sa * (sumW + Double(c.k) * sw / 2)
                let rounding = 5 * 0x1p-24 * (abs(exact) + abs(extra) * 2) + 1e-30
                if !(abs(Double(out[i * c.n + j]) - (exact + extra)) <= quant + rounding) { bad += 1 }
            }
        }
        #expect(bad == 0, "\(bad) of \(c.m * c.n) outside the bound")
    }

    // MARK: BF16

    /// Every BF16 kernel but AMX sums in the canonical k order (one fp32 rounding per k, exact bf16 products) and so
    /// gives the emulation's bits exactly. All kernels, AMX included, must be within the fp32 accumulation bound of
    /// the exact (float64) product of the rounded inputs: recursive summation of K exact terms errs by at most
    /// γ_K·Σ|a_k·b_k|, γ_K = K·u/(1 − K·u), u = 2⁻²⁴; AMX's internal rounding is undocumented, so its u is taken as
    /// 2⁻²³ (as if it truncated): bound K·2⁻²³/(1 − K·2⁻²³)·Σ|a·b|, plus 2⁻²³ for each of + C and + bias and for
    /// storing the reference in float32.
    @Test("BF16: the canonical sum's bits, and AMX within the accumulation bound", arguments: QGemmFixture.cases)
    func bf16MatchesEmulation(c: QGemmFixture.Case) throws {
        let bt = QGemmFixture.floats(c, "bt"), expected = QGemmFixture.floats(c, "bf16")
        let exact = QGemmFixture.floats(c, "exact"), absSum = QGemmFixture.floats(c, "abs")
        let c0 = QGemmFixture.floats(c, "c0"), bias = QGemmFixture.floats(c, "bias")
        let btBits = bt.map { vk_bf16_from_float($0) }
        let u = 0x1p-23, k = Double(c.k), gamma = k * u / (1 - k * u)
        for kernel in [nil] + QGemmFixture.bf16Kernels.map(Optional.some) {
            let packed = Packed(precision: "bf16", kernel: kernel, bt: bt, k: c.k, n: c.n)
            defer { packed.free() }
            try #require(packed.valid)
            let name = String(cString: vk_packed_bf16_kernel(packed.bf16))
            #expect(vk_packed_bf16_rows(packed.bf16) == c.k && vk_packed_bf16_cols(packed.bf16) == c.n)
            #expect(vk_packed_bf16_bytes(packed.bf16) >= 2 * c.k * c.n)
            // The same weights from raw BF16 bits (a BF16 checkpoint) pack to the same matrix.
            let fromBits = vk_pack_bf16_transposed_bits_with(btBits, c.k, c.n, c.k, name)
            defer { vk_packed_bf16_free(fromBits) }
            let viaBits = try #require(Self.run(c, Packed(q8: nil, bf16: fromBits), threads: 1))
            let out = try #require(Self.run(c, packed, threads: 1), "\(name): wrote past N")
            #expect(bits(viaBits) == bits(out), "\(name): packed from bits differs")
            let out2 = try #require(Self.run(c, packed, threads: 3))
            #expect(bits(out2) == bits(out), "\(name): threads change the bits")
            if !name.hasPrefix("amx") {
                let bad = zip(out, expected).filter { $0.0.bitPattern != $0.1.bitPattern }.count
                #expect(bad == 0, "\(name): \(bad) of \(out.count) differ from the canonical sum")
            }
            var bad = 0
            for i in 0..<c.m {
                for j in 0..<c.n {
                    let e = i * c.n + j
                    let extra = (c.accumulate ? Double(c0[e]) : 0) + (c.bias ? Double(bias[j]) : 0)
                    let ref = Double(exact[e]) + extra
                    let bound = gamma * Double(absSum[e]) * (1 + u) + 3 * u * (abs(Double(exact[e])) + abs(extra) * 2) + 1e-30
                    if !(abs(Double(out[e]) - ref) <= bound) { bad += 1 }
                }
            }
            #expect(bad == 0, "\(name): \(bad) of \(out.count) outside the accumulation bound")
        }
    }

    @Test("fp32 → BF16 rounding: nearest even, subnormals to zero, NaN kept")
    func bf16Rounding() throws {
        let x = try QGemmFixture.file.floats("round_in"), expected = try QGemmFixture.file.floats("round_out")
        for (v, e) in zip(x, expected) {
            #expect(vk_bf16_from_float(v) == UInt16(e), "\(v) (0x\(String(v.bitPattern, radix: 16)))")
        }
    }

    // MARK: Reproducibility

    static let invarianceKernels: [String] =
        QGemmFixture.q8Kernels.map { "int8 \($0)" } + QGemmFixture.bf16Kernels.map { "bf16 \($0)" }

    /// As the fp32 GEMM's test: random windows of rows (1…40 of them, at a random offset) computed with 1–4 threads
    /// give each row the same bits as the whole product on one thread — for every kernel, with C, bias and GELU.
    @Test("a row's bits do not depend on M, its position or the threads", arguments: invarianceKernels)
    func batchInvariance(kernelLabel: String) throws {
        let parts = kernelLabel.split(separator: " ", maxSplits: 1).map(String.init)
        for (m, k, n, lda) in [(197, 192, 100, 192), (70, 800, 77, 803), (45, 3072, 40, 3072)] {
            var rng = SplitMix64(state: UInt64(m * 31 + k * 7 + n))
            let a = rng.floats(m * lda, scale: 2), bt = rng.floats(n * k, scale: 0.05)
            let bias = rng.floats(n), c0 = rng.floats(m * n)
            let packed = Packed(precision: parts[0], kernel: parts[1], bt: bt, k: k, n: n)
            defer { packed.free() }
            try #require(packed.valid)
            func run(rows: Range<Int>, threads: Int32) -> [Float] {
                var out = Array(c0[(rows.lowerBound * n)..<(rows.upperBound * n)])
                a.withUnsafeBufferPointer { a in
                    bias.withUnsafeBufferPointer { b in
                        out.withUnsafeMutableBufferPointer { o in
                            packed.run(
                                rows.count, a.baseAddress! + rows.lowerBound * lda, lda, o.baseAddress!, n,
                                bias: b.baseAddress, accumulate: true, activation: 1, threads: threads)
                        }
                    }
                }
                return out
            }
            let whole = run(rows: 0..<m, threads: 1)
            for trial in 0..<16 {
                let count = 1 + Int(rng.next() % UInt64(min(m, 40))), start = Int(rng.next() % UInt64(m - count + 1))
                let threads = Int32(1 + trial % 4)
                let part = run(rows: start..<(start + count), threads: threads)
                #expect(
                    bits(part) == bits(Array(whole[(start * n)..<((start + count) * n)])),
                    "\(kernelLabel) M\(m) K\(k): rows \(start)..<\(start + count), threads \(threads)")
            }
            #expect(bits(run(rows: 0..<m, threads: 2)) == bits(whole))
        }
    }

    /// INT8 kernels of the same weight range all give the same bits (integer sums, one dequantisation order), so
    /// they agree on any input.
    @Test("INT8: all kernels of a weight range agree bit for bit on ViT-like shapes")
    func int8KernelsAgree() throws {
        for (m, k, n) in [(197, 768, 96), (33, 3072, 64), (3, 64, 2304)] {
            var rng = SplitMix64(state: UInt64(m + k + n))
            let a = rng.floats(m * k, scale: 3), bt = rng.floats(n * k, scale: 0.04), bias = rng.floats(n)
            var results: [(String, [UInt32])] = []
            for kernel in QGemmFixture.q8Kernels {
                let packed = Packed(precision: "int8", kernel: kernel, bt: bt, k: k, n: n)
                defer { packed.free() }
                var out = [Float](repeating: 0, count: m * n)
                a.withUnsafeBufferPointer { a in
                    bias.withUnsafeBufferPointer { b in
                        out.withUnsafeMutableBufferPointer { o in
                            packed.run(m, a.baseAddress!, k, o.baseAddress!, n, bias: b.baseAddress, accumulate: false,
                                       activation: 0, threads: 2)
                        }
                    }
                }
                results.append((kernel, bits(out)))
            }
            for range in [127, 63] {
                let same = results.filter { vk_q8_kernel_weight_max($0.0) == range }
                for r in same.dropFirst() { #expect(r.1 == same[0].1, "M\(m) K\(k) N\(n): \(r.0) vs \(same[0].0)") }
            }
        }
    }

    /// The largest pairwise sums vpmaddubsw can meet: rows quantised to the top level everywhere (255, or 127 in the
    /// reduced range; all equal and positive) or to 0 (all equal and negative, zero point at the top), against
    /// weights all at ±amax. With 8-bit operands the pair 255·127·2 would saturate int16; the reduced-range kernel
    /// adds two pairs in int16 (127·63·4 = 32004, the most that fits). Every kernel must give the scheme's exact
    /// integer sum S = Σ q_a·q_w − zp·Σ q_w, dequantised as fp32(S)·(s_a·s_w).
    @Test("INT8: extreme rows and weights give the exact integer sums on every kernel")
    func int8Extremes() throws {
        let m = 4, k = 256, n = 16
        // Rows: +1, −1, then +1 and −1 alternating in pairs of k (both signs in one pair sum).
        var a = [Float](repeating: 0, count: m * k)
        for j in 0..<k {
            a[j] = 1; a[k + j] = -1
            a[2 * k + j] = j % 4 < 2 ? 1 : -1; a[3 * k + j] = j % 2 == 0 ? 0.5 : 1
        }
        // Columns: all +0.5, all −0.5, then alternating signs.
        var bt = [Float](repeating: 0, count: n * k)
        for c in 0..<n { for j in 0..<k { bt[c * k + j] = c % 3 == 0 ? 0.5 : c % 3 == 1 ? -0.5 : (j % 2 == 0 ? 0.5 : -0.5) } }
        for kernel in QGemmFixture.q8Kernels {
            let packed = Packed(precision: "int8", kernel: kernel, bt: bt, k: k, n: n)
            defer { packed.free() }
            let qmax = Int(vk_q8_kernel_weight_max(kernel))
            try #require(qmax == 127 || qmax == 63)
            var out = [Float](repeating: 0, count: m * n)
            a.withUnsafeBufferPointer { a in
                out.withUnsafeMutableBufferPointer { o in
                    packed.run(m, a.baseAddress!, k, o.baseAddress!, n, bias: nil, accumulate: false, activation: 0, threads: 2)
                }
            }
            let levels = qmax == 63 ? 127 : 255
            for i in 0..<m {
                let row = a[(i * k)..<((i + 1) * k)]
                let lo = min(0, row.min()!), hi = max(0, row.max()!), range = hi - lo
                let sa = range / Float(levels), inv = Float(levels) / range
                let zp = Int(min(Float(levels), max(0, (-lo * inv).rounded(.toNearestOrEven))))
                for c in 0..<n {
                    let sw = Float(0.5) / Float(qmax)
                    var sum = 0, colsum = 0
                    for j in 0..<k {
                        let qa = min(levels, max(0, Int((row[row.startIndex + j] * inv).rounded(.toNearestOrEven)) + zp))
                        let qw = bt[c * k + j] > 0 ? qmax : -qmax
                        sum += qa * qw
                        colsum += qw
                    }
                    let expected = Float(sum - zp * colsum) * (sa * sw)
                    #expect(out[i * n + c].bitPattern == expected.bitPattern, "\(kernel) row \(i) column \(c): \(out[i * n + c]) vs \(expected)")
                }
            }
        }
    }

    // MARK: Edges and dispatch

    @Test("K = 0, M = 0, K > 65536 and NULL matrices")
    func edges() throws {
        let n = 5, m = 3
        var rng = SplitMix64(state: 9)
        let c0 = rng.floats(m * n), bias = rng.floats(n)
        for precision in ["int8", "bf16"] {
            let packed = Packed(precision: precision, kernel: nil, bt: [0], k: 0, n: n)
            defer { packed.free() }
            try #require(packed.valid)
            var out = c0
            let a: [Float] = [1, 2, 3]
            a.withUnsafeBufferPointer { a in
                bias.withUnsafeBufferPointer { b in
                    out.withUnsafeMutableBufferPointer { o in
                        packed.run(m, a.baseAddress!, 1, o.baseAddress!, n, bias: b.baseAddress, accumulate: true,
                                   activation: 0, threads: 2)
                        packed.run(0, a.baseAddress!, 1, o.baseAddress!, n, bias: b.baseAddress, accumulate: true,
                                   activation: 0, threads: 2)  // M = 0: nothing
                    }
                }
            }
            let expected = (0..<(m * n)).map { c0[$0] + bias[$0 % n] }
            #expect(bits(out) == bits(expected), "\(precision) K = 0")
        }
        #expect(vk_pack_q8_transposed([Float](repeating: 1, count: 65537), 65537, 1, 65537) == nil)
        #expect(vk_pack_q8_transposed_with([1], 1, 1, 1, "no such kernel") == nil)
        vk_gemm_q8(1, [1], 1, nil, nil, 1, nil, 0, 0, 1)  // NULL B: nothing
        vk_gemm_bf16(1, [1], 1, nil, nil, 1, nil, 0, 0, 1)
        vk_packed_q8_free(nil)
        vk_packed_bf16_free(nil)
    }

    /// The default kernels are the widest the instruction-set level allows (VITCLASSIFY_ISA narrows them), and the
    /// packed INT8 weights of ViT-B's fc1 take about a quarter of the fp32 ones.
    @Test("kernel choice follows the instruction-set level; INT8 weights ≈ ¼ of fp32")
    func dispatch() throws {
        let isa = String(cString: vk_instruction_set())
        let q8 = String(cString: vk_gemm_q8_kernel_name()), bf = String(cString: vk_gemm_bf16_kernel_name())
        #expect(QGemmFixture.q8Kernels.contains(q8) && QGemmFixture.bf16Kernels.contains(bf))
        switch isa {
        case "fallback":
            #expect(q8.hasPrefix("portable") && bf.hasPrefix("portable"))
        case "avx2":
            #expect(!q8.contains("avx512") && !q8.hasPrefix("amx") && !bf.contains("avx512") && !bf.hasPrefix("amx"))
        default:
            #expect(!q8.hasPrefix("portable") && !bf.hasPrefix("portable"))
        }
        let k = 768, n = 3072
        let bt = [Float](repeating: 0.5, count: k * n)
        let q = try #require(vk_pack_q8_transposed(bt, k, n, k)), b = try #require(vk_pack_bf16_transposed(bt, k, n, k))
        let f = try #require(vk_pack_transposed(bt, k, n, k))
        defer { vk_packed_q8_free(q); vk_packed_bf16_free(b); vk_packed_free(f) }
        #expect(Double(vk_packed_q8_bytes(q)) < 0.26 * Double(vk_packed_bytes(f)))
        #expect(Double(vk_packed_bf16_bytes(b)) < 0.51 * Double(vk_packed_bytes(f)))
    }

    /// Regression: the pool's jobs ran a phantom chunk when a worker still in the previous job read the next job's
    /// size (vit_pool.c), which made the next job's caller wait forever or ran indices twice. The INT8 / BF16 GEMMs
    /// start two jobs per call; alternating jobs of different sizes must run every index exactly once.
    @Test("pool: alternating jobs of different sizes run every index exactly once")
    func poolAlternation() {
        final class Counts: @unchecked Sendable {
            var small = [Int](repeating: 0, count: 4)
            var large = [Int](repeating: 0, count: 100)
            let lock = NSLock()
        }
        let counts = Counts()
        let bumpSmall: @convention(c) (UnsafeMutableRawPointer?, Int) -> Void = { ctx, i in
            let c = Unmanaged<Counts>.fromOpaque(ctx!).takeUnretainedValue()
            c.lock.lock()
            c.small[i] += 1
            c.lock.unlock()
        }
        let bumpLarge: @convention(c) (UnsafeMutableRawPointer?, Int) -> Void = { ctx, i in
            let c = Unmanaged<Counts>.fromOpaque(ctx!).takeUnretainedValue()
            c.lock.lock()
            c.large[i] += 1
            c.lock.unlock()
        }
        let ctx = Unmanaged.passUnretained(counts).toOpaque()
        let rounds = 20000
        for _ in 0..<rounds {
            vk_parallel_for(4, 2, bumpSmall, ctx)
            vk_parallel_for(100, 2, bumpLarge, ctx)
        }
        #expect(counts.small == [Int](repeating: rounds, count: 4))
        #expect(counts.large == [Int](repeating: rounds, count: 100))
    }
}
