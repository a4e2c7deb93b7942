// The row preparation of the reduced-precision GEMMs (INT8 quantisation, BF16 rounding), included once per
// instruction set by qgemm_prep.c with W (lanes) and VK_PREP(name) defined and every function compiled for that
// target. The same source for every level: every level writes the same bytes. Not a public header.

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

static void VK_PREP(q8_row)(const float *x, size_t K, size_t kp, int format, void *dst, int32_t *zp_out,
                            float *scale_out) {
    typedef VK_PREP(vf) vf;
    typedef VK_PREP(vi) vi;
    vf lo = {0}, hi = {0};
    for (size_t k = 0; k < K; k += W) {
        vf v = VK_PREP(load)(x, k, K);
        lo = __builtin_elementwise_min(lo, v); // NaN-ignoring (minnum / maxnum)
        hi = __builtin_elementwise_max(hi, v);
    }
    float l = 0, h = 0;
    for (int i = 0; i < W; i++) {
        l = __builtin_elementwise_min(l, lo[i]);
        h = __builtin_elementwise_max(h, hi[i]);
    }
    float inv, scale;
    int32_t zp;
    vk_q8_row_params(l, h, &inv, &zp, &scale);
    *zp_out = zp;
    *scale_out = scale;
    vf vinv = (vf){0} + inv;
    vi vzp = (vi){0} + zp;
    for (size_t k = 0; k < kp; k += W) {
        vf t = __builtin_elementwise_roundeven(VK_PREP(load)(x, k, K) * vinv);
        t = __builtin_elementwise_min(__builtin_elementwise_max(t, (vf){0} - 512.0f), (vf){0} + 512.0f); // NaN → −512
        vi q = __builtin_convertvector(t, vi) + vzp;
        q = __builtin_elementwise_min(__builtin_elementwise_max(q, (vi){0}), (vi){0} + 255);
        if (k >= K) q = (vi){0};
        size_t n = kp - k < W ? kp - k : W;
        if (format == VK_A_S16) {
            VK_PREP(vs) s = __builtin_convertvector(q, VK_PREP(vs));
            memcpy((int16_t *)dst + k, &s, n * 2);
        } else {
            VK_PREP(vb) b = __builtin_convertvector(q, VK_PREP(vb));
            memcpy((uint8_t *)dst + k, &b, n);
        }
    }
}

static void VK_PREP(bf16_row)(const float *x, size_t K, size_t kp, int format, void *dst) {
    typedef VK_PREP(vu) vu;
    for (size_t k = 0; k < kp; k += W) {
        VK_PREP(vf) v = VK_PREP(load)(x, k, K);
        vu u;
        memcpy(&u, &v, sizeof u);
        vu e = u & 0x7F800000u;
        vu rne = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
        vu nan = (u | 0x00400000u) >> 16;
        vu zero = (u >> 16) & 0x8000u;
        vu is_zero = (vu)(e == 0), is_nan = (vu)((e == 0x7F800000u) & ((u & 0x7FFFFFu) != 0));
        vu r = (is_zero & zero) | (~is_zero & ((is_nan & nan) | (~is_nan & rne)));
        size_t n = kp - k < W ? kp - k : W;
        if (format == VK_A_F32) {
            vu f = r << 16;
            memcpy((float *)dst + k, &f, n * 4);
        } else {
            VK_PREP(vh) hv = __builtin_convertvector(r, VK_PREP(vh));
            if (format == VK_A_BF16_SWAPPED) {
#if W == 16
                hv = __builtin_shufflevector(hv, hv, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
#elif W == 8
                hv = __builtin_shufflevector(hv, hv, 1, 0, 3, 2, 5, 4, 7, 6);
#else
                hv = __builtin_shufflevector(hv, hv, 1, 0, 3, 2);
#endif
            }
            memcpy((uint16_t *)dst + k, &hv, n * 2);
        }
    }
}
