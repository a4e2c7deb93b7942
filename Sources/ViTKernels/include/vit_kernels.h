#ifndef VITCLASSIFY_VIT_KERNELS_H
#define VITCLASSIFY_VIT_KERNELS_H

#include <stddef.h>

// Element-wise kernels of the forward pass (everything that is not a GEMM), written with vector extensions and
// compiled for AVX-512, AVX2+FMA and baseline x86-64, chosen on first use by CPU features.
// Matrices are row-major; `ld` is the distance in floats between the starts of consecutive rows.

/// y[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta for each row (biased variance, as PyTorch).
void vk_layer_norm(const float *x, float *y, size_t rows, size_t dim, const float *gamma, const float *beta,
                   float eps);

/// Row-wise softmax in place: x[r] = exp(x[r] - max) / sum.
void vk_softmax_rows(float *x, size_t rows, size_t cols, size_t ld);

/// x[r][c] += bias[c].
void vk_add_bias(float *x, size_t rows, size_t cols, size_t ld, const float *bias);

/// x[r][c] = gelu(x[r][c] + bias[c]) with the exact erf form 0.5·v·(1 + erf(v/√2)).
void vk_add_bias_gelu(float *x, size_t rows, size_t cols, const float *bias);

/// x[r][c] = gelu_tanh(x[r][c] + bias[c]): 0.5·v·(1 + tanh(√(2/π)·(v + 0.044715·v³))).
void vk_add_bias_gelu_tanh(float *x, size_t rows, size_t cols, const float *bias);

/// Scalar versions of the approximations used above (for tests).
float vk_erf(float x);
float vk_exp(float x);

/// The instruction set the kernels run with: "avx512", "avx2" or "baseline".
const char *vk_instruction_set(void);

#endif
