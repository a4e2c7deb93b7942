#if canImport(Accelerate)
    import Accelerate
#else
    import CBLAS
#endif

/// The BLAS calls of the forward pass (OpenBLAS's cblas; Accelerate's on Apple's systems), row-major throughout.
enum BLAS {
    /// C = alpha · op(A) · op(B) + beta · C, with op(X) = Xᵀ when the matching flag is set.
    ///
    /// The corresponding C function is `cblas_sgemm()`.
    @inline(__always)
    static func gemm(
        _ m: Int, _ n: Int, _ k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The same in double precision (`cblas_dgemm()`), for the explanation products (rollout, relevance).
    @inline(__always)
    static func gemm(
        _ m: Int, _ n: Int, _ k: Int, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
        c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, c,
            Int32(ldc))
    }

    /// Makes OpenBLAS single-threaded and stops the worker threads it started at load (they would spin for ~0.1 s).
    static func runSingleThreaded() {
        #if !canImport(Accelerate)
            openblas_set_num_threads(1)
            blas_thread_shutdown_()
        #endif
    }

    static var configuration: String {
        #if canImport(Accelerate)
            "Accelerate"
        #else
            String(cString: openblas_get_config())
        #endif
    }
}
