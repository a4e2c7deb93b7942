#ifndef VITCLASSIFY_VIT_KERNELS_H
#define VITCLASSIFY_VIT_KERNELS_H

#include <stddef.h>

// Element-wise kernels of the forward pass (everything that is not a GEMM), written with vector extensions and
// compiled for AVX-512, AVX2+FMA and portable C; the packed GEMM (vit_gemm.h) runs at the same level.
// Matrices are row-major; `ld` is the distance in floats between the starts of consecutive rows.
//
// The level is chosen once, at first use: the widest the CPU supports, or narrower when the environment variable
// VITCLASSIFY_ISA is "avx2" or "fallback" (VITCLASSIFY_NO_PACKED_GEMM=1, from earlier versions, means "fallback").
// Every kernel computes each output from its own row alone, in a fixed order: results never depend on how many rows
// a call has or how the rows are split over threads.

/// y[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta for each row (biased variance, as PyTorch).
void vk_layer_norm(const float *x, float *y, size_t rows, size_t dim, const float *gamma, const float *beta,
                   float eps);

/// Row-wise softmax in place: x[r] = exp(x[r] - max) / sum.
void vk_softmax_rows(float *x, size_t rows, size_t cols, size_t ld);

/// GELU in place: the exact erf form 0.5·v·(1 + erf(v/√2)), or with `tanh_form` 0.5·v·(1 + tanh(√(2/π)·(v +
/// 0.044715·v³))). erf is the Eigen/XLA rational approximation clamped to ±4 (|error| < 5e-7).
void vk_gelu(float *x, size_t rows, size_t cols, size_t ld, int tanh_form);

/// Gated linear unit over rows of 2·hidden inputs, gate first: y[r][i] = act(x[r][i]) · x[r][hidden + i], with act
/// one of VK_ACT_* (vit_gemm.h; SiLU for SwiGLU). y has rows of `hidden` floats and must not overlap x.
void vk_glu(const float *x, float *y, size_t rows, size_t hidden, int activation);

/// Scalar versions of the approximations used above (for tests).
float vk_erf(float x);
float vk_exp(float x);

/// The instruction-set path every kernel runs on: "avx512", "avx2" or "fallback".
const char *vk_instruction_set(void);

/// The CPU's brand string (cpuid on x86-64; "unknown" elsewhere).
const char *vk_cpu_model(void);

#endif
