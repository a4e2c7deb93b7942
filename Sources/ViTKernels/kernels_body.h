// The kernels' bodies, included once per instruction set by vit_kernels.c with VK_NAME defined to add a suffix
// and every function compiled for that target (#pragma clang attribute). Not a public header.

typedef float VK_NAME(vf) __attribute__((vector_size(W * sizeof(float))));
typedef int32_t VK_NAME(vi) __attribute__((vector_size(W * sizeof(int32_t))));
#define vf VK_NAME(vf)
#define vi VK_NAME(vi)
#define splat VK_NAME(splat)
#define store_partial VK_NAME(store_partial)
#define load_partial VK_NAME(load_partial)
#define load VK_NAME(load)
#define store VK_NAME(store)
#define vselect VK_NAME(vselect)
#define vmin VK_NAME(vmin)
#define vmax VK_NAME(vmax)
#define hsum VK_NAME(hsum)
#define hmax VK_NAME(hmax)
#define vexp VK_NAME(vexp)
#define verf VK_NAME(verf)
#define vtanh VK_NAME(vtanh)

static inline __attribute__((always_inline)) vf splat(float v) { return (vf){0} + v; }
static inline __attribute__((always_inline)) vf load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline __attribute__((always_inline)) void store(float *p, vf v) { memcpy(p, &v, sizeof v); }
/// The first n (< W) floats at p, the other lanes set to `fill`; and the matching partial store.
static inline __attribute__((always_inline)) vf load_partial(const float *p, size_t n, float fill) {
    float tmp[W];
    for (size_t i = 0; i < W; i++) tmp[i] = i < n ? p[i] : fill;
    vf v;
    memcpy(&v, tmp, sizeof v);
    return v;
}
static inline __attribute__((always_inline)) void store_partial(float *p, vf v, size_t n) {
    float tmp[W];
    memcpy(tmp, &v, sizeof v);
    for (size_t i = 0; i < n; i++) p[i] = tmp[i];
}
static inline __attribute__((always_inline)) vf vselect(vi mask, vf a, vf b) {
    vi ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    vi r = (mask & ia) | (~mask & ib);
    vf out;
    memcpy(&out, &r, sizeof out);
    return out;
}
static inline __attribute__((always_inline)) vf vmin(vf a, vf b) { return vselect(a < b, a, b); }
static inline __attribute__((always_inline)) vf vmax(vf a, vf b) { return vselect(a > b, a, b); }
// Horizontal reductions by halving: log2(W) shuffles instead of W scalar steps.
#if W == 16
#define VK_LANES (vf){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
#define VK_REDUCE(v, op)                                                                                  \
    v = op(v, __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));       \
    v = op(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));       \
    v = op(v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));       \
    v = op(v, __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));
#elif W == 8
#define VK_LANES (vf){0, 1, 2, 3, 4, 5, 6, 7}
#define VK_REDUCE(v, op)                                                    \
    v = op(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3));       \
    v = op(v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5));       \
    v = op(v, __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6));
#else
#define VK_LANES (vf){0, 1, 2, 3}
#define VK_REDUCE(v, op)                                        \
    v = op(v, __builtin_shufflevector(v, v, 2, 3, 0, 1));       \
    v = op(v, __builtin_shufflevector(v, v, 1, 0, 3, 2));
#endif
#define VK_ADD(a, b) ((a) + (b))
static inline __attribute__((always_inline)) float hsum(vf v) {
    VK_REDUCE(v, VK_ADD)
    return v[0];
}
static inline __attribute__((always_inline)) float hmax(vf v) {
    VK_REDUCE(v, vmax)
    return v[0];
}

