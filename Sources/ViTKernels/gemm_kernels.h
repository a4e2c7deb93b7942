// The micro-kernels of the packed GEMM, one file per instruction set (gemm_avx512.c, gemm_avx2.c, gemm_portable.c),
// each described by one vk_gemm_kernel; gemm.c packs, blocks and threads the same way for all of them.
// Internal to ViTKernels.

#ifndef VITCLASSIFY_GEMM_KERNELS_H
#define VITCLASSIFY_GEMM_KERNELS_H

#include <stddef.h>

/// C[0..rows)[0..w) = (load_c ? C : 0) + A[0..rows)[0..kc) · Bpanel[0..kc)[0..nr) (+ bias[0..w) when non-NULL),
/// summed over k in order, one accumulator per element: each element's result depends only on its own row of A, its
/// column of B and kc, never on `rows` (1 ≤ rows ≤ mr) or on which thread runs it. The panel is kc rows of nr floats
/// (64-byte aligned, zero-padded past w); only columns [0, w) of C are read or written.
/// A: rows lda floats apart, read in place; or, when `a_packed` (only for a kernel with `packed_a`), a micro-panel
/// packed by gemm.c with A[r][k] at a[k·mr + r].
typedef void (*vk_micro_kernel)(size_t rows, size_t kc, const float *a, size_t lda, int a_packed, const float *b,
                                float *c, size_t ldc, size_t w, int load_c, const float *bias);

typedef struct {
    const char *name;
    size_t mr;       ///< rows of the micro-tile
    size_t nr;       ///< columns of a packed panel
    size_t kc_max;   ///< K block: a kc × nr slice of B is reused by every row tile of a task
    size_t mc_tiles; ///< row tiles per task at most (the A block, mr·mc_tiles × kc, stays in L2)
    int packed_a;    ///< A is packed into mr-interleaved micro-panels (one contiguous stream) before the kernel
    vk_micro_kernel kernel;
} vk_gemm_kernel;

extern const vk_gemm_kernel vk_gemm_kernel_avx512;
extern const vk_gemm_kernel vk_gemm_kernel_avx2;
extern const vk_gemm_kernel vk_gemm_kernel_portable;

/// The activation (VK_ACT_*) in place over rows × cols floats, rows ld apart, at the current instruction-set level
/// (vit_kernels.c): the same GELU code as the element-wise kernels.
void vk_activate_rows(float *x, size_t rows, size_t cols, size_t ld, int activation);

/// The pool with one index per claim (vit_pool.c): for a few coarse tasks, each as long as the others.
void vk_parallel_tasks(size_t n, int threads, void (*fn)(void *context, size_t i), void *context);

#endif
