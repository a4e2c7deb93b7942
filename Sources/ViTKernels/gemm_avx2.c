// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// The packed GEMM's AVX2 + FMA micro-kernel: a 6 × 16 tile of C in 12 ymm accumulators; per k, 2 ymm loads of B and
// 6 broadcasts of A feeding 12 FMAs (the shape of BLIS's and OpenBLAS's Haswell kernels: 12 accumulators cover the
// FMA latency × throughput of two 256-bit pipes). See gemm_kernels.h for the contract, gemm.c for the driver.

#include "gemm_kernels.h"
#include "vk_isa.h"

#ifdef VK_X86
#include <immintrin.h>

#define MR 6
#define NR 16
#ifndef AVX2_KC
#define AVX2_KC 384
#endif
#ifndef AVX2_MC_TILES
#define AVX2_MC_TILES 34
#endif

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)

/// R and PACKED are compile-time constants in every instantiation, so acc[] lives in registers and A's addresses
/// are immediate offsets. `full`: all 16 columns valid (plain loads and stores); otherwise m0/m1 mask the valid lanes.
static inline __attribute__((always_inline)) void tile(const int R, const int PACKED, size_t kc, const float *a,
                                                       size_t lda, const float *b, float *c, size_t ldc, int full,
                                                       __m256i m0, __m256i m1, int load_c, const float *bias) {
    __m256 acc0[MR], acc1[MR];
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = _mm256_setzero_ps();
#pragma clang loop unroll_count(4)
    for (size_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b + k * NR), b1 = _mm256_load_ps(b + k * NR + 8);
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            __m256 av = _mm256_broadcast_ss(PACKED ? a + k * MR + r : a + r * lda + k);
            acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
        }
    }
    if (full) {
        if (load_c) {
            #pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                acc0[r] = _mm256_add_ps(acc0[r], _mm256_loadu_ps(c + r * ldc));
                acc1[r] = _mm256_add_ps(acc1[r], _mm256_loadu_ps(c + r * ldc + 8));
            }
        }
        if (bias) {
            __m256 bias0 = _mm256_loadu_ps(bias), bias1 = _mm256_loadu_ps(bias + 8);
            #pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                acc0[r] = _mm256_add_ps(acc0[r], bias0);
                acc1[r] = _mm256_add_ps(acc1[r], bias1);
            }
        }
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            _mm256_storeu_ps(c + r * ldc, acc0[r]);
            _mm256_storeu_ps(c + r * ldc + 8, acc1[r]);
        }
        return;
    }
    if (load_c) {
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            acc0[r] = _mm256_add_ps(acc0[r], _mm256_maskload_ps(c + r * ldc, m0));
            acc1[r] = _mm256_add_ps(acc1[r], _mm256_maskload_ps(c + r * ldc + 8, m1));
        }
    }
    if (bias) {
        __m256 bias0 = _mm256_maskload_ps(bias, m0), bias1 = _mm256_maskload_ps(bias + 8, m1);
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            acc0[r] = _mm256_add_ps(acc0[r], bias0);
            acc1[r] = _mm256_add_ps(acc1[r], bias1);
        }
    }
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        _mm256_maskstore_ps(c + r * ldc, m0, acc0[r]);
        _mm256_maskstore_ps(c + r * ldc + 8, m1, acc1[r]);
    }
}

static void kernel(size_t rows, size_t kc, const float *a, size_t lda, int a_packed, const float *b, float *c,
                   size_t ldc, size_t w, int load_c, const float *bias) {
    int full = w >= NR;
    __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)w), lanes);
    __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)w - 8), lanes);
#define CASE(R)                                                                                                       \
    case R:                                                                                                           \
        if (a_packed) tile(R, 1, kc, a, lda, b, c, ldc, full, m0, m1, load_c, bias);                                 \
        else tile(R, 0, kc, a, lda, b, c, ldc, full, m0, m1, load_c, bias);                                          \
        break;
    switch (rows) {
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6)
    default: __builtin_trap();
    }
#undef CASE
}

#pragma clang attribute pop

// K block: a 384 × 16 slice of B is 24 KB, within a 32 KB L1 (Zen 3) with room for the A streams.
// Row block: 34 tiles (204 rows), so that one image of 197 tokens (33 tiles) is one row block and the weights stream
// from memory once per GEMM instead of twice (32 tiles split it in two); its A block (204 × 384 floats, 313 KB) still
// fits a Zen 3's 512 KB L2. ViT-B/16 batch 1 under the AVX2 mask: 0.97x the time (median of 14 alternating rounds).
const vk_gemm_kernel vk_gemm_kernel_avx2 = {
    .name = "avx2 6x16", .mr = MR, .nr = NR, .kc_max = AVX2_KC, .mc_tiles = AVX2_MC_TILES, .packed_a = 1, .kernel = kernel};

#endif
