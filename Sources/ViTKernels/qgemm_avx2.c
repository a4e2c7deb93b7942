// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// INT8 micro-kernel for AVX2 CPUs without VNNI: a 6 × 16 tile in 12 ymm accumulators, with vpmaddwd on operands
// widened to 16 bits: the A rows are quantised straight to int16 (VK_A_S16), the INT8 panel ([k/2][16][2]) is
// sign-extended by vpmovsxbw as it is loaded, and each vpmaddwd adds two exact products (|q_a·q_w| ≤ 255·127) into
// 32 bits. This avoids vpmaddubsw, whose pairwise sum of two u8 × s8 products saturates at ±32767 (255·127·2 =
// 64770 does not fit): the results are exact and the same bits as the VNNI, AMX and portable kernels. See
// qgemm_kernels.h for the contract, qgemm.c for the driver.

#include "qgemm_kernels.h"
#include "vk_isa.h"

#ifdef VK_X86
#include <immintrin.h>

#define MR 6
#define NR 16

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define VK_Q8_EPILOGUE_256
#include "qgemm_epilogue.h"

static inline __attribute__((always_inline)) void tile(const int R, size_t kpairs, const unsigned char *a, size_t lda,
                                                       const int8_t *b, float *c, size_t ldc, int full, __m256i m0,
                                                       __m256i m1, int two, const vk_lp_epilogue *e) {
    __m256i acc0[MR], acc1[MR];
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = _mm256_setzero_si256();
#pragma clang loop unroll_count(2)
    for (size_t j = 0; j < kpairs; j++) {
        __m256i b0 = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(b + j * 2 * NR)));
        __m256i b1 = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(b + j * 2 * NR + 16)));
        for (int r = 0; r < R; r++) {
            int32_t pair;
            memcpy(&pair, a + r * lda + 4 * j, 4);
            __m256i av = _mm256_set1_epi32(pair);
            acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(av, b0));
            acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(av, b1));
        }
    }
    for (int r = 0; r < R; r++) {
        vk_q8_store8(acc0[r], e->zp[r], e->sa[r], e->colsum, e->sw, c + r * ldc, e->bias, e->load_c, full, m0);
        if (two)
            vk_q8_store8(acc1[r], e->zp[r], e->sa[r], e->colsum + 8, e->sw + 8, c + r * ldc + 8,
                         e->bias ? e->bias + 8 : NULL, e->load_c, full, m1);
    }
}

static void kernel(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c, size_t ldc,
                   size_t w, const vk_lp_epilogue *e) {
    int full = w >= NR, two = w > 8;
    __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)w), lanes);
    __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)w - 8), lanes);
#define CASE(R)                                                                                                       \
    case R: tile(R, kp / 2, a, a_stride, b, c, ldc, full, m0, m1, two, e); break;
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

const vk_lp_kernel vk_q8_kernel_avx2 = {.name = "avx2-madd16 6x16", .precision = VK_LP_Q8, .mr = MR, .nr = NR,
                                        .kg = 2, .kpad = 2, .a_format = VK_A_S16, .mc_tiles = 32, .usable = usable,
                                        .kernel = kernel};

#endif
