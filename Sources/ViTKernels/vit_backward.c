// The element-wise pieces of the backward pass (vit_backward.h). Plain C: no vector variants, no FMA contraction
// pragma, so every platform sums in the same order.
#include "vit_backward.h"

#include "gemm_kernels.h"

#include <math.h>

void vkb_activate(float *x, size_t rows, size_t cols, int activation) {
    if (activation != VK_ACT_NONE) vk_activate_rows(x, rows, cols, cols, activation);
}

void vkb_layer_norm_backward(const float *x, const float *dy, float *dx, size_t rows, size_t dim, const float *gamma,
                             float eps, int accumulate) {
    for (size_t r = 0; r < rows; r++) {
        const float *in = x + r * dim, *g = dy + r * dim;
        float *out = dx + r * dim;
        double sum = 0;
        for (size_t i = 0; i < dim; i++) sum += in[i];
        double mean = sum / (double)dim, var = 0;
        for (size_t i = 0; i < dim; i++) var += (in[i] - mean) * (in[i] - mean);
        var /= (double)dim;
        double inv = 1.0 / sqrt(var + (double)eps);
        double sg = 0, sgx = 0;
        for (size_t i = 0; i < dim; i++) {
            double gi = (double)g[i] * gamma[i], xh = (in[i] - mean) * inv;
            sg += gi;
            sgx += gi * xh;
        }
        sg /= (double)dim;
        sgx /= (double)dim;
        for (size_t i = 0; i < dim; i++) {
            double gi = (double)g[i] * gamma[i], xh = (in[i] - mean) * inv;
            float v = (float)(inv * (gi - sg - xh * sgx));
            out[i] = accumulate ? out[i] + v : v;
        }
    }
}

void vkb_activation_backward(const float *u, float *dh, size_t count, int activation) {
    const float rsqrt2 = 0.70710678118654752f, rsqrt2pi = 0.3989422804014327f, k = 0.7978845608028654f;
    for (size_t i = 0; i < count; i++) {
        float x = u[i], d;
        switch (activation) {
        case VK_ACT_GELU_TANH: {
            float t = tanhf(k * (x + 0.044715f * x * x * x));
            d = 0.5f * (1 + t) + 0.5f * x * (1 - t * t) * k * (1 + 3 * 0.044715f * x * x);
            break;
        }
        case VK_ACT_QUICK_GELU: {
            float s = 1 / (1 + expf(-1.702f * x));
            d = s + 1.702f * x * s * (1 - s);
            break;
        }
        case VK_ACT_SILU: {
            float s = 1 / (1 + expf(-x));
            d = s + x * s * (1 - s);
            break;
        }
        case VK_ACT_NONE: d = 1; break;
        default: d = 0.5f * (1 + erff(x * rsqrt2)) + x * rsqrt2pi * expf(-0.5f * x * x); break;
        }
        dh[i] *= d;
    }
}

void vkb_softmax_backward(const float *p, float *dp, size_t rows, size_t cols, size_t ld) {
    for (size_t r = 0; r < rows; r++) {
        const float *pr = p + r * ld;
        float *g = dp + r * ld;
        double dot = 0;
        for (size_t j = 0; j < cols; j++) dot += (double)g[j] * pr[j];
        for (size_t j = 0; j < cols; j++) g[j] = (float)(pr[j] * (g[j] - dot));
    }
}
