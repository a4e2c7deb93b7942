import CBLAS
import Foundation
import Synchronization
import Testing
import ViTKernels
import ViTKit

struct GemmCase: CustomTestStringConvertible, Sendable {
    var m: Int, k: Int, n: Int
    var lda: Int? = nil
    var ldc: Int? = nil
    var accumulate = false
    var bias = false
    var activation: Int32 = 0
    var threads: [Int32] = [1, 2]

    var testDescription: String {
        var s = "M\(m) K\(k) N\(n)"
        if let lda { s += " lda\(lda)" }
        if let ldc { s += " ldc\(ldc)" }
        if accumulate { s += " +C" }
        if bias { s += " +bias" }
        if activation != 0 { s += activation == 1 ? " gelu-erf" : " gelu-tanh" }
        return s + " threads\(threads)"
    }
}

/// vk_gemm_packed against cblas_sgemm (+ bias and vk_gelu for the epilogue), on the kernel path this process runs
/// (`VITCLASSIFY_ISA` narrows it; CI runs the suite on every path).
@Suite("Packed GEMM and thread pool")
struct GemmTests {
    // Odd sizes around every path's micro-tile (14×32, 6×16, 4×8), vector widths and K blocks (768, 384, 512); the
    // AVX2 path packs A (four columns at a time, then the rest) when B has ≥ 8 panels: (7, 130) and (129, 130).
    static let sweep: [GemmCase] = {
        let ms = [1, 3, 4, 5, 6, 7, 13, 14, 15, 31, 33, 50, 197, 1000]
        let kns = [(1, 1), (7, 33), (13, 64), (129, 7), (64, 200), (385, 50), (800, 31), (33, 100), (31, 15), (14, 16),
                   (7, 130), (129, 130)]
        return ms.flatMap { m in kns.map { GemmCase(m: m, k: $0.0, n: $0.1) } }
    }()

    static let modes: [GemmCase] = [(197, 192, 576), (50, 385, 33), (15, 800, 100), (1000, 64, 64)].flatMap { s in
        [false, true].flatMap { accumulate in
            [false, true].flatMap { bias in
                [Int32(0), 1, 2].map { GemmCase(m: s.0, k: s.1, n: s.2, accumulate: accumulate, bias: bias, activation: $0) }
            }
        }
    }

    static let strided: [GemmCase] = [
        GemmCase(m: 197, k: 300, n: 70, lda: 1024, ldc: 75, bias: true),  // lda aliases in L1: A is copied first
        GemmCase(m: 33, k: 64, n: 64, lda: 100, ldc: 77, accumulate: true),
        GemmCase(m: 14, k: 129, n: 32, lda: 130, ldc: 40, bias: true, activation: 1),
        GemmCase(m: 1000, k: 50, n: 17, lda: 64, ldc: 19, bias: true, activation: 2),
        GemmCase(m: 300, k: 2048, n: 48, lda: 2048, ldc: 48, accumulate: true),  // aliasing lda = K, 3 K blocks
        GemmCase(m: 5, k: 0, n: 20, ldc: 21, accumulate: true, bias: true),
        GemmCase(m: 6, k: 0, n: 40, bias: true, activation: 1),
        GemmCase(m: 7, k: 3, n: 5, threads: [3, 8]),
        GemmCase(m: 500, k: 100, n: 300, bias: true, activation: 1, threads: [1, 2, 3, 4, 8]),
    ]

    // The forward pass's shapes (ViT-B/16 batch 1 and 8; the small model's fc1 with its GELU).
    static let vit: [GemmCase] = [
        GemmCase(m: 197, k: 768, n: 2304, bias: true),
        GemmCase(m: 197, k: 3072, n: 768, bias: true),
        GemmCase(m: 197, k: 768, n: 3072, bias: true, activation: 1),
        GemmCase(m: 197, k: 768, n: 768, accumulate: true),
        GemmCase(m: 3200, k: 64, n: 128, bias: true, activation: 2),
        GemmCase(m: 1576, k: 3072, n: 768, bias: true),  // ViT-B/16 fc2 at batch 8: several packed-A passes
    ]

