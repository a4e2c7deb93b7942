import Foundation
import Synchronization
import ViTKernels

/// The one threading policy of the forward pass.
///
/// Every parallel part — the linear layers (packed GEMM), the attention heads, the row-wise kernels — runs on one
/// shared pool (`vk_parallel_for`) with the thread count of the classifier that asked (passed down each call, never
/// stored globally), and OpenBLAS, which only serves the attention core's per-head products from inside that pool,
/// runs single-threaded: no two thread pools compete for the cores, and no library decides a summation order from the
/// thread count. When two classifiers run at once, the one that finds the pool busy runs on its own thread.
package enum Compute {
    /// One thread per core.
    static var defaultThreads: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Keeps OpenBLAS single-threaded (its own pool would compete with ours) and stops its idle workers; done once,
    /// before the first model. Every OpenBLAS call must come after it: a multi-threaded call in flight while the
    /// workers are stopped can leave OpenBLAS's worker asleep with its stop request overwritten, and the stop then
    /// waits for it forever (seen as a hung test process; tests that call cblas directly touch this first).
    package static let prepared: Void = { BLAS.runSingleThreaded() }()

    /// Calls `body(i)` for every i in 0..<n, spread over up to `threads` threads of the pool; returns when all are
    /// done.
    static func parallelFor(_ n: Int, threads: Int, _ body: (Int) -> Void) {
        guard n > 1 && threads > 1 else {
            for i in 0..<n { body(i) }
            return
        }
        // The closure travels to the C pool as a pointer to this stack frame's copy: no allocation per call.
        withoutActuallyEscaping(body) { body in
            var body = body
            withUnsafeMutablePointer(to: &body) { pointer in
                vk_parallel_for(
                    n, Int32(threads),
                    { context, i in
                        context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(i))
                    }, pointer)
            }
        }
    }

    /// Calls `body(i, slot)` for every i in 0..<n, spread over up to `threads` threads of the pool, handed out one at
    /// a time; `slot` (0..<threads) is the running thread's own, never shared by two calls at once (for per-thread
    /// scratch). Returns when all are done.
    static func parallelFor(_ n: Int, threads: Int, _ body: (_ item: Int, _ slot: Int) -> Void) {
        let parts = min(n, threads)
        guard parts > 1 else {
            for i in 0..<n { body(i, 0) }
            return
        }
        let next = Atomic<Int>(0)
        parallelFor(parts, threads: parts) { slot in
            while case let item = next.wrappingAdd(1, ordering: .relaxed).oldValue, item < n { body(item, slot) }
        }
    }

    /// Splits `rows` rows into one contiguous range per thread (all on the caller when there are few).
    static func parallelRows(_ rows: Int, threads: Int, minimum: Int = 64, _ body: (Range<Int>) -> Void) {
        let parts = rows >= minimum ? min(threads, rows / (minimum / 2)) : 1
        guard parts > 1 else { return body(0..<rows) }
        parallelFor(parts, threads: threads) { part in body((rows * part / parts)..<(rows * (part + 1) / parts)) }
    }
}
