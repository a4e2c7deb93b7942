#ifndef VITCLASSIFY_VIT_GEMM_H
#define VITCLASSIFY_VIT_GEMM_H

#include <stddef.h>

// Single-precision GEMM over a weight matrix packed once at load time, plus the small persistent thread pool it runs
// on (shared with the rest of the engine through vk_parallel_for).
//
// Matrices are row-major; `ld*` is the distance in floats between the starts of consecutive rows. The micro-kernel
// is chosen with the element-wise kernels' instruction set (vit_kernels.h): AVX-512 (14×32 tiles), AVX2 + FMA
// (6×16) or portable C (4×8). Every element of C is computed in an order fixed by K and that choice alone, so the
// result never depends on M, on where a row sits among the M, or on the number of threads.

/// Opaque packed weight matrix (B of C = A·B), immutable once packed: one packed matrix may be used by any number of
/// concurrent vk_gemm_packed calls.
typedef struct vk_packed vk_packed;

/// The micro-kernel in use, e.g. "avx2 6x16".
const char *vk_gemm_kernel_name(void);

/// Packs B (K rows × N columns, row-major, rows ldb floats apart, ldb ≥ N) for vk_gemm_packed. B is not referenced
/// afterwards. Returns NULL if allocation fails.
vk_packed *vk_pack(const float *B, size_t K, size_t N, size_t ldb);

/// The same from Bᵀ: `Bt` is N rows × K columns (PyTorch's [out, in] Linear layout), rows ldbt floats apart.
vk_packed *vk_pack_transposed(const float *Bt, size_t K, size_t N, size_t ldbt);

/// Frees a packed matrix (NULL is allowed).
void vk_packed_free(vk_packed *p);

/// The memory the packed matrix holds, in bytes (≈ 4·K·N rounded up to whole panels, plus a header).
size_t vk_packed_bytes(const vk_packed *p);

/// K (rows) and N (columns) of the packed matrix.
size_t vk_packed_rows(const vk_packed *p);
size_t vk_packed_cols(const vk_packed *p);

/// Activations applied in the GEMM's store epilogue.
enum {
    VK_ACT_NONE = 0,
    VK_ACT_GELU_ERF = 1,  ///< 0.5·x·(1 + erf(x/√2)), as vk_gelu
    VK_ACT_GELU_TANH = 2, ///< 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), as vk_gelu with tanh_form
    VK_ACT_QUICK_GELU = 3, ///< x·σ(1.702·x) (CLIP's QuickGELU)
    VK_ACT_SILU = 4,      ///< x·σ(x) (SiLU / Swish)
};

/// C[M×N] = A[M×K] · B  (+ C when accumulate != 0)  (+ bias[N] when bias != NULL), then the activation (VK_ACT_*),
/// applied after bias and accumulate. A rows lda floats apart (lda ≥ K), C rows ldc floats apart (ldc ≥ N); only the
/// M×N elements of C are written. C must not overlap A or bias.
/// Runs on the shared pool with up to `threads` threads (≤ 1: the calling thread only); small products use fewer, and
/// a call made while the pool is busy (e.g. from inside vk_parallel_for) runs on its own thread only.
/// Results do not depend on `threads` (every element is computed by the same code in the same order).
/// When A's rows alias in L1 (lda a multiple of 1024 floats, K > 128), blocks of A are copied into a per-thread
/// scratch buffer (≤ 0.7 MB, kept until the thread exits).
void vk_gemm_packed(size_t M, const float *A, size_t lda, const vk_packed *B, float *C, size_t ldc,
                    const float *bias, int accumulate, int activation, int threads);

/// C[M×N] = A[M×K] · (scale · B) on the calling thread, for operands that change with every call (the attention
/// products): B's element (k, c) is read at B[k·b_row_stride + c·b_col_stride] (b_col_stride = 1: B row-major;
/// b_row_stride = 1: B given as Bᵀ), multiplied by `scale` and packed into per-thread scratch (4·K·N bytes rounded
/// up to whole panels, kept until the thread exits), then multiplied by the same micro-kernel as vk_gemm_packed: each
/// element of C depends on its row of A, its column of B and K alone. A scale that is a power of two changes no bit
/// against scaling the product afterwards.
void vk_gemm(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t b_row_stride,
             size_t b_col_stride, float scale, float *C, size_t ldc);

/// The shared pool: calls fn(context, i) exactly once for every i in [0, n) on up to `threads` threads (the calling
/// thread works too; ≤ 1 runs everything on the caller, in order) and returns when all calls are done. Indices are
/// handed out dynamically in contiguous chunks. Idle workers spin for ~50 µs, then sleep on a condition variable.
/// Calls made while the pool is busy (from another thread, or nested inside fn) run serially on their own thread,
/// so nesting cannot deadlock.
void vk_parallel_for(size_t n, int threads, void (*fn)(void *context, size_t i), void *context);

/// Number of worker threads the pool has started so far (it grows on demand to threads − 1, never shrinks).
int vk_pool_workers(void);

#endif
