// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// Portable BF16 micro-kernel: a 4 × 8 tile in generic 4-lane fp32 vectors (SSE2 on any x86-64, NEON on arm64), the
// BF16 panel ([k/2][8][2]) widened to fp32 in the kernel, A prepared as BF16-rounded fp32. Products of two bf16
// values are exact in fp32, so multiply-then-add and a fused multiply-add give the same bits: the canonical k-order
// sum of vit_qgemm.h, as the AVX-512 BF16 and AVX2 kernels. See qgemm_kernels.h for the contract, qgemm.c for the
// driver.

#include "qgemm_kernels.h"

#define MR 4
#define NR 8

typedef float vf4 __attribute__((vector_size(16)));
typedef uint32_t vu4 __attribute__((vector_size(16)));

static inline __attribute__((always_inline)) void tile(const int R, size_t kpairs, const float *a, size_t lda,
                                                       const uint16_t *b, float *c, size_t ldc, size_t w,
                                                       const vk_lp_epilogue *e) {
    vf4 acc0[MR], acc1[MR];
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = (vf4){0, 0, 0, 0};
    for (size_t j = 0; j < kpairs; j++) {
        vu4 x0, x1;
        memcpy(&x0, b + j * 2 * NR, 16);
        memcpy(&x1, b + j * 2 * NR + 8, 16);
        vu4 ue0 = x0 << 16, uo0 = x0 & 0xFFFF0000u, ue1 = x1 << 16, uo1 = x1 & 0xFFFF0000u;
        vf4 e0, o0, e1, o1;
        memcpy(&e0, &ue0, 16);
        memcpy(&o0, &uo0, 16);
        memcpy(&e1, &ue1, 16);
        memcpy(&o1, &uo1, 16);
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            float ae = a[r * lda + 2 * j], ao = a[r * lda + 2 * j + 1];
            acc0[r] = acc0[r] + ae * e0;
            acc1[r] = acc1[r] + ae * e1;
            acc0[r] = acc0[r] + ao * o0;
            acc1[r] = acc1[r] + ao * o1;
        }
    }
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        float out[NR];
        memcpy(out, &acc0[r], 16);
        memcpy(out + 4, &acc1[r], 16);
        float *row = c + r * ldc;
        for (size_t j = 0; j < w; j++) {
            float v = out[j];
            if (e->load_c) v = v + row[j];
            if (e->bias) v = v + e->bias[j];
            row[j] = v;
        }
    }
}

static void kernel(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c, size_t ldc,
                   size_t w, const vk_lp_epilogue *e) {
    size_t lda = a_stride / sizeof(float);
    switch (rows) {
    case 1: tile(1, kp / 2, a, lda, b, c, ldc, w, e); break;
    case 2: tile(2, kp / 2, a, lda, b, c, ldc, w, e); break;
    case 3: tile(3, kp / 2, a, lda, b, c, ldc, w, e); break;
    case 4: tile(4, kp / 2, a, lda, b, c, ldc, w, e); break;
    default: __builtin_trap();
    }
}

const vk_lp_kernel vk_bf16_kernel_portable = {.name = "portable-bf16 4x8", .precision = VK_LP_BF16, .mr = MR,
                                              .nr = NR, .kg = 2, .kpad = 2, .a_format = VK_A_F32, .mc_tiles = 32,
                                              .kernel = kernel};
