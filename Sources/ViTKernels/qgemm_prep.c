// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// Row preparation for the reduced-precision GEMMs (see qgemm_prep_body.h), one copy per instruction set, chosen
// with the element-wise kernels' level.

#include "qgemm_kernels.h"
#include "vk_isa.h"

#ifdef VK_X86
#include <immintrin.h>
#endif

#ifdef VK_X86
#define W 16
#define VK_PREP(name) name##_avx512
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"))), apply_to = function)
#include "qgemm_prep_body.h"
#pragma clang attribute pop
#undef VK_PREP
#undef W

#define W 8
#define VK_PREP(name) name##_avx2
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "qgemm_prep_body.h"
#pragma clang attribute pop
#undef VK_PREP
#undef W
#endif

#define W 4
#define VK_PREP(name) name##_base
#include "qgemm_prep_body.h"
#undef VK_PREP
#undef W

void vk_q8_prepare_row(const float *x, size_t K, size_t kp, int format, void *dst, int32_t *zp, float *scale) {
    switch (vk_isa_level()) {
#ifdef VK_X86
    case VK_LEVEL_AVX512: q8_row_avx512(x, K, kp, format, dst, zp, scale); return;
    case VK_LEVEL_AVX2: q8_row_avx2(x, K, kp, format, dst, zp, scale); return;
#endif
    default: q8_row_base(x, K, kp, format, dst, zp, scale); return;
    }
}

void vk_bf16_prepare_row(const float *x, size_t K, size_t kp, int format, void *dst) {
    switch (vk_isa_level()) {
#ifdef VK_X86
    case VK_LEVEL_AVX512: bf16_row_avx512(x, K, kp, format, dst); return;
    case VK_LEVEL_AVX2: bf16_row_avx2(x, K, kp, format, dst); return;
#endif
    default: bf16_row_base(x, K, kp, format, dst); return;
    }
}
