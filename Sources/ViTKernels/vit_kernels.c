// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
#include "vit_kernels.h"

#include "gemm_kernels.h"
#include "vit_gemm.h"
#include "vk_isa.h"

#include <math.h>
#include <stdint.h>
#include <string.h>


// One copy of every kernel per instruction set; the best one the CPU supports is chosen on first use.
#ifdef VK_X86
#define W 16
#define VK_NAME(name) name##_avx512
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"))), apply_to = function)
#include "kernels_body.h"
#pragma clang attribute pop
#undef VK_NAME

#undef W
#define W 8
#define VK_NAME(name) name##_avx2
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "kernels_body.h"
#pragma clang attribute pop
#undef VK_NAME
#define VK_HAVE_VARIANTS 1
#undef W
#endif

#define W 4
#define VK_NAME(name) name##_base
#include "kernels_body.h"
#undef VK_NAME

#ifdef VK_HAVE_VARIANTS
#define DISPATCH(name, ...)                                 \
    switch (vk_isa_level()) {                               \
    case VK_LEVEL_AVX512: return name##_avx512(__VA_ARGS__); \
    case VK_LEVEL_AVX2: return name##_avx2(__VA_ARGS__);     \
    default: return name##_base(__VA_ARGS__);                \
    }
#else
#define DISPATCH(name, ...) return name##_base(__VA_ARGS__);
#endif

void vk_layer_norm(const float *x, float *y, size_t rows, size_t dim, const float *gamma, const float *beta,
                   float eps) {
    DISPATCH(layer_norm, x, y, rows, dim, gamma, beta, eps)
}
void vk_softmax_rows(float *x, size_t rows, size_t cols, size_t ld) { DISPATCH(softmax_rows, x, rows, cols, ld) }
void vk_gelu(float *x, size_t rows, size_t cols, size_t ld, int tanh_form) {
    vk_activate_rows(x, rows, cols, ld, tanh_form ? VK_ACT_GELU_TANH : VK_ACT_GELU_ERF);
}
void vk_activate_rows(float *x, size_t rows, size_t cols, size_t ld, int activation) {
    if (activation == VK_ACT_NONE) return;
    DISPATCH(activation_rows, x, rows, cols, ld, activation)
}
void vk_glu(const float *x, float *y, size_t rows, size_t hidden, int activation) {
    DISPATCH(glu_rows, x, y, rows, hidden, activation)
}
float vk_exp(float x) { DISPATCH(exp1, x) }
float vk_erf(float x) { DISPATCH(erf1, x) }
