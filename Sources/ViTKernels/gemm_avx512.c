// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// The packed GEMM's AVX-512 micro-kernel: a 14 × 32 tile of C in 28 zmm accumulators; per k, 2 zmm loads of B and
// 14 broadcasts of A feeding 28 FMAs. See gemm_kernels.h for the contract, gemm.c for the driver.

#include "gemm_kernels.h"
#include "vk_isa.h"

#ifdef VK_X86
#include <immintrin.h>

#define MR 14
#define NR 32

#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma"))), apply_to = function)

/// R and TWO are compile-time constants in every instantiation, so acc[] lives in registers. TWO = 0 (at most 16
/// valid columns: the last panel of many products, all of a 16-wide one such as P·V of a head of 16) computes the
/// first 16 columns only; each computed element gets the same operations either way.
static inline __attribute__((always_inline)) void tile(const int R, const int TWO, size_t kc, const float *a,
                                                       size_t lda, const float *b, float *c, size_t ldc,
                                                       __mmask16 m0, __mmask16 m1, int load_c, const float *bias) {
    __m512 acc0[MR], acc1[MR];
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = _mm512_setzero_ps();
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b + k * NR), b1 = TWO ? _mm512_load_ps(b + k * NR + 16) : b0;
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            __m512 av = _mm512_set1_ps(a[r * lda + k]);
            acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
            if (TWO) acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
        }
    }
    if (load_c) {
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            acc0[r] = _mm512_add_ps(acc0[r], _mm512_maskz_loadu_ps(m0, c + r * ldc));
            if (TWO) acc1[r] = _mm512_add_ps(acc1[r], _mm512_maskz_loadu_ps(m1, c + r * ldc + 16));
        }
    }
    if (bias) {
        __m512 bias0 = _mm512_maskz_loadu_ps(m0, bias), bias1 = TWO ? _mm512_maskz_loadu_ps(m1, bias + 16) : bias0;
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            acc0[r] = _mm512_add_ps(acc0[r], bias0);
            if (TWO) acc1[r] = _mm512_add_ps(acc1[r], bias1);
        }
    }
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
        if (TWO) _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
    }
}

static void kernel(size_t rows, size_t kc, const float *a, size_t lda, int a_packed, const float *b, float *c,
                   size_t ldc, size_t w, int load_c, const float *bias) {
    (void)a_packed; // never set: this kernel reads A in place
    __mmask16 m0 = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
    __mmask16 m1 = w >= 32 ? (__mmask16)0xFFFF : w > 16 ? (__mmask16)((1u << (w - 16)) - 1) : 0;
#define CASE(R)                                                                                                       \
    case R:                                                                                                           \
        if (w > 16) tile(R, 1, kc, a, lda, b, c, ldc, m0, m1, load_c, bias);                                         \
        else tile(R, 0, kc, a, lda, b, c, ldc, m0, m1, load_c, bias);                                                \
        break;
    switch (rows) {
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11) CASE(12) CASE(13)
        CASE(14)
    default: __builtin_trap();
    }
#undef CASE
}

#pragma clang attribute pop

// K block: 197 rows × 768 × 4 B = 605 KB of A in L2.
const vk_gemm_kernel vk_gemm_kernel_avx512 = {
    .name = "avx512 14x32", .mr = MR, .nr = NR, .kc_max = 768, .mc_tiles = 16, .kernel = kernel};

#endif
