// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// BF16 micro-kernel with vdpbf16ps (AVX-512 BF16): a 14 × 32 tile in 28 zmm fp32 accumulators; per pair of k,
// 2 zmm loads of B (16 columns × 2 bf16 each), 14 broadcasts of an A pair, 28 vdpbf16ps. vdpbf16ps adds the odd
// element's product first, then the even one's (each exact, each sum rounded: measured bit for bit against that
// model), so A and B store every pair swapped (VK_A_BF16_SWAPPED, b_swapped): k = 2j is added before 2j + 1 — the
// canonical k order of vit_qgemm.h, the same bits as the AVX2 and portable kernels. See qgemm_kernels.h for the
// contract, qgemm.c for the driver.

#include "qgemm_kernels.h"
#include "vk_isa.h"

#ifdef VK_X86
#include <immintrin.h>

#define MR 14
#define NR 32

#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16,avx2,fma"))), apply_to = function)

static inline __attribute__((always_inline)) void tile(const int R, size_t kpairs, const unsigned char *a, size_t lda,
                                                       const uint16_t *b, float *c, size_t ldc, __mmask16 m0,
                                                       __mmask16 m1, const vk_lp_epilogue *e) {
    __m512 acc0[MR], acc1[MR];
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = _mm512_setzero_ps();
    for (size_t j = 0; j < kpairs; j++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(b + j * 2 * NR), b1 = (__m512bh)_mm512_load_si512(b + j * 2 * NR + 32);
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            int32_t pair;
            memcpy(&pair, a + r * lda + 4 * j, 4);
            __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
            acc0[r] = _mm512_dpbf16_ps(acc0[r], av, b0);
            acc1[r] = _mm512_dpbf16_ps(acc1[r], av, b1);
        }
    }
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        float *row = c + r * ldc;
        if (e->load_c) {
            acc0[r] = _mm512_add_ps(acc0[r], _mm512_maskz_loadu_ps(m0, row));
            acc1[r] = _mm512_add_ps(acc1[r], _mm512_maskz_loadu_ps(m1, row + 16));
        }
        if (e->bias) {
            acc0[r] = _mm512_add_ps(acc0[r], _mm512_maskz_loadu_ps(m0, e->bias));
            acc1[r] = _mm512_add_ps(acc1[r], _mm512_maskz_loadu_ps(m1, e->bias + 16));
        }
        _mm512_mask_storeu_ps(row, m0, acc0[r]);
        _mm512_mask_storeu_ps(row + 16, m1, acc1[r]);
    }
}

static void kernel(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c, size_t ldc,
                   size_t w, const vk_lp_epilogue *e) {
    __mmask16 m0 = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
    __mmask16 m1 = w >= 32 ? (__mmask16)0xFFFF : w > 16 ? (__mmask16)((1u << (w - 16)) - 1) : 0;
#define CASE(R)                                                                                                       \
    case R: tile(R, kp / 2, a, a_stride, b, c, ldc, m0, m1, e); break;
    switch (rows) {
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11) CASE(12) CASE(13)
        CASE(14)
    default: __builtin_trap();
    }
#undef CASE
}

#pragma clang attribute pop

static int usable(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bf16");
}

const vk_lp_kernel vk_bf16_kernel_avx512 = {.name = "avx512-bf16 14x32", .precision = VK_LP_BF16, .mr = MR, .nr = NR,
                                            .kg = 2, .kpad = 2, .b_swapped = 1, .a_format = VK_A_BF16_SWAPPED,
                                            .mc_tiles = 16, .usable = usable, .kernel = kernel};

#endif
