// The INT8 tile epilogue (dequantise, + C, + bias, store) for 256-bit and 512-bit registers, shared by the x86
// INT8 kernels so that they all round the same way (vit_qgemm.h: out = fp32(S)·(s_a·s_w), then + C, then + bias).
// Include inside a `#pragma clang attribute push(target(...))` region: VK_Q8_EPILOGUE_256 needs AVX2,
// VK_Q8_EPILOGUE_512 AVX-512 F/BW/VL. Not a public header.

#ifndef VITCLASSIFY_QGEMM_EPILOGUE_H
#define VITCLASSIFY_QGEMM_EPILOGUE_H

#include "qgemm_kernels.h"

#include <immintrin.h>

#endif

#if defined(VK_Q8_EPILOGUE_256) && !defined(VK_Q8_EPILOGUE_256_DONE)
#define VK_Q8_EPILOGUE_256_DONE
/// One row's 8 columns: acc (Σ q_a·q_w) → C[0..8) under the lane mask (all lanes when `full`).
static inline __attribute__((always_inline)) void vk_q8_store8(__m256i acc, int32_t zp, float sa, const int32_t *colsum,
                                                                const float *sw, float *c, const float *bias,
                                                                int load_c, int full, __m256i mask) {
    __m256i s = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(zp), _mm256_loadu_si256((const __m256i *)colsum)));
    __m256 scale = _mm256_mul_ps(_mm256_set1_ps(sa), _mm256_loadu_ps(sw));
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(s), scale);
    VK_ROUNDED(v);
    if (full) {
        if (load_c) v = _mm256_add_ps(v, _mm256_loadu_ps(c));
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
        _mm256_storeu_ps(c, v);
    } else {
        if (load_c) v = _mm256_add_ps(v, _mm256_maskload_ps(c, mask));
        if (bias) v = _mm256_add_ps(v, _mm256_maskload_ps(bias, mask));
        _mm256_maskstore_ps(c, mask, v);
    }
}

/// Finishes rows [0, R) of a 6 × 16 tile: acc0[r] holds columns 0–7, acc1[r] columns 8–15 (stored when `two`).
static inline __attribute__((always_inline)) void vk_q8_store_tile16(const int R, const __m256i *acc0,
                                                                      const __m256i *acc1, float *c, size_t ldc,
                                                                      int full, __m256i m0, __m256i m1, int two,
                                                                      const vk_lp_epilogue *e) {
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        vk_q8_store8(acc0[r], e->zp[r], e->sa[r], e->colsum, e->sw, c + r * ldc, e->bias, e->load_c, full, m0);
        if (two)
            vk_q8_store8(acc1[r], e->zp[r], e->sa[r], e->colsum + 8, e->sw + 8, c + r * ldc + 8,
                         e->bias ? e->bias + 8 : NULL, e->load_c, full, m1);
    }
}

/// The body of a 6 × 16 INT8 micro-kernel (vk_lp_micro's parameters in scope): the lane masks of the w valid
/// columns, then TILE(R, k_steps, a, a_stride, b, c, ldc, full, m0, m1, two, e) with R a constant 1–6 and
/// k_steps = kp / KG.
#define VK_Q8_MICRO_6X16(TILE, KG)                                                                                    \
    int full = w >= 16, two = w > 8;                                                                                  \
    __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                                                        \
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)w), lanes);                                                \
    __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)w - 8), lanes);                                            \
    switch (rows) {                                                                                                   \
    case 1: TILE(1, kp / (KG), a, a_stride, b, c, ldc, full, m0, m1, two, e); break;                                  \
    case 2: TILE(2, kp / (KG), a, a_stride, b, c, ldc, full, m0, m1, two, e); break;                                  \
    case 3: TILE(3, kp / (KG), a, a_stride, b, c, ldc, full, m0, m1, two, e); break;                                  \
    case 4: TILE(4, kp / (KG), a, a_stride, b, c, ldc, full, m0, m1, two, e); break;                                  \
    case 5: TILE(5, kp / (KG), a, a_stride, b, c, ldc, full, m0, m1, two, e); break;                                  \
    case 6: TILE(6, kp / (KG), a, a_stride, b, c, ldc, full, m0, m1, two, e); break;                                  \
    default: __builtin_trap();                                                                                        \
    }
#endif

#if defined(VK_Q8_EPILOGUE_512) && !defined(VK_Q8_EPILOGUE_512_DONE)
#define VK_Q8_EPILOGUE_512_DONE
/// One row's 16 columns under mask m.
static inline __attribute__((always_inline)) void vk_q8_store16(__m512i acc, int32_t zp, float sa,
                                                                 const int32_t *colsum, const float *sw, float *c,
                                                                 const float *bias, int load_c, __mmask16 m) {
    __m512i s = _mm512_sub_epi32(acc, _mm512_mullo_epi32(_mm512_set1_epi32(zp), _mm512_loadu_si512(colsum)));
    __m512 scale = _mm512_mul_ps(_mm512_set1_ps(sa), _mm512_loadu_ps(sw));
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(s), scale);
    VK_ROUNDED(v);
    if (load_c) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c));
    if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias));
    _mm512_mask_storeu_ps(c, m, v);
}
#endif