// exp: Cephes' range reduction x = n·ln2 + r and a degree-6 polynomial; about 1 ulp on [-87, 88].
static inline __attribute__((always_inline)) vf vexp(vf x) {
    x = vmin(vmax(x, splat(-87.33654f)), splat(88.72283f));
    vf fx = x * splat(1.44269504088896341f);
    // round to nearest
    vi n = __builtin_convertvector(fx + vselect(fx >= splat(0), splat(0.5f), splat(-0.5f)), vi);
    vf nf = __builtin_convertvector(n, vf);
    vf r = x - nf * splat(0.693359375f) + nf * splat(2.12194440e-4f);
    vf r2 = r * r;
    vf y = splat(1.9875691500e-4f);
    y = y * r + splat(1.3981999507e-3f);
    y = y * r + splat(8.3334519073e-3f);
    y = y * r + splat(4.1665795894e-2f);
    y = y * r + splat(1.6666665459e-1f);
    y = y * r + splat(5.0000001201e-1f);
    y = y * r2 + r + splat(1.0f);
    vi bits = (n + 127) << 23;
    vf scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

// erf: the rational approximation used by Eigen and XLA (|error| < 5e-7), clamped to [-4, 4].
static inline __attribute__((always_inline)) vf verf(vf x) {
    x = vmin(vmax(x, splat(-4.0f)), splat(4.0f));
    vf x2 = x * x;
    vf p = splat(-2.72614225801306e-10f);
    p = p * x2 + splat(2.77068142495902e-08f);
    p = p * x2 + splat(-2.10102402082508e-06f);
    p = p * x2 + splat(-5.69250639462346e-05f);
    p = p * x2 + splat(-7.34990630326855e-04f);
    p = p * x2 + splat(-2.95459980854025e-03f);
    p = p * x2 + splat(-1.60960333262415e-02f);
    p = p * x;
    vf q = splat(-1.45660718464996e-05f);
    q = q * x2 + splat(-2.13374055278905e-04f);
    q = q * x2 + splat(-1.68282697438203e-03f);
    q = q * x2 + splat(-7.37332916720468e-03f);
    q = q * x2 + splat(-1.42647390514189e-02f);
    return p / q;
}

static inline __attribute__((always_inline)) vf vtanh(vf x) {
    // tanh(x) = 1 - 2 / (exp(2x) + 1), accurate to a few ulp away from 0; use the series near 0.
    vf e = vexp(x * splat(2.0f));
    vf t = splat(1.0f) - splat(2.0f) / (e + splat(1.0f));
    vf x2 = x * x;
    vf small = x * (splat(1.0f) + x2 * (splat(-1.0f / 3) + x2 * splat(2.0f / 15)));
    return vselect(x2 < splat(1e-4f), small, t);
}

static float VK_NAME(exp1)(float x) { return vexp(splat(x))[0]; }
static float VK_NAME(erf1)(float x) { return verf(splat(x))[0]; }

static void VK_NAME(layer_norm)(const float *x, float *y, size_t rows, size_t dim, const float *gamma, const float *beta,
                   float eps) {
    size_t vec = dim / W * W;
    for (size_t r = 0; r < rows; r++) {
        const float *in = x + r * dim;
        float *out = y + r * dim;
        vf acc = splat(0);
        size_t i = 0;
        for (; i < vec; i += W) acc += load(in + i);
        float sum = hsum(acc);
        for (; i < dim; i++) sum += in[i];
        float mean = sum / (float)dim;
        vf m = splat(mean);
        acc = splat(0);
        for (i = 0; i < vec; i += W) {
            vf d = load(in + i) - m;
            acc += d * d;
        }
        float var = hsum(acc);
        for (; i < dim; i++) var += (in[i] - mean) * (in[i] - mean);
        var /= (float)dim;
        float inv = 1.0f / sqrtf(var + eps);
        vf vinv = splat(inv);
        for (i = 0; i < vec; i += W) store(out + i, (load(in + i) - m) * vinv * load(gamma + i) + load(beta + i));
        for (; i < dim; i++) out[i] = (in[i] - mean) * inv * gamma[i] + beta[i];
    }
}

/// Softmax of R rows (a constant: 1 or 4) of ≥ W columns, ld apart, interleaved: one row alone is a chain of
/// dependent reductions and exp polynomials (latency-bound, ~5 cycles per element on 50-column rows); R independent
/// rows fill the pipes. Each row gets exactly the operations it would get alone, so the bits do not depend on R.
/// The last W columns are handled as one vector that overlaps the full vectors before it; only its lanes past the
/// full vectors (`fresh`) count in the sum. It is computed from the inputs first and stored last.
static inline __attribute__((always_inline)) void VK_NAME(softmax_block)(float *x, const int R, size_t cols, size_t ld) {
    size_t vec = cols / W * W, tail = cols - vec;
    vi fresh = VK_LANES >= splat((float)(W - tail));
    vf last[4], vm[4], acc[4];
    for (int r = 0; r < R; r++) vm[r] = last[r] = load(x + r * ld + cols - W);
    for (size_t i = 0; i < vec; i += W)
        for (int r = 0; r < R; r++) vm[r] = vmax(vm[r], load(x + r * ld + i));
    for (int r = 0; r < R; r++) {
        vm[r] = splat(hmax(vm[r]));
        last[r] = vexp(last[r] - vm[r]);
        acc[r] = tail ? vselect(fresh, last[r], splat(0)) : splat(0);
    }
    for (size_t i = 0; i < vec; i += W)
        for (int r = 0; r < R; r++) {
            vf e = vexp(load(x + r * ld + i) - vm[r]);
            store(x + r * ld + i, e);
            acc[r] += e;
        }
    for (int r = 0; r < R; r++) {
        float *row = x + r * ld;
        vf vinv = splat(1.0f / hsum(acc[r]));
        for (size_t i = 0; i < vec; i += W) store(row + i, load(row + i) * vinv);
        if (tail) store(row + cols - W, last[r] * vinv);
    }
}

static void VK_NAME(softmax_rows)(float *x, size_t rows, size_t cols, size_t ld) {
    if (cols < W) {  // short rows: padded partial vectors
        for (size_t r = 0; r < rows; r++) {
            float *row = x + r * ld;
            vf v = load_partial(row, cols, -INFINITY);
            vf e = vexp(v - splat(hmax(v)));
            e = vselect(VK_LANES < splat((float)cols), e, splat(0));
            store_partial(row, e * splat(1.0f / hsum(e)), cols);
        }
        return;
    }
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) VK_NAME(softmax_block)(x + r * ld, 4, cols, ld);
    for (; r < rows; r++) VK_NAME(softmax_block)(x + r * ld, 1, cols, ld);
}

