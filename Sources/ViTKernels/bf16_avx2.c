// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// BF16 micro-kernel for CPUs without AVX-512 BF16 (AVX2 + FMA): a 6 × 16 tile in 12 ymm fp32 accumulators. The
// panel holds pairs of k per column ([k/2][16][2] bf16); a 32-bit lane widens to the even k's fp32 (shift left 16)
// and the odd k's (mask the high half). A is prepared as BF16-rounded fp32 (VK_A_F32), so its values broadcast
// straight from memory. Each product of two bf16 values is exact in fp32, so the FMA adds it with one rounding, in
// k order: the canonical sum of vit_qgemm.h, the same bits as vdpbf16ps (bf16_avx512.c) and the portable kernel.
// See qgemm_kernels.h for the contract, qgemm.c for the driver.

#include "qgemm_kernels.h"
#include "vk_isa.h"

#ifdef VK_X86
#include <immintrin.h>

#define MR 6
#define NR 16

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)

static inline __attribute__((always_inline)) void tile(const int R, size_t kpairs, const float *a, size_t lda,
                                                       const uint16_t *b, float *c, size_t ldc, int full, __m256i m0,
                                                       __m256i m1, const vk_lp_epilogue *e) {
    __m256 acc0[MR], acc1[MR];
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = _mm256_setzero_ps();
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
    for (size_t j = 0; j < kpairs; j++) {
        __m256i x0 = _mm256_load_si256((const __m256i *)(b + j * 2 * NR));
        __m256i x1 = _mm256_load_si256((const __m256i *)(b + j * 2 * NR + 16));
        __m256 e0 = _mm256_castsi256_ps(_mm256_slli_epi32(x0, 16)), o0 = _mm256_castsi256_ps(_mm256_and_si256(x0, high));
        __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(x1, 16)), o1 = _mm256_castsi256_ps(_mm256_and_si256(x1, high));
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            __m256 ae = _mm256_broadcast_ss(a + r * lda + 2 * j), ao = _mm256_broadcast_ss(a + r * lda + 2 * j + 1);
            acc0[r] = _mm256_fmadd_ps(ae, e0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(ae, e1, acc1[r]);
            acc0[r] = _mm256_fmadd_ps(ao, o0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(ao, o1, acc1[r]);
        }
    }
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        float *row = c + r * ldc;
        if (full) {
            if (e->load_c) {
                acc0[r] = _mm256_add_ps(acc0[r], _mm256_loadu_ps(row));
                acc1[r] = _mm256_add_ps(acc1[r], _mm256_loadu_ps(row + 8));
            }
            if (e->bias) {
                acc0[r] = _mm256_add_ps(acc0[r], _mm256_loadu_ps(e->bias));
                acc1[r] = _mm256_add_ps(acc1[r], _mm256_loadu_ps(e->bias + 8));
            }
            _mm256_storeu_ps(row, acc0[r]);
            _mm256_storeu_ps(row + 8, acc1[r]);
        } else {
            if (e->load_c) {
                acc0[r] = _mm256_add_ps(acc0[r], _mm256_maskload_ps(row, m0));
                acc1[r] = _mm256_add_ps(acc1[r], _mm256_maskload_ps(row + 8, m1));
            }
            if (e->bias) {
                acc0[r] = _mm256_add_ps(acc0[r], _mm256_maskload_ps(e->bias, m0));
                acc1[r] = _mm256_add_ps(acc1[r], _mm256_maskload_ps(e->bias + 8, m1));
            }
            _mm256_maskstore_ps(row, m0, acc0[r]);
            _mm256_maskstore_ps(row + 8, m1, acc1[r]);
        }
    }
}

static void kernel(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c, size_t ldc,
                   size_t w, const vk_lp_epilogue *e) {
    int full = w >= NR;
    __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)w), lanes);
    __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)w - 8), lanes);
    size_t lda = a_stride / sizeof(float);
#define CASE(R)                                                                                                       \
    case R: tile(R, kp / 2, a, lda, b, c, ldc, full, m0, m1, e); break;
    switch (rows) {
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6)
    default: __builtin_trap();
    }
#undef CASE
}

#pragma clang attribute pop

static int usable(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

const vk_lp_kernel vk_bf16_kernel_avx2 = {.name = "avx2-bf16 6x16", .precision = VK_LP_BF16, .mr = MR, .nr = NR,
                                          .kg = 2, .kpad = 2, .a_format = VK_A_F32, .mc_tiles = 16, .usable = usable,
                                          .kernel = kernel};

#endif
