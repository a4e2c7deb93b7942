#include "vit_kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>


// One copy of every kernel per instruction set; the best one the CPU supports is chosen on first use.
#if defined(__x86_64__) && defined(__clang__)
#define W 16
#define VK_NAME(name) name##_avx512
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx2,fma"))), apply_to = function)
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

typedef enum { LEVEL_UNKNOWN, LEVEL_BASE, LEVEL_AVX2, LEVEL_AVX512 } level_t;

static level_t level(void) {
    static volatile level_t cached = LEVEL_UNKNOWN;
    level_t l = cached;
    if (l != LEVEL_UNKNOWN) return l;
    l = LEVEL_BASE;
#ifdef VK_FORCE_LEVEL
    cached = VK_FORCE_LEVEL;
    return cached;
#endif
#ifdef VK_HAVE_VARIANTS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) l = LEVEL_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) l = LEVEL_AVX2;
#endif
    cached = l;
    return l;
}

#ifdef VK_HAVE_VARIANTS
#define DISPATCH(name, ...)                                 \
    switch (level()) {                                      \
    case LEVEL_AVX512: return name##_avx512(__VA_ARGS__);   \
    case LEVEL_AVX2: return name##_avx2(__VA_ARGS__);       \
    default: return name##_base(__VA_ARGS__);               \
    }
#else
#define DISPATCH(name, ...) return name##_base(__VA_ARGS__);
#endif

void vk_layer_norm(const float *x, float *y, size_t rows, size_t dim, const float *gamma, const float *beta,
                   float eps) {
    DISPATCH(layer_norm, x, y, rows, dim, gamma, beta, eps)
}
void vk_softmax_rows(float *x, size_t rows, size_t cols, size_t ld) { DISPATCH(softmax_rows, x, rows, cols, ld) }
void vk_add_bias(float *x, size_t rows, size_t cols, size_t ld, const float *bias) {
    DISPATCH(add_bias, x, rows, cols, ld, bias)
}
void vk_add_bias_gelu(float *x, size_t rows, size_t cols, const float *bias) {
    DISPATCH(add_bias_gelu, x, rows, cols, bias)
}
void vk_add_bias_gelu_tanh(float *x, size_t rows, size_t cols, const float *bias) {
    DISPATCH(add_bias_gelu_tanh, x, rows, cols, bias)
}
float vk_exp(float x) { DISPATCH(exp1, x) }
float vk_erf(float x) { DISPATCH(erf1, x) }

const char *vk_instruction_set(void) {
    switch (level()) {
    case LEVEL_AVX512: return "avx512";
    case LEVEL_AVX2: return "avx2";
    default: return "baseline";
    }
}
