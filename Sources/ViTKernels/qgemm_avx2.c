// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// INT8 micro-kernels for AVX2 CPUs without VNNI, both 6 × 16 tiles in 12 ymm accumulators (see qgemm_kernels.h for
// the contract, qgemm.c for the driver):
// - "avx2-maddubs7 6x16" (the default there): the reduced-range scheme, 7-bit activations ([0, 127]) and 7-bit weights
//   ([−63, 63]), so that vpmaddubsw's pairwise int16 sums cannot saturate and two of them can be added in int16
//   before one vpmaddwd widens them (vit_qgemm.h). Faster than the kernel below by 1.38–1.40× with 8-bit rows
//   (QGEMM.md), and the 7-bit rows' int16 addition added 1.08–1.20× (BENCHMARKS.md, "7-bit activations").
// - "avx2-madd16 6x16": the 8-bit scheme, exact without vpmaddubsw: the A rows are quantised straight to int16
//   (VK_A_S16), the INT8 panel ([k/2][16][2]) is sign-extended by vpmovsxbw as it is loaded, and each vpmaddwd adds
//   two exact products (|q_a·q_w| ≤ 255·127) into 32 bits: the same bits as the VNNI, AMX and portable kernels.

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
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = _mm256_setzero_si256();
#pragma clang loop unroll_count(2)
    for (size_t j = 0; j < kpairs; j++) {
        __m256i b0 = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(b + j * 2 * NR)));
        __m256i b1 = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(b + j * 2 * NR + 16)));
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            int32_t pair;
            memcpy(&pair, a + r * lda + 4 * j, 4);
            __m256i av = _mm256_set1_epi32(pair);
            acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(av, b0));
            acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(av, b1));
        }
    }
    vk_q8_store_tile16(R, acc0, acc1, c, ldc, full, m0, m1, two, e);
}

static void kernel(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c, size_t ldc,
                   size_t w, const vk_lp_epilogue *e) {
    VK_Q8_MICRO_6X16(tile, 2)
}

// ---- vpmaddubsw 6 × 16, 7-bit activations and weights ------------------------------------------------------------
// B: groups of 4 k per column (kg 4), so a k-quad of the panel is two vectors (columns 0-7, 8-15). Per k-oct (two
// quads) and row: 2 broadcasts of 4 A bytes; per B vector, two vpmaddubsw (u8 × s8, adjacent pairs summed to int16,
// each at most 127·63·2 = 16002), their vpaddw (at most 32004 < 32767: exact, no saturation anywhere), one vpmaddwd
// by ones (to int32) and one vpaddd: 3 multiply-port instructions per 64 multiply-adds where 8-bit activations need
// 4 (vpmaddubsw + vpmaddwd per quad). B and the ones are memory operands: 12 accumulators, 2 broadcasts and 2
// temporaries fill the 16 registers (the empty asm hides that the pointers are loop-invariant, so the compiler keeps
// them in memory instead of spilling an accumulator).

static inline __attribute__((always_inline)) void tile_ubs7(const int R, size_t ko, const unsigned char *a, size_t lda,
                                                            const int8_t *b, float *c, size_t ldc, int full,
                                                            __m256i m0, __m256i m1, int two, const vk_lp_epilogue *e) {
    __m256i acc0[MR], acc1[MR];
    static const int16_t ones_mem[16] __attribute__((aligned(32))) = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = _mm256_setzero_si256();
    for (size_t o = 0; o < ko; o++) {
        const __m256i *bq = (const __m256i *)(b + o * 8 * NR);
        // Unrolled over the rows, so that the accumulators stay in registers (clang at -O2, SwiftPM's level for C,
        // otherwise keeps a loop over them in memory).
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            int32_t q0, q1;
            memcpy(&q0, a + r * lda + 8 * o, 4);
            memcpy(&q1, a + r * lda + 8 * o + 4, 4);
            __m256i a0 = _mm256_set1_epi32(q0), a1 = _mm256_set1_epi32(q1);
            const __m256i *bp = bq;
            const __m256i *op = (const __m256i *)ones_mem;
            __asm__ volatile("" : "+r"(bp), "+r"(op));
            __m256i s0 = _mm256_add_epi16(_mm256_maddubs_epi16(a0, _mm256_load_si256(bp)),
                                          _mm256_maddubs_epi16(a1, _mm256_load_si256(bp + 2)));
            __m256i s1 = _mm256_add_epi16(_mm256_maddubs_epi16(a0, _mm256_load_si256(bp + 1)),
                                          _mm256_maddubs_epi16(a1, _mm256_load_si256(bp + 3)));
            acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(s0, _mm256_load_si256(op)));
            acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(s1, _mm256_load_si256(op)));
        }
    }
    vk_q8_store_tile16(R, acc0, acc1, c, ldc, full, m0, m1, two, e);
}

static void kernel_ubs7(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c, size_t ldc,
                        size_t w, const vk_lp_epilogue *e) {
    VK_Q8_MICRO_6X16(tile_ubs7, 8)
}

#pragma clang attribute pop

static int usable(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

const vk_lp_kernel vk_q8_kernel_avx2 = {.name = "avx2-madd16 6x16", .precision = VK_LP_Q8, .mr = MR, .nr = NR,
                                        .kg = 2, .kpad = 2, .a_format = VK_A_S16, .mc_tiles = 32, .usable = usable,
                                        .kernel = kernel};

// 34 row tiles: one 197-token image is one row block, so the weights stream once per GEMM (see gemm_avx2.c).
const vk_lp_kernel vk_q8_kernel_avx2_maddubs = {.name = "avx2-maddubs7 6x16", .precision = VK_LP_Q8, .mr = MR,
                                                .nr = NR, .kg = 4, .kpad = 8, .a_format = VK_A_U7, .mc_tiles = 34,
                                                .q8_max = 63, .usable = usable, .kernel = kernel_ubs7};

#endif