    // Every element's bits must not depend on M, on the row's place among the M, or on the threads.
    static let invariance: [GemmCase] = [
        GemmCase(m: 197, k: 192, n: 576, bias: true),
        GemmCase(m: 50, k: 3072, n: 77, lda: 3072, accumulate: true, bias: true),  // A copied (aliasing lda)
        GemmCase(m: 394, k: 800, n: 100, bias: true, activation: 1),
        GemmCase(m: 120, k: 64, n: 128, accumulate: true, bias: true, activation: 2),
        // Taller than one pass of a packed-A kernel (4 MB of packed A: 1,020 rows of K = 1,024): the whole product
        // runs in two passes, each sub-batch in one.
        GemmCase(m: 1600, k: 1024, n: 40, bias: true),
    ]

    /// Runs one case for each of its thread counts; checks every element against the reference within
    /// 1e-5 · (Σₖ|a·b| + |c₀| + |bias|), that the columns between N and ldc are untouched, and that every thread count
    /// gives bit-identical results.
    static func check(_ c: GemmCase) throws {
        let lda = c.lda ?? max(c.k, 1), ldc = c.ldc ?? c.n, ldb = c.n + 3
        var rng = SplitMix64(state: UInt64(c.m * 1_000_003 + c.k * 1009 + c.n * 7 + lda + ldc))
        let a = rng.floats(c.m * lda)  // padding columns too: they must not be read into the result
        let b = rng.floats(max(c.k, 1) * ldb)
        let biasValues = c.bias ? rng.floats(c.n) : [Float](repeating: 0, count: c.n)
        let c0 = rng.floats(c.m * ldc)

        // Reference: the product (plus C) by OpenBLAS, then bias and activation by the element-wise kernels. OpenBLAS
        // single-threaded first, as the library sets it up (a threaded call racing that set-up can hang the process).
        _ = Compute.prepared
        var expected = [Float](repeating: 0, count: c.m * c.n)
        if c.accumulate { for i in 0..<c.m { for j in 0..<c.n { expected[i * c.n + j] = c0[i * ldc + j] } } }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(c.m), blasint(c.n), blasint(c.k), 1, a, blasint(lda), b,
            blasint(ldb), c.accumulate ? 1 : 0, &expected, blasint(c.n))
        for i in 0..<c.m { for j in 0..<c.n { expected[i * c.n + j] += biasValues[j] } }
        if c.activation != 0 { vk_gelu(&expected, c.m, c.n, c.n, c.activation == 2 ? 1 : 0) }
        // Scale: Σₖ |a|·|b| (by BLAS on absolute values) + |c₀| + |bias|.
        var scale = [Float](repeating: 0, count: c.m * c.n)
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(c.m), blasint(c.n), blasint(c.k), 1, a.map(abs),
            blasint(lda), b.map(abs), blasint(ldb), 0, &scale, blasint(c.n))

        let packed = try #require(vk_pack(b, c.k, c.n, ldb))
        defer { vk_packed_free(packed) }
        #expect(vk_packed_rows(packed) == c.k && vk_packed_cols(packed) == c.n)
        #expect(vk_packed_bytes(packed) >= 4 * c.k * c.n)

        var first: [Float]? = nil
        for threads in c.threads {
            var out = c0
            biasValues.withUnsafeBufferPointer { biasPointer in
                vk_gemm_packed(
                    c.m, a, lda, packed, &out, ldc, c.bias ? biasPointer.baseAddress : nil, c.accumulate ? 1 : 0,
                    c.activation, threads)
            }
            var bad = 0, worst: Float = 0
            for i in 0..<c.m {
                for j in 0..<c.n {
                    var s = scale[i * c.n + j] + abs(biasValues[j])
                    if c.accumulate { s += abs(c0[i * ldc + j]) }
                    let e = abs(out[i * ldc + j] - expected[i * c.n + j])
                    if !(e <= 1e-5 * s + Float.leastNormalMagnitude) { bad += 1 }
                    if s > 0 { worst = max(worst, e / s) }
                }
                for j in c.n..<ldc where out[i * ldc + j] != c0[i * ldc + j] { bad += 1 }
            }
            #expect(bad == 0, "threads \(threads): \(bad) bad elements, worst error / scale \(worst)")
            if let first { #expect(out == first, "threads \(threads) differs from threads \(c.threads[0])") } else { first = out }
        }
    }

    @Test("odd shapes against cblas_sgemm", arguments: sweep)
    func shapes(c: GemmCase) throws { try Self.check(c) }

    @Test("accumulate, bias and both GELUs", arguments: modes)
    func epilogue(c: GemmCase) throws { try Self.check(c) }

    @Test("lda > K, ldc > N, K = 0, more threads than work", arguments: strided)
    func strides(c: GemmCase) throws { try Self.check(c) }

    @Test("ViT shapes", arguments: vit)
    func vitShapes(c: GemmCase) throws { try Self.check(c) }

    @Test("packing Bᵀ equals packing B")
    func transposedPacking() throws {
        let k = 77, n = 45, m = 20
        var rng = SplitMix64(state: 42)
        let b = rng.floats(k * n), a = rng.floats(m * k)
        let bt = (0..<n * k).map { b[($0 % k) * n + $0 / k] }  // bt[j][kk] = b[kk][j]
        let p1 = try #require(vk_pack(b, k, n, n)), p2 = try #require(vk_pack_transposed(bt, k, n, k))
        defer { vk_packed_free(p1); vk_packed_free(p2) }
        var c1 = [Float](repeating: 0, count: m * n), c2 = c1
        vk_gemm_packed(m, a, k, p1, &c1, n, nil, 0, 0, 1)
        vk_gemm_packed(m, a, k, p2, &c2, n, nil, 0, 0, 1)
        #expect(c1 == c2)
    }

    /// vk_gemm (the attention products: B given per call, through strides, times a scale) is vk_gemm_packed of the
    /// scaled B, bit for bit, whether B or Bᵀ is given; with a power-of-two scale it is also the unscaled product
    /// times the scale, bit for bit (the attention scale 1/√d_k of d_k = 16, 64).
    @Test(
        "per-call B, strided and scaled, equals the packed product",
        arguments: [(50, 50, 16), (50, 16, 50), (1, 50, 16), (1, 64, 197), (64, 197, 64), (197, 64, 197), (7, 40, 1000)])
    func stridedB(shape: (Int, Int, Int)) throws {
        let (m, n, k) = shape, lda = k + 5, ldb = n + 7, ldbt = k + 3, ldc = n + 2
        var rng = SplitMix64(state: UInt64(m * 7919 + n * 31 + k))
        let a = rng.floats(m * lda), b = rng.floats(k * ldb)
        var bt = [Float](repeating: .nan, count: n * ldbt)  // bt[j][kk] = b[kk][j]
        for kk in 0..<k { for j in 0..<n { bt[j * ldbt + kk] = b[kk * ldb + j] } }
        for scale: Float in [1, 0.125, 0.3] {
            let scaled = b.map { scale * $0 }
            let packed = try #require(vk_pack(scaled, k, n, ldb))
            defer { vk_packed_free(packed) }
            var expected = [Float](repeating: 0, count: m * ldc)
            vk_gemm_packed(m, a, lda, packed, &expected, ldc, nil, 0, 0, 1)
            var direct = [Float](repeating: 0, count: m * ldc), transposed = direct
            vk_gemm(m, n, k, a, lda, b, ldb, 1, scale, &direct, ldc)
            vk_gemm(m, n, k, a, lda, bt, 1, ldbt, scale, &transposed, ldc)
            #expect(direct == expected, "B, scale \(scale)")
            #expect(transposed == expected, "Bᵀ, scale \(scale)")
            if scale == 0.125 {
                var unscaled = [Float](repeating: 0, count: m * ldc)
                vk_gemm(m, n, k, a, lda, b, ldb, 1, 1, &unscaled, ldc)
                #expect(unscaled.map { 0.125 * $0 } == direct)
            }
        }
    }

    /// Random sub-batches (a window of rows, 1…M of them, at a random offset) computed with 1–4 threads give each
    /// row the same bits as the whole product with one thread.
    @Test("a row's bits do not depend on M, its position or the threads", arguments: invariance)
    func batchInvariance(c: GemmCase) throws {
        let lda = c.lda ?? c.k
        var rng = SplitMix64(state: UInt64(c.m * 31 + c.k * 7 + c.n))
        let a = rng.floats(c.m * lda), b = rng.floats(c.k * c.n), bias = rng.floats(c.n), c0 = rng.floats(c.m * c.n)
        let packed = try #require(vk_pack(b, c.k, c.n, c.n))
        defer { vk_packed_free(packed) }
        func run(rows: Range<Int>, threads: Int32) -> [Float] {
            var out = Array(c0[(rows.lowerBound * c.n)..<(rows.upperBound * c.n)])
            a.withUnsafeBufferPointer { a in
                vk_gemm_packed(
                    rows.count, a.baseAddress! + rows.lowerBound * lda, lda, packed, &out, c.n,
                    c.bias ? bias : nil, c.accumulate ? 1 : 0, c.activation, threads)
            }
            return out
        }
        let whole = run(rows: 0..<c.m, threads: 1)
        for trial in 0..<24 {
            let count = 1 + Int(rng.next() % UInt64(min(c.m, 40))), start = Int(rng.next() % UInt64(c.m - count + 1))
            let threads = Int32(1 + trial % 4)
            let part = run(rows: start..<(start + count), threads: threads)
            #expect(
                part == Array(whole[(start * c.n)..<((start + count) * c.n)]),
                "rows \(start)..<\(start + count), threads \(threads)")
        }
        #expect(run(rows: 0..<c.m, threads: 3) == whole)
    }

    // MARK: thread pool

    /// One atomic counter per index.
    final class Counters: @unchecked Sendable {
        let base: UnsafeMutablePointer<Atomic<Int>>
        let count: Int
        init(_ count: Int) {
            self.count = count
            base = .allocate(capacity: max(count, 1))
            for i in 0..<count { (base + i).initialize(to: Atomic(0)) }
        }
        deinit {
            base.deinitialize(count: count)
            base.deallocate()
        }
        func bump(_ i: Int) { base[i].wrappingAdd(1, ordering: .relaxed) }
        func value(_ i: Int) -> Int { base[i].load(ordering: .relaxed) }
        var all: [Int] { (0..<count).map(value) }
    }

    static let bump: @convention(c) (UnsafeMutableRawPointer?, Int) -> Void = { context, i in
        Unmanaged<Counters>.fromOpaque(context!).takeUnretainedValue().bump(i)
    }

    static func parallelFor(_ n: Int, threads: Int32, _ counters: Counters) {
        vk_parallel_for(n, threads, bump, Unmanaged.passUnretained(counters).toOpaque())
    }

    @Test("parallel_for calls every index exactly once", arguments: [0, 1, 2, 3, 5, 64, 1000, 100_003])
    func coverage(n: Int) {
        for threads: Int32 in [0, 1, 2, 3, 4, 8] {
            for _ in 0..<3 {
                let counters = Counters(n)
                Self.parallelFor(n, threads: threads, counters)
                #expect(counters.all == [Int](repeating: 1, count: n), "n \(n), threads \(threads)")
            }
        }
    }

    @Test("parallel_for with threads 1 runs in order on the caller")
    func serialOrder() {
        final class Log: @unchecked Sendable {
            var indices: [Int] = []
            let thread = pthread_self()
            var otherThread = false
        }
        let log = Log()
        let record: @convention(c) (UnsafeMutableRawPointer?, Int) -> Void = { context, i in
            let log = Unmanaged<Log>.fromOpaque(context!).takeUnretainedValue()
            log.indices.append(i)
            if pthread_equal(pthread_self(), log.thread) == 0 { log.otherThread = true }
        }
        vk_parallel_for(100, 1, record, Unmanaged.passUnretained(log).toOpaque())
        #expect(log.indices == Array(0..<100))
        #expect(!log.otherThread)
    }

    @Test("nested and concurrent parallel_for calls run every index once")
    func nestedAndConcurrent() {
        // Nested: each outer index runs an inner parallel_for over its own row of counters.
        final class Grid: @unchecked Sendable {
            let rows: [Counters]
            init(_ r: Int, _ c: Int) { rows = (0..<r).map { _ in Counters(c) } }
        }
        let grid = Grid(16, 257)
        let outer: @convention(c) (UnsafeMutableRawPointer?, Int) -> Void = { context, i in
            let grid = Unmanaged<Grid>.fromOpaque(context!).takeUnretainedValue()
            GemmTests.parallelFor(grid.rows[i].count, threads: 2, grid.rows[i])
        }
        vk_parallel_for(16, 2, outer, Unmanaged.passUnretained(grid).toOpaque())
        for row in grid.rows { #expect(row.all == [Int](repeating: 1, count: 257)) }

        // Concurrent callers: whoever finds the pool busy runs serially; all indices still run once.
        let counters = (0..<6).map { _ in Counters(20_000) }
        DispatchQueue.concurrentPerform(iterations: counters.count) { t in
            for _ in 0..<5 { Self.parallelFor(20_000, threads: 2, counters[t]) }
        }
        for c in counters { #expect(c.all == [Int](repeating: 5, count: 20_000)) }
        #expect(vk_pool_workers() >= 1)
    }
}
