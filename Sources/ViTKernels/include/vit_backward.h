#ifndef VITCLASSIFY_VIT_BACKWARD_H
#define VITCLASSIFY_VIT_BACKWARD_H

#include <stddef.h>

#include "vit_gemm.h"

// The element-wise pieces of the backward pass (gradients with respect to activations only, never weights), used
// by ViTKit's Model/Backward.swift for class-specific explanations. Row-major; plain C (the backward runs once per
// explanation, its GEMMs dominate). Each output is computed from its own row in a fixed order.

/// The packed matrix of Bᵀ from the packed B of vk_pack / vk_pack_transposed (N rows × K columns, packed for the
/// same micro-kernel): the backward of y = x·B is dx = dy·Bᵀ. Exact copy of the values. NULL if allocation fails.
vk_packed *vkb_pack_transpose_of(const vk_packed *p);

/// The activation (VK_ACT_*) in place, the same kernel the GEMM epilogue runs (so the forward's bits do not change
/// when it records the pre-activations).
void vkb_activate(float *x, size_t rows, size_t cols, int activation);

/// LayerNorm backward: with y = (x − μ)·r·γ + β per row, dx (+)= r·(g − mean(g) − x̂·mean(g·x̂)) where g = dy·γ.
/// x is the LayerNorm's input (μ, r are recomputed as the forward does). dx may not alias dy unless accumulate = 0.
void vkb_layer_norm_backward(const float *x, const float *dy, float *dx, size_t rows, size_t dim, const float *gamma,
                             float eps, int accumulate);

/// dh[i] *= act'(u[i]) for the pre-activations u (VK_ACT_*; exact derivatives of the erf/tanh GELU, QuickGELU, SiLU).
void vkb_activation_backward(const float *u, float *dh, size_t count, int activation);

/// Softmax backward in place, rows `cols` wide and `ld` apart: with p = softmax(s), ds = p ⊙ (dp − Σⱼ dpⱼ·pⱼ).
void vkb_softmax_backward(const float *p, float *dp, size_t rows, size_t cols, size_t ld);

#endif
