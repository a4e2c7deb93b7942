#ifndef VITCLASSIFY_VIT_GEMM_H
#define VITCLASSIFY_VIT_GEMM_H

#include <stddef.h>

// Single-precision GEMM over a weight matrix packed once at load time, with an AVX-512 micro-kernel, plus the small
// persistent thread pool it runs on (shared with the rest of the engine through vk_parallel_for).
//
// Matrices are row-major; `ld*` is the distance in floats between the starts of consecutive rows. The GEMM exists
// only on x86-64 CPUs with AVX-512 (F, DQ, BW, VL): elsewhere vk_pack returns NULL and the caller keeps using BLAS.
// The pool works on every CPU.

/// Opaque packed weight matrix (B of C = A·B), immutable once packed: one packed matrix may be used by any number of
/// concurrent vk_gemm_packed calls.
typedef struct vk_packed vk_packed;

/// 1 when this CPU (and OS) can run the packed GEMM, 0 when callers must fall back to BLAS. Decided once, on first
/// use; setting the environment variable VITCLASSIFY_NO_PACKED_GEMM (to anything but "" or "0") forces 0, to
/// exercise the BLAS fallback on an AVX-512 machine.
int vk_gemm_supported(void);

/// Packs B (K rows × N columns, row-major, rows ldb floats apart, ldb ≥ N) for vk_gemm_packed. B is not referenced
/// afterwards. Returns NULL if the CPU has no AVX-512 (caller falls back to BLAS) or allocation fails.
vk_packed *vk_pack(const float *B, size_t K, size_t N, size_t ldb);

/// The same from Bᵀ: `Bt` is N rows × K columns (PyTorch's [out, in] Linear layout), rows ldbt floats apart.
vk_packed *vk_pack_transposed(const float *Bt, size_t K, size_t N, size_t ldbt);

/// Frees a packed matrix (NULL is allowed).
void vk_packed_free(vk_packed *p);

/// The memory the packed matrix holds, in bytes (≈ 4·K·N rounded up to whole 32-column panels, plus a header).
size_t vk_packed_bytes(const vk_packed *p);

/// K (rows) and N (columns) of the packed matrix.
size_t vk_packed_rows(const vk_packed *p);
size_t vk_packed_cols(const vk_packed *p);

/// Activations applied in the GEMM's store epilogue.
enum {
    VK_ACT_NONE = 0,
    VK_ACT_GELU_ERF = 1,  ///< 0.5·x·(1 + erf(x/√2)), erf as vk_add_bias_gelu (Eigen/XLA rational, clamped to ±4)
    VK_ACT_GELU_TANH = 2, ///< 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), as vk_add_bias_gelu_tanh
};

/// C[M×N] = A[M×K] · B  (+ C when accumulate != 0)  (+ bias[N] when bias != NULL), then the activation (VK_ACT_*),
/// applied after bias and accumulate. A rows lda floats apart (lda ≥ K), C rows ldc floats apart (ldc ≥ N); only the
/// M×N elements of C are written. C must not overlap A or bias.
/// Runs on the shared pool with up to `threads` threads (≤ 1: the calling thread only); small products use fewer, and
/// a call made while the pool is busy (e.g. from inside vk_parallel_for) runs on its own thread only.
/// Results do not depend on `threads` (every element is computed by the same code in the same order).
/// When A's rows alias in L1 (lda a multiple of 1024 floats, K > 128), blocks of A are copied into a per-thread
/// scratch buffer (≤ 224 × 784 floats, 0.7 MB, kept until the thread exits).
void vk_gemm_packed(size_t M, const float *A, size_t lda, const vk_packed *B, float *C, size_t ldc,
                    const float *bias, int accumulate, int activation, int threads);

/// The shared pool: calls fn(context, i) exactly once for every i in [0, n) on up to `threads` threads (the calling
/// thread works too; ≤ 1 runs everything on the caller, in order) and returns when all calls are done. Indices are
/// handed out dynamically in contiguous chunks. Idle workers spin for ~50 µs, then sleep on a condition variable.
/// Calls made while the pool is busy (from another thread, or nested inside fn) run serially on their own thread,
/// so nesting cannot deadlock.
void vk_parallel_for(size_t n, int threads, void (*fn)(void *context, size_t i), void *context);

/// Number of worker threads the pool has started so far (it grows on demand to threads − 1, never shrinks).
int vk_pool_workers(void);

#endif
