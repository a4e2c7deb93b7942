// The row preparation of the reduced-precision GEMMs (INT8 quantisation, BF16 rounding), included once per
// instruction set by qgemm_prep.c with W (lanes) and VK_PREP(name) defined and every function compiled for that
// target. The same source for every level: every level writes the same bytes. Not a public header.

#if W == 16
#define VK_PREP_SWAP4 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11
#define VK_PREP_SWAP2 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13
#define VK_PREP_SWAP1 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14
#elif W == 8
#define VK_PREP_SWAP4 4, 5, 6, 7, 0, 1, 2, 3
#define VK_PREP_SWAP2 2, 3, 0, 1, 6, 7, 4, 5
#define VK_PREP_SWAP1 1, 0, 3, 2, 5, 4, 7, 6
#else
#define VK_PREP_SWAP2 2, 3, 0, 1
#define VK_PREP_SWAP1 1, 0, 3, 2
#endif

typedef float VK_PREP(vf) __attribute__((vector_size(W * 4)));
typedef int32_t VK_PREP(vi) __attribute__((vector_size(W * 4)));
typedef uint32_t VK_PREP(vu) __attribute__((vector_size(W * 4)));
typedef uint16_t VK_PREP(vh) __attribute__((vector_size(W * 2)));
typedef int16_t VK_PREP(vs) __attribute__((vector_size(W * 2)));
typedef uint8_t VK_PREP(vb) __attribute__((vector_size(W)));

/// x[k0 .. k0+W) with zeros at and past K.
static inline __attribute__((always_inline)) VK_PREP(vf) VK_PREP(load)(const float *x, size_t k0, size_t K) {
    VK_PREP(vf) v;
    if (k0 + W <= K) {
        memcpy(&v, x + k0, sizeof v);
    } else {
        float t[W];
        for (size_t i = 0; i < W; i++) t[i] = k0 + i < K ? x[k0 + i] : 0.0f;
        memcpy(&v, t, sizeof v);
    }
    return v;
}

static inline __attribute__((always_inline)) VK_PREP(vf) VK_PREP(vsel)(VK_PREP(vi) m, VK_PREP(vf) a, VK_PREP(vf) b) {
    VK_PREP(vi) ia, ib, r;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    r = (m & ia) | (~m & ib);
    VK_PREP(vf) out;
    memcpy(&out, &r, sizeof out);
    return out;
}

/// W quantised values in [0, levels] from x[k .. k+W) (zeros at and past K).
static inline __attribute__((always_inline)) VK_PREP(vi) VK_PREP(q8_vec)(VK_PREP(vf) x, VK_PREP(vf) vinv, VK_PREP(vi) vzp,
                                                                         int levels) {
    typedef VK_PREP(vf) vf;
    typedef VK_PREP(vi) vi;
    vf t = x * vinv;
#if defined(VK_X86) && (W == 16 || W == 8)
    // cvtps2dq rounds to nearest even (MXCSR's default, as every fp32 operation here assumes) and turns NaN into
    // INT32_MIN, which the clamp below takes to 0: the same bytes as the generic code, in fewer operations.
#if W == 16
    __m512i r = _mm512_cvtps_epi32((__m512)t);
#else
    __m256i r = _mm256_cvtps_epi32((__m256)t);
#endif
    vi q;
    memcpy(&q, &r, sizeof q);
    q = q + vzp;
    return __builtin_elementwise_min(__builtin_elementwise_max(q, (vi){0}), (vi){0} + levels);
#elif W == 4
    // No rounding instruction on baseline x86-64: clamp, then round to nearest even by adding and subtracting
    // 1.5·2²³ (exact for |t| ≤ 512); the barrier keeps the product from being fused with the addition.
    VK_ROUNDED(t);
    t = __builtin_elementwise_min(__builtin_elementwise_max(t, (vf){0} - 512.0f), (vf){0} + 512.0f); // NaN → −512
    t = (t + 12582912.0f) - 12582912.0f;
#else
    t = __builtin_elementwise_roundeven(t);
    t = __builtin_elementwise_min(__builtin_elementwise_max(t, (vf){0} - 512.0f), (vf){0} + 512.0f); // NaN → −512
#endif
#if !(defined(VK_X86) && (W == 16 || W == 8))
    vi q = __builtin_convertvector(t, vi) + vzp;
    return __builtin_elementwise_min(__builtin_elementwise_max(q, (vi){0}), (vi){0} + levels);
#endif
}

