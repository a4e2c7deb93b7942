// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// The packed GEMM's portable micro-kernel: a 4 × 8 tile of C in generic 4-lane vectors (SSE2 on any x86-64, NEON on
// arm64), multiply then add (no FMA is assumed). It serves CPUs without AVX2 + FMA and VITCLASSIFY_ISA=fallback.
// See gemm_kernels.h for the contract, gemm.c for the driver.

#include "gemm_kernels.h"

#include <string.h>

#define MR 4
#define NR 8

typedef float vf4 __attribute__((vector_size(16)));

// Multiply and add stay two roundings here, whatever -ffp-contract says elsewhere: the same bits on every compiler.
#pragma clang fp contract(off)

static inline __attribute__((always_inline)) vf4 load4(const float *p) {
    vf4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void tile(const int R, size_t kc, const float *a, size_t lda,
                                                       const float *b, float *c, size_t ldc, size_t w, int load_c,
                                                       const float *bias) {
    vf4 acc0[MR], acc1[MR];
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = (vf4){0, 0, 0, 0};
    for (size_t k = 0; k < kc; k++) {
        vf4 b0 = load4(b + k * NR), b1 = load4(b + k * NR + 4);
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            vf4 av = (vf4){0, 0, 0, 0} + a[r * lda + k];
            acc0[r] = acc0[r] + av * b0;
            acc1[r] = acc1[r] + av * b1;
        }
    }
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        float out[NR];
        memcpy(out, &acc0[r], sizeof acc0[r]);
        memcpy(out + 4, &acc1[r], sizeof acc1[r]);
        float *row = c + r * ldc;
        for (size_t j = 0; j < w; j++) {
            float v = out[j];
            if (load_c) v = v + row[j];
            if (bias) v = v + bias[j];
            row[j] = v;
        }
    }
}

static void kernel(size_t rows, size_t kc, const float *a, size_t lda, int a_packed, const float *b, float *c,
                   size_t ldc, size_t w, int load_c, const float *bias) {
    (void)a_packed; // never set: this kernel reads A in place
    switch (rows) {
    case 1: tile(1, kc, a, lda, b, c, ldc, w, load_c, bias); break;
    case 2: tile(2, kc, a, lda, b, c, ldc, w, load_c, bias); break;
    case 3: tile(3, kc, a, lda, b, c, ldc, w, load_c, bias); break;
    case 4: tile(4, kc, a, lda, b, c, ldc, w, load_c, bias); break;
    default: __builtin_trap();
    }
}

const vk_gemm_kernel vk_gemm_kernel_portable = {
    .name = "portable 4x8", .mr = MR, .nr = NR, .kc_max = 512, .mc_tiles = 32, .kernel = kernel};
