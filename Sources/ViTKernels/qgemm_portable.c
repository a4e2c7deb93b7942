// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// Portable INT8 micro-kernel: a 4 × 8 tile in generic 4-lane int32 vectors (SSE2 on any x86-64, NEON on arm64).
// Per k: the 8 weights of the panel row ([k][8] int8) widened to int16, times each row's uint8 activation (the
// product, at most 255·127, fits int16), widened and added into 32 bits. The epilogue is the scheme's scalar
// definition (vit_qgemm.h). Serves CPUs without AVX2 and VITCLASSIFY_ISA=fallback; the same bits as every other
// INT8 kernel. See qgemm_kernels.h for the contract, qgemm.c for the driver.

#include "qgemm_kernels.h"

#define MR 4
#define NR 8

typedef int32_t vi4 __attribute__((vector_size(16)));
typedef int16_t vs8 __attribute__((vector_size(16)));
typedef int16_t vs4 __attribute__((vector_size(8)));
typedef int8_t vb8 __attribute__((vector_size(8)));

static inline __attribute__((always_inline)) void tile(const int R, size_t kp, const uint8_t *a, size_t lda,
                                                       const int8_t *b, float *c, size_t ldc, size_t w,
                                                       const vk_lp_epilogue *e) {
    vi4 acc0[MR], acc1[MR];
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = (vi4){0, 0, 0, 0};
    for (size_t k = 0; k < kp; k++) {
        vb8 bb;
        memcpy(&bb, b + k * NR, sizeof bb);
        vs8 bv = __builtin_convertvector(bb, vs8);
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            vs8 p = bv * (int16_t)a[r * lda + k];
            vs4 lo = __builtin_shufflevector(p, p, 0, 1, 2, 3), hi = __builtin_shufflevector(p, p, 4, 5, 6, 7);
            acc0[r] += __builtin_convertvector(lo, vi4);
            acc1[r] += __builtin_convertvector(hi, vi4);
        }
    }
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        int32_t s[NR];
        memcpy(s, &acc0[r], 16);
        memcpy(s + 4, &acc1[r], 16);
        float *row = c + r * ldc;
        for (size_t j = 0; j < w; j++) {
            int32_t v32 = (int32_t)((uint32_t)s[j] - (uint32_t)e->zp[r] * (uint32_t)e->colsum[j]);
            float scale = e->sa[r] * e->sw[j];
            float v = (float)v32 * scale;
            VK_ROUNDED(v);
            if (e->load_c) v = v + row[j];
            if (e->bias) v = v + e->bias[j];
            row[j] = v;
        }
    }
}

static void kernel(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c, size_t ldc,
                   size_t w, const vk_lp_epilogue *e) {
    switch (rows) {
    case 1: tile(1, kp, a, a_stride, b, c, ldc, w, e); break;
    case 2: tile(2, kp, a, a_stride, b, c, ldc, w, e); break;
    case 3: tile(3, kp, a, a_stride, b, c, ldc, w, e); break;
    case 4: tile(4, kp, a, a_stride, b, c, ldc, w, e); break;
    default: __builtin_trap();
    }
}

const vk_lp_kernel vk_q8_kernel_portable = {.name = "portable-q8 4x8", .precision = VK_LP_Q8, .mr = MR, .nr = NR,
                                            .kg = 1, .kpad = 1, .a_format = VK_A_U8, .mc_tiles = 32,
                                            .kernel = kernel};