/// One activation (VK_ACT_*) on a vector: GELU (erf or tanh form), QuickGELU x·σ(1.702x), SiLU x·σ(x).
static inline __attribute__((always_inline)) vf VK_NAME(activate)(vf v, int activation) {
    const float rsqrt2 = 0.70710678118654752f, k = 0.7978845608028654f;
    switch (activation) {
    case VK_ACT_GELU_TANH: return splat(0.5f) * v * (splat(1.0f) + vtanh(splat(k) * (v + splat(0.044715f) * v * v * v)));
    case VK_ACT_QUICK_GELU: return v / (splat(1.0f) + vexp(v * splat(-1.702f)));
    case VK_ACT_SILU: return v / (splat(1.0f) + vexp(-v));
    default: return splat(0.5f) * v * (splat(1.0f) + verf(v * splat(rsqrt2)));
    }
}

/// The activation in place over rows × cols floats, rows ld apart.
static void VK_NAME(activation_rows)(float *x, size_t rows, size_t cols, size_t ld, int activation) {
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * ld;
        for (size_t i = 0; i < cols; i += W) {
            size_t n = cols - i < W ? cols - i : W;
            vf v = n == W ? load(row + i) : load_partial(row + i, n, 0);
            vf y = VK_NAME(activate)(v, activation);
            if (n == W) store(row + i, y);
            else store_partial(row + i, y, n);
        }
    }
}

/// Gated linear unit: y[r][i] = act(x[r][i]) · x[r][h + i] for rows of 2h inputs (gate first), h outputs.
static void VK_NAME(glu_rows)(const float *x, float *y, size_t rows, size_t h, int activation) {
    for (size_t r = 0; r < rows; r++) {
        const float *gate = x + r * 2 * h, *value = gate + h;
        float *out = y + r * h;
        for (size_t i = 0; i < h; i += W) {
            size_t n = h - i < W ? h - i : W;
            vf g = n == W ? load(gate + i) : load_partial(gate + i, n, 0);
            vf v = n == W ? load(value + i) : load_partial(value + i, n, 0);
            vf o = VK_NAME(activate)(g, activation) * v;
            if (n == W) store(out + i, o);
            else store_partial(out + i, o, n);
        }
    }
}

#undef splat
#undef store_partial
#undef load_partial
#undef load
#undef store
#undef vselect
#undef vmin
#undef vmax
#undef hsum
#undef hmax
#undef vexp
#undef verf
#undef vtanh
#undef vf
#undef vi
#undef VK_LANES
#undef VK_REDUCE
#undef VK_ADD
