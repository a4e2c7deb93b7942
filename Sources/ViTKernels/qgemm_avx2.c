// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// INT8 micro-kernels for AVX2 CPUs without VNNI, both 6 × 16 tiles in 12 ymm accumulators (see qgemm_kernels.h for
// the contract, qgemm.c for the driver):
// - "avx2-maddubs 6x16" (the default there): vpmaddubsw + vpmaddwd + vpaddd on the uint8 rows and INT8 panels in
//   groups of 4 k, with reduced-range (7-bit) weights so that vpmaddubsw's pairwise int16 sums cannot saturate
//   (vit_qgemm.h). ~1.35× the speed of the kernel below.
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
    vk_q8_store_tile16(R, acc0, acc1, c, ldc, full, m0, m1, two, e);
}

static void kernel(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c, size_t ldc,
                   size_t w, const vk_lp_epilogue *e) {
    VK_Q8_MICRO_6X16(tile, 2)
}

// ---- vpmaddubsw 6 × 16, reduced-range weights ----------------------------------------------------------------------
// Per k-quad: 6 broadcasts of 4 A bytes (u8), and for each of the 2 B vectors (8 columns × 4 k, s8) and each row:
// vpmaddubsw (u8 × s8, adjacent pairs summed to int16), vpmaddwd by ones (pairs of those to int32), vpaddd. The
// pairwise int16 sum saturates for 8-bit weights (255·127·2 = 64770 > 32767); with weights in [−63, 63]
// (q8_max = 63, the "reduce_range" of ONNX Runtime's quantiser) it is at most 255·63·2 = 32130, so the sums are
// exact: the INT8 scheme with 7-bit weights, emulated as such by tools/qgemm_reference.py.

static inline __attribute__((always_inline)) void tile_ubs(const int R, size_t kq, const unsigned char *a, size_t lda,
                                                           const int8_t *b, float *c, size_t ldc, int full,
                                                           __m256i m0, __m256i m1, int two, const vk_lp_epilogue *e) {
    __m256i acc0[MR], acc1[MR];
    const __m256i ones = _mm256_set1_epi16(1);
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = _mm256_setzero_si256();
    for (size_t q = 0; q < kq; q++) {
        const __m256i *bq = (const __m256i *)(b + q * 4 * NR);
        for (int r = 0; r < R; r++) {
            int32_t quad;
            memcpy(&quad, a + r * lda + 4 * q, 4);
            __m256i av = _mm256_set1_epi32(quad);
            // B is read from memory by every row's vpmaddubsw (an operand, not a register): 12 accumulators, the
            // ones, the broadcast and one temporary fill the 16 ymm registers. The empty asm hides that bp equals
            // bq, so the compiler does not keep the two B vectors in registers and spill an accumulator instead.
            const __m256i *bp = bq;
            __asm__ volatile("" : "+r"(bp));
            acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(_mm256_maddubs_epi16(av, _mm256_load_si256(bp)), ones));
            acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(_mm256_maddubs_epi16(av, _mm256_load_si256(bp + 1)), ones));
        }
    }
    vk_q8_store_tile16(R, acc0, acc1, c, ldc, full, m0, m1, two, e);
}

static void kernel_ubs(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c, size_t ldc,
                       size_t w, const vk_lp_epilogue *e) {
    VK_Q8_MICRO_6X16(tile_ubs, 4)
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
const vk_lp_kernel vk_q8_kernel_avx2_maddubs = {.name = "avx2-maddubs 6x16", .precision = VK_LP_Q8, .mr = MR, .nr = NR,
                                                .kg = 4, .kpad = 4, .a_format = VK_A_U8, .mc_tiles = 34, .q8_max = 63,
                                                .usable = usable, .kernel = kernel_ubs};

#endif
