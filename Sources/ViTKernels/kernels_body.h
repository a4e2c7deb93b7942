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
static inline __attribute__((always_inline)) float hsum(vf v) {
    float s = 0;
    for (int i = 0; i < W; i++) s += v[i];
    return s;
}
static inline __attribute__((always_inline)) float hmax(vf v) {
    float m = v[0];
    for (int i = 1; i < W; i++) m = v[i] > m ? v[i] : m;
    return m;
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

static void VK_NAME(softmax_rows)(float *x, size_t rows, size_t cols, size_t ld) {
    size_t vec = cols / W * W, tail = cols - vec;
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * ld;
        vf vm = splat(-INFINITY);
        size_t i = 0;
        for (; i < vec; i += W) vm = vmax(vm, load(row + i));
        if (tail) vm = vmax(vm, load_partial(row + vec, tail, -INFINITY));
        vm = splat(hmax(vm));
        vf acc = splat(0);
        for (i = 0; i < vec; i += W) {
            vf e = vexp(load(row + i) - vm);
            store(row + i, e);
            acc += e;
        }
        vf last = splat(0);
        if (tail) {
            // Padding lanes are -inf: exp gives 0 and they add nothing to the sum.
            last = vexp(load_partial(row + vec, tail, -INFINITY) - vm);
            last = vselect(last == last, last, splat(0));
            acc += last;
        }
        vf vinv = splat(1.0f / hsum(acc));
        for (i = 0; i < vec; i += W) store(row + i, load(row + i) * vinv);
        if (tail) store_partial(row + vec, last * vinv, tail);
    }
}

static void VK_NAME(add_bias)(float *x, size_t rows, size_t cols, size_t ld, const float *bias) {
    size_t vec = cols / W * W;
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * ld;
        size_t i = 0;
        for (; i < vec; i += W) store(row + i, load(row + i) + load(bias + i));
        for (; i < cols; i++) row[i] += bias[i];
    }
}

static void VK_NAME(add_bias_gelu)(float *x, size_t rows, size_t cols, const float *bias) {
    size_t vec = cols / W * W;
    const float rsqrt2 = 0.70710678118654752f;
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * cols;
        size_t i = 0;
        for (; i < vec; i += W) {
            vf v = load(row + i) + load(bias + i);
            store(row + i, splat(0.5f) * v * (splat(1.0f) + verf(v * splat(rsqrt2))));
        }
        if (i < cols) {
            size_t n = cols - i;
            vf v = load_partial(row + i, n, 0) + load_partial(bias + i, n, 0);
            store_partial(row + i, splat(0.5f) * v * (splat(1.0f) + verf(v * splat(rsqrt2))), n);
        }
    }
}

static void VK_NAME(add_bias_gelu_tanh)(float *x, size_t rows, size_t cols, const float *bias) {
    size_t vec = cols / W * W;
    const float k = 0.7978845608028654f;
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * cols;
        size_t i = 0;
        for (; i < vec; i += W) {
            vf v = load(row + i) + load(bias + i);
            store(row + i, splat(0.5f) * v * (splat(1.0f) + vtanh(splat(k) * (v + splat(0.044715f) * v * v * v))));
        }
        if (i < cols) {
            size_t n = cols - i;
            vf v = load_partial(row + i, n, 0) + load_partial(bias + i, n, 0);
            store_partial(row + i, splat(0.5f) * v * (splat(1.0f) + vtanh(splat(k) * (v + splat(0.044715f) * v * v * v))), n);
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
