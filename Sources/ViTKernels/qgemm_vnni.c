// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// INT8 micro-kernels with vpdpbusd (u8 × s8 → s32, four products per lane per instruction, no saturation):
// AVX-512 VNNI, a 14 × 32 tile in 28 zmm accumulators (per k-quad: 2 zmm loads of B, 14 broadcasts of 4 A bytes,
// 28 vpdpbusd), and AVX-VNNI (the VEX form on CPUs with it, e.g. Alder Lake, Sapphire Rapids), 6 × 16 in 12 ymm.
// A is the quantised uint8 rows, B the INT8 panels in groups of 4 k per column ([k/4][nr][4]); the epilogue is
// qgemm_epilogue.h. See qgemm_kernels.h for the contract, qgemm.c for the driver.

#include "qgemm_kernels.h"
#include "vk_isa.h"

#ifdef VK_X86
#include <immintrin.h>

static inline int32_t load4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

// ---- AVX-512 VNNI 14 × 32 ------------------------------------------------------------------------------------------

#define MR 14
#define NR 32

#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx512vnni,avx2,fma"))), apply_to = function)
#define VK_Q8_EPILOGUE_512
#include "qgemm_epilogue.h"

static inline __attribute__((always_inline)) void tile512(const int R, size_t kq, const uint8_t *a, size_t lda,
                                                          const int8_t *b, float *c, size_t ldc, __mmask16 m0,
                                                          __mmask16 m1, const vk_lp_epilogue *e) {
    __m512i acc0[MR], acc1[MR];
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = _mm512_setzero_si512();
    for (size_t q = 0; q < kq; q++) {
        __m512i b0 = _mm512_load_si512(b + q * 4 * NR), b1 = _mm512_load_si512(b + q * 4 * NR + 64);
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            __m512i av = _mm512_set1_epi32(load4(a + r * lda + 4 * q));
            acc0[r] = _mm512_dpbusd_epi32(acc0[r], av, b0);
            acc1[r] = _mm512_dpbusd_epi32(acc1[r], av, b1);
        }
    }
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        vk_q8_store16(acc0[r], e->zp[r], e->sa[r], e->colsum, e->sw, c + r * ldc, e->bias, e->load_c, m0);
        if (m1)
            vk_q8_store16(acc1[r], e->zp[r], e->sa[r], e->colsum + 16, e->sw + 16, c + r * ldc + 16,
                          e->bias ? e->bias + 16 : NULL, e->load_c, m1);
    }
}

static void kernel512(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c, size_t ldc,
                      size_t w, const vk_lp_epilogue *e) {
    __mmask16 m0 = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
    __mmask16 m1 = w >= 32 ? (__mmask16)0xFFFF : w > 16 ? (__mmask16)((1u << (w - 16)) - 1) : 0;
#define CASE(R)                                                                                                       \
    case R: tile512(R, kp / 4, a, a_stride, b, c, ldc, m0, m1, e); break;
    switch (rows) {
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11) CASE(12) CASE(13)
        CASE(14)
    default: __builtin_trap();
    }
#undef CASE
}

/// The 32-column row epilogue for another kernel's INT32 sums (the AMX kernel's tile stores): rows of 32 int32,
/// acc_ld apart. The same arithmetic as vk_q8_store16, with the column vectors loaded once.
void vk_q8_finish_rows_avx512(size_t rows, const int32_t *acc, size_t acc_ld, float *c, size_t ldc, size_t w,
                              const vk_lp_epilogue *e) {
    __mmask16 m0 = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
    __mmask16 m1 = w >= 32 ? (__mmask16)0xFFFF : w > 16 ? (__mmask16)((1u << (w - 16)) - 1) : 0;
    __m512i cs0 = _mm512_loadu_si512(e->colsum), cs1 = _mm512_loadu_si512(e->colsum + 16);
    __m512 sw0 = _mm512_loadu_ps(e->sw), sw1 = _mm512_loadu_ps(e->sw + 16);
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
    if (e->bias) {
        b0 = _mm512_maskz_loadu_ps(m0, e->bias);
        b1 = _mm512_maskz_loadu_ps(m1, e->bias + 16);
    }
    for (size_t r = 0; r < rows; r++) {
        const int32_t *s = acc + r * acc_ld;
        float *row = c + r * ldc;
        __m512i zp = _mm512_set1_epi32(e->zp[r]);
        __m512 sa = _mm512_set1_ps(e->sa[r]);
        __m512 v0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_load_si512(s), _mm512_mullo_epi32(zp, cs0))),
                                  _mm512_mul_ps(sa, sw0));
        __m512 v1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_load_si512(s + 16), _mm512_mullo_epi32(zp, cs1))),
                                  _mm512_mul_ps(sa, sw1));
        VK_ROUNDED(v0);
        VK_ROUNDED(v1);
        if (e->load_c) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
        }
        if (e->bias) {
            v0 = _mm512_add_ps(v0, b0);
            v1 = _mm512_add_ps(v1, b1);
        }
        _mm512_mask_storeu_ps(row, m0, v0);
        _mm512_mask_storeu_ps(row + 16, m1, v1);
    }
}

static int usable512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni");
}

#pragma clang attribute pop
#undef MR
#undef NR

// K is padded to 64 as for the AMX kernel, so that both read the same panels.
const vk_lp_kernel vk_q8_kernel_vnni512 = {.name = "avx512-vnni 14x32", .precision = VK_LP_Q8, .mr = 14, .nr = 32,
                                           .kg = 4, .kpad = 64, .a_format = VK_A_U8, .mc_tiles = 16,
                                           .usable = usable512, .kernel = kernel512};

// ---- AVX-VNNI 6 × 16 -----------------------------------------------------------------------------------------------

#define MR 6
#define NR 16

#pragma clang attribute push(__attribute__((target("avx2,fma,avxvnni"))), apply_to = function)
#define VK_Q8_EPILOGUE_256
#include "qgemm_epilogue.h"

static inline __attribute__((always_inline)) void tile256(const int R, size_t kq, const uint8_t *a, size_t lda,
                                                          const int8_t *b, float *c, size_t ldc, int full,
                                                          __m256i m0, __m256i m1, int two, const vk_lp_epilogue *e) {
    __m256i acc0[MR], acc1[MR];
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = _mm256_setzero_si256();
    for (size_t q = 0; q < kq; q++) {
        __m256i b0 = _mm256_load_si256((const __m256i *)(b + q * 4 * NR));
        __m256i b1 = _mm256_load_si256((const __m256i *)(b + q * 4 * NR + 32));
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            __m256i av = _mm256_set1_epi32(load4(a + r * lda + 4 * q));
            acc0[r] = _mm256_dpbusd_avx_epi32(acc0[r], av, b0);
            acc1[r] = _mm256_dpbusd_avx_epi32(acc1[r], av, b1);
        }
    }
    vk_q8_store_tile16(R, acc0, acc1, c, ldc, full, m0, m1, two, e);
}

static void kernel256(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c, size_t ldc,
                      size_t w, const vk_lp_epilogue *e) {
    VK_Q8_MICRO_6X16(tile256, 4)
}

#pragma clang attribute pop

static int usable256(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("avxvnni");
}

const vk_lp_kernel vk_q8_kernel_avxvnni = {.name = "avx-vnni 6x16", .precision = VK_LP_Q8, .mr = MR, .nr = NR,
                                           .kg = 4, .kpad = 4, .a_format = VK_A_U8, .mc_tiles = 32,
                                           .usable = usable256, .kernel = kernel256};

#endif