static void VK_PREP(q8_row)(const float *x, size_t K, size_t kp, int format, void *dst, int32_t *zp_out,
                            float *scale_out) {
    typedef VK_PREP(vf) vf;
    typedef VK_PREP(vi) vi;
    // min / max as compare-and-select (a NaN never wins, as x86 min / max when the accumulator is the second
    // operand); four independent chains.
    vf lo[4] = {{0}, {0}, {0}, {0}}, hi[4] = {{0}, {0}, {0}, {0}};
    size_t full = K / W * W, k4 = K / (4 * W) * (4 * W);
    for (size_t k = 0; k < k4; k += 4 * W) {
        for (int j = 0; j < 4; j++) {
            vf v;
            memcpy(&v, x + k + j * W, sizeof v);
            lo[j] = VK_PREP(vsel)(v < lo[j], v, lo[j]);
            hi[j] = VK_PREP(vsel)(v > hi[j], v, hi[j]);
        }
    }
    for (size_t k = k4; k < K; k += W) {
        vf v = VK_PREP(load)(x, k, K);
        lo[0] = VK_PREP(vsel)(v < lo[0], v, lo[0]);
        hi[0] = VK_PREP(vsel)(v > hi[0], v, hi[0]);
    }
    for (int j = 1; j < 4; j++) {
        lo[0] = VK_PREP(vsel)(lo[j] < lo[0], lo[j], lo[0]);
        hi[0] = VK_PREP(vsel)(hi[j] > hi[0], hi[j], hi[0]);
    }
    // Halving reduction (min and max are exact: the order does not matter).
    vf l = lo[0], h = hi[0], t;
#if W == 16
    t = __builtin_shufflevector(l, l, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    l = VK_PREP(vsel)(t < l, t, l);
    t = __builtin_shufflevector(h, h, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    h = VK_PREP(vsel)(t > h, t, h);
#endif
#if W >= 8
    t = __builtin_shufflevector(l, l, VK_PREP_SWAP4);
    l = VK_PREP(vsel)(t < l, t, l);
    t = __builtin_shufflevector(h, h, VK_PREP_SWAP4);
    h = VK_PREP(vsel)(t > h, t, h);
#endif
    t = __builtin_shufflevector(l, l, VK_PREP_SWAP2);
    l = VK_PREP(vsel)(t < l, t, l);
    t = __builtin_shufflevector(h, h, VK_PREP_SWAP2);
    h = VK_PREP(vsel)(t > h, t, h);
    t = __builtin_shufflevector(l, l, VK_PREP_SWAP1);
    l = VK_PREP(vsel)(t < l, t, l);
    t = __builtin_shufflevector(h, h, VK_PREP_SWAP1);
    h = VK_PREP(vsel)(t > h, t, h);
    float inv, scale;
    int32_t zp;
    int levels = vk_q8_levels(format);
    vk_q8_row_params(l[0], h[0], levels, &inv, &zp, &scale);
    *zp_out = zp;
    *scale_out = scale;
    vf vinv = (vf){0} + inv;
    vi vzp = (vi){0} + zp;
    size_t k = 0;
    if (format == VK_A_S16) {
        int16_t *d = dst;
        for (; k < full; k += W) {
            vf v;
            memcpy(&v, x + k, sizeof v);
            VK_PREP(vs) s = __builtin_convertvector(VK_PREP(q8_vec)(v, vinv, vzp, levels), VK_PREP(vs));
            memcpy(d + k, &s, sizeof s);
        }
        for (; k < kp; k += W) {
            VK_PREP(vs) s = __builtin_convertvector(VK_PREP(q8_vec)(VK_PREP(load)(x, k, K), vinv, vzp, levels), VK_PREP(vs));
            for (size_t i = 0; i < W && k + i < kp; i++) d[k + i] = s[i];
        }
    } else {
        uint8_t *d = dst;
        for (; k < full; k += W) {
            vf v;
            memcpy(&v, x + k, sizeof v);
            VK_PREP(vb) b = __builtin_convertvector(VK_PREP(q8_vec)(v, vinv, vzp, levels), VK_PREP(vb));
            memcpy(d + k, &b, sizeof b);
        }
        for (; k < kp; k += W) {
            VK_PREP(vb) b = __builtin_convertvector(VK_PREP(q8_vec)(VK_PREP(load)(x, k, K), vinv, vzp, levels), VK_PREP(vb));
            for (size_t i = 0; i < W && k + i < kp; i++) d[k + i] = b[i];
        }
    }
}

/// W bf16 roundings of v (as 32-bit lanes holding the 16 bits).
static inline __attribute__((always_inline)) VK_PREP(vu) VK_PREP(bf16_vec)(VK_PREP(vf) v) {
    typedef VK_PREP(vu) vu;
    vu u;
    memcpy(&u, &v, sizeof u);
    vu e = u & 0x7F800000u;
    vu rne = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    vu nan = (u | 0x00400000u) >> 16;
    vu zero = (u >> 16) & 0x8000u;
    vu is_zero = (vu)(e == 0), is_nan = (vu)((e == 0x7F800000u) & ((u & 0x7FFFFFu) != 0));
    return (is_zero & zero) | (~is_zero & ((is_nan & nan) | (~is_nan & rne)));
}

static inline __attribute__((always_inline)) VK_PREP(vh) VK_PREP(bf16_pack)(VK_PREP(vu) r, int swapped) {
    VK_PREP(vh) hv = __builtin_convertvector(r, VK_PREP(vh));
    if (swapped) {
#if W == 16
        hv = __builtin_shufflevector(hv, hv, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
#elif W == 8
        hv = __builtin_shufflevector(hv, hv, 1, 0, 3, 2, 5, 4, 7, 6);
#else
        hv = __builtin_shufflevector(hv, hv, 1, 0, 3, 2);
#endif
    }
    return hv;
}

static void VK_PREP(bf16_row)(const float *x, size_t K, size_t kp, int format, void *dst) {
    typedef VK_PREP(vu) vu;
    size_t full = K / W * W, k = 0;
    int swapped = format == VK_A_BF16_SWAPPED;
    if (format == VK_A_F32) {
        float *d = dst;
        for (; k < full; k += W) {
            VK_PREP(vf) v;
            memcpy(&v, x + k, sizeof v);
            vu f = VK_PREP(bf16_vec)(v) << 16;
            memcpy(d + k, &f, sizeof f);
        }
        for (; k < kp; k += W) {
            vu f = VK_PREP(bf16_vec)(VK_PREP(load)(x, k, K)) << 16;
            for (size_t i = 0; i < W && k + i < kp; i++) memcpy(d + k + i, (const uint32_t *)&f + i, 4);
        }
    } else {
        uint16_t *d = dst;
        for (; k < full; k += W) {
            VK_PREP(vf) v;
            memcpy(&v, x + k, sizeof v);
            VK_PREP(vh) h = VK_PREP(bf16_pack)(VK_PREP(bf16_vec)(v), swapped);
            memcpy(d + k, &h, sizeof h);
        }
        for (; k < kp; k += W) {
            VK_PREP(vh) h = VK_PREP(bf16_pack)(VK_PREP(bf16_vec)(VK_PREP(load)(x, k, K)), swapped);
            for (size_t i = 0; i < W && k + i < kp; i++) d[k + i] = h[i];
        }
    }
}

#undef VK_PREP_SWAP4
#undef VK_PREP_SWAP2
#undef VK_PREP_SWAP1
