// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// Reduced-precision packed GEMMs (INT8 and BF16): packing, A preparation, blocking and threading, shared by every
// instruction set's micro-kernel (qgemm_kernels.h). See vit_qgemm.h for the schemes.
//
// B is packed into panels of nr columns (zero-padded on the right), each panel kp = K rounded up to the kernel's
// kpad rows deep, in groups of kg consecutive k per column (kg = 4 for vpdpbusd / AMX, 2 for vpmaddwd and BF16
// pairs, 1 for the portable INT8 kernel). INT8 panels carry their columns' scales and sums of the quantised weights.
//
// A call works through the rows in blocks of up to ~4 MB of prepared A: the block's rows are quantised (INT8) or
// rounded (BF16) into a per-calling-thread buffer in the kernel's format (one pass on the pool, each row
// independently), then tasks of ≤ mr·mc_tiles rows × a range of panels run on the pool as in gemm.c: for each panel,
// each row tile calls the micro-kernel over the whole of K (no K blocking: INT8 sums stay in INT32 registers until
// the end, and the BF16 sum order is the same on every path), which finishes the tile (dequantisation, C, bias);
// the activation follows (vk_activate_rows, as the fp32 GEMM).
//
// Reproducibility: an element depends only on its row of A (prepared on its own), its column of B and K — never on
// M, the row's position, the block split or the thread count.

#include "vit_gemm.h"
#include "vit_qgemm.h"

#include "gemm_kernels.h"
#include "qgemm_kernels.h"
#include "vk_isa.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifndef VK_LP_BLOCK_BYTES
#define VK_LP_BLOCK_BYTES (4u << 20) ///< prepared A per row block
#endif
#define VK_Q8_MAX_K 65536

typedef struct {
    size_t K, N, kp, panels;
    size_t bytes;
    const vk_lp_kernel *kernel;
    void *data;      ///< panels (int8 or bf16)
    int32_t *colsum; ///< INT8: Σ_k q[k][n] per column, panels·nr entries
    float *scale;    ///< INT8: s_w per column, panels·nr entries
} lp_packed;

struct vk_packed_q8 {
    lp_packed p;
};
struct vk_packed_bf16 {
    lp_packed p;
};

// ---- Kernel choice --------------------------------------------------------------------------------------------------

/// Every kernel of a precision, widest first; `level` is the vk_isa level it needs.
typedef struct {
    const vk_lp_kernel *kernel;
    vk_level level;
} lp_entry;

static const lp_entry q8_kernels[] = {
#ifdef VK_X86
    {&vk_q8_kernel_amx, VK_LEVEL_AVX512},
    {&vk_q8_kernel_vnni512, VK_LEVEL_AVX512},
    {&vk_q8_kernel_avxvnni, VK_LEVEL_AVX2},
    {&vk_q8_kernel_avx2_maddubs, VK_LEVEL_AVX2},
    {&vk_q8_kernel_avx2, VK_LEVEL_AVX2},
#endif
    {&vk_q8_kernel_portable, VK_LEVEL_FALLBACK},
};

static const lp_entry bf16_kernels[] = {
#ifdef VK_X86
    {&vk_bf16_kernel_amx, VK_LEVEL_AVX512},
    {&vk_bf16_kernel_avx512, VK_LEVEL_AVX512},
    {&vk_bf16_kernel_avx2, VK_LEVEL_AVX2},
#endif
    {&vk_bf16_kernel_portable, VK_LEVEL_FALLBACK},
};

#define COUNT(a) (sizeof a / sizeof a[0])

/// VITCLASSIFY_NO_AMX=1: the default kernels skip AMX (e.g. for BF16 results that are the same bits as on a CPU
/// without AMX).
static int amx_refused(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv("VITCLASSIFY_NO_AMX");
        v = e && *e && strcmp(e, "0") != 0;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

/// The widest kernel the CPU supports within `level` (the portable one at least).
static const vk_lp_kernel *choose(const lp_entry *list, size_t n, vk_level level) {
    for (size_t i = 0; i < n; i++) {
        if (list[i].level > level || (list[i].kernel->usable && !list[i].kernel->usable())) continue;
        if (strncmp(list[i].kernel->name, "amx", 3) == 0 && amx_refused()) continue;
        return list[i].kernel;
    }
    return list[n - 1].kernel;
}

/// Kernel by name among those the CPU supports (any level), or NULL.
static const vk_lp_kernel *by_name(const lp_entry *list, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (name && strcmp(list[i].kernel->name, name) == 0)
            return !list[i].kernel->usable || list[i].kernel->usable() ? list[i].kernel : NULL;
    return NULL;
}

static const char *available(const lp_entry *list, size_t n, size_t i) {
    for (size_t j = 0; j < n; j++) {
        if (list[j].kernel->usable && !list[j].kernel->usable()) continue;
        if (i-- == 0) return list[j].kernel->name;
    }
    return NULL;
}

static const vk_lp_kernel *q8_current(void) { return choose(q8_kernels, COUNT(q8_kernels), vk_isa_level()); }
static const vk_lp_kernel *bf16_current(void) { return choose(bf16_kernels, COUNT(bf16_kernels), vk_isa_level()); }

const char *vk_gemm_q8_kernel_name(void) { return q8_current()->name; }
const char *vk_gemm_bf16_kernel_name(void) { return bf16_current()->name; }
/// The weight range of an INT8 kernel (q8_max; 0 there means the full 127).
static int weight_max(const vk_lp_kernel *kernel) { return kernel->q8_max ? kernel->q8_max : 127; }

int vk_q8_kernel_weight_max(const char *name) {
    for (size_t i = 0; i < COUNT(q8_kernels); i++)
        if (name && strcmp(q8_kernels[i].kernel->name, name) == 0) return weight_max(q8_kernels[i].kernel);
    return 0;
}
const char *vk_q8_kernel_available(size_t i) { return available(q8_kernels, COUNT(q8_kernels), i); }
const char *vk_bf16_kernel_available(size_t i) { return available(bf16_kernels, COUNT(bf16_kernels), i); }

// ---- Packing -------------------------------------------------------------------------------------------------------

static void lp_free(lp_packed *p) {
    if (!p) return;
    free(p->data);
    free(p->colsum);
    free(p->scale);
    free(p);
}

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/// An empty packed matrix for `kernel` (element size `elem`), its panels zeroed.
static lp_packed *lp_alloc(const vk_lp_kernel *kernel, size_t K, size_t N, size_t elem) {
    if (!kernel) return NULL;
    size_t nr = kernel->nr, kp = round_up(K, kernel->kpad), panels = (N + nr - 1) / nr;
    if (kp != 0 && panels > SIZE_MAX / 4 / elem / nr / kp) return NULL;
    size_t bytes = round_up(panels * nr * kp * elem, 64);
    if (bytes == 0) bytes = 64;
    lp_packed *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->data = aligned_alloc(64, bytes);
    if (!p->data) {
        free(p);
        return NULL;
    }
    memset(p->data, 0, bytes);
    p->K = K;
    p->N = N;
    p->kp = kp;
    p->panels = panels;
    p->kernel = kernel;
    p->bytes = bytes + sizeof *p;
    if (kernel->precision == VK_LP_Q8) {
        size_t cols = round_up(panels * nr, 16) + 16;
        p->colsum = aligned_alloc(64, round_up(cols * 4, 64));
        p->scale = aligned_alloc(64, round_up(cols * 4, 64));
        if (!p->colsum || !p->scale) {
            lp_free(p);
            return NULL;
        }
        memset(p->colsum, 0, cols * 4);
        memset(p->scale, 0, cols * 4);
        p->bytes += 2 * round_up(cols * 4, 64);
    }
    return p;
}

/// Offset of element (k, column n) in the panels.
static inline size_t lp_index(const lp_packed *p, size_t k, size_t n) {
    const vk_lp_kernel *kr = p->kernel;
    size_t panel = n / kr->nr, c = n % kr->nr, kg = kr->kg;
    return panel * p->kp * kr->nr + (k / kg) * kr->nr * kg + c * kg + k % kg;
}

static vk_packed_q8 *pack_q8(const vk_lp_kernel *kernel, const float *Bt, size_t K, size_t N, size_t ldbt) {
    if (K > VK_Q8_MAX_K) return NULL;
    _Static_assert(offsetof(vk_packed_q8, p) == 0, "layout");
    lp_packed *p = lp_alloc(kernel, K, N, 1);
    if (!p) return NULL;
    int8_t *data = p->data;
    for (size_t n = 0; n < N; n++) {
        const float *row = Bt + n * ldbt;
        float amax = 0;
        for (size_t k = 0; k < K; k++) {
            float a = __builtin_fabsf(row[k]);
            if (a > amax) amax = a;
        }
        const int qmax = weight_max(p->kernel);
        float inv = 0, scale = 0;
        if (amax >= VK_Q8_TINY) { // also excludes NaN
            scale = amax / (float)qmax;
            inv = (float)qmax / amax;
        }
        // lp_index without its divisions: column n's base, then one group of kg consecutive k per step. Rounding
        // to nearest even by adding and subtracting 1.5·2²³ (exact for |t| < 2²²; larger t is clamped anyway),
        // after a barrier that keeps the product rounded to fp32 first: the same values as roundevenf, without a
        // libm call per weight (baseline x86-64 has no rounding instruction).
        const size_t nr = p->kernel->nr, kg = p->kernel->kg, step = nr * kg;
        int8_t *column = data + (n / nr) * p->kp * nr + (n % nr) * kg;
        int32_t sum = 0;
        for (size_t k0 = 0; k0 < K; k0 += kg) {
            int8_t *dst = column + (k0 / kg) * step;
            size_t m = K - k0 < kg ? K - k0 : kg;
            for (size_t j = 0; j < m; j++) {
                float t = row[k0 + j] * inv;
                VK_ROUNDED(t);
                t = (t + 12582912.0f) - 12582912.0f;
                int32_t q = t > qmax ? qmax : t < -qmax ? -qmax : t == t ? (int32_t)t : 0;
                dst[j] = (int8_t)q;
                sum += q;
            }
        }
        p->colsum[n] = sum;
        p->scale[n] = scale;
    }
    return (vk_packed_q8 *)p;
}

vk_packed_q8 *vk_pack_q8_transposed(const float *Bt, size_t K, size_t N, size_t ldbt) {
    return pack_q8(q8_current(), Bt, K, N, ldbt);
}

vk_packed_q8 *vk_pack_q8_transposed_with(const float *Bt, size_t K, size_t N, size_t ldbt, const char *kernel) {
    return pack_q8(by_name(q8_kernels, COUNT(q8_kernels), kernel), Bt, K, N, ldbt);
}

/// BF16 from fp32 (bits == NULL) or raw bits (f32 == NULL).
static vk_packed_bf16 *pack_bf16(const vk_lp_kernel *kernel, const float *f32, const uint16_t *bits, size_t K,
                                 size_t N, size_t ld) {
    lp_packed *p = lp_alloc(kernel, K, N, 2);
    if (!p) return NULL;
    uint16_t *data = p->data;
    size_t swap = kernel->b_swapped ? 1 : 0;
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < K; k++)
            data[lp_index(p, k ^ swap, n)] = f32 ? vk_bf16_round(f32[n * ld + k]) : vk_bf16_clean(bits[n * ld + k]);
    return (vk_packed_bf16 *)p;
}

uint16_t vk_bf16_from_float(float x) { return vk_bf16_round(x); }

vk_packed_bf16 *vk_pack_bf16_transposed(const float *Bt, size_t K, size_t N, size_t ldbt) {
    return pack_bf16(bf16_current(), Bt, NULL, K, N, ldbt);
}
vk_packed_bf16 *vk_pack_bf16_transposed_bits(const uint16_t *Bt, size_t K, size_t N, size_t ldbt) {
    return pack_bf16(bf16_current(), NULL, Bt, K, N, ldbt);
}
vk_packed_bf16 *vk_pack_bf16_transposed_with(const float *Bt, size_t K, size_t N, size_t ldbt, const char *kernel) {
    return pack_bf16(by_name(bf16_kernels, COUNT(bf16_kernels), kernel), Bt, NULL, K, N, ldbt);
}
vk_packed_bf16 *vk_pack_bf16_transposed_bits_with(const uint16_t *Bt, size_t K, size_t N, size_t ldbt,
                                                  const char *kernel) {
    return pack_bf16(by_name(bf16_kernels, COUNT(bf16_kernels), kernel), NULL, Bt, K, N, ldbt);
}

void vk_packed_q8_free(vk_packed_q8 *p) { lp_free(p ? &p->p : NULL); }
void vk_packed_bf16_free(vk_packed_bf16 *p) { lp_free(p ? &p->p : NULL); }
size_t vk_packed_q8_bytes(const vk_packed_q8 *p) { return p ? p->p.bytes : 0; }
size_t vk_packed_bf16_bytes(const vk_packed_bf16 *p) { return p ? p->p.bytes : 0; }
size_t vk_packed_q8_rows(const vk_packed_q8 *p) { return p ? p->p.K : 0; }
size_t vk_packed_q8_cols(const vk_packed_q8 *p) { return p ? p->p.N : 0; }
size_t vk_packed_bf16_rows(const vk_packed_bf16 *p) { return p ? p->p.K : 0; }
size_t vk_packed_bf16_cols(const vk_packed_bf16 *p) { return p ? p->p.N : 0; }
float vk_packed_q8_scale(const vk_packed_q8 *p, size_t n) { return p && n < p->p.N ? p->p.scale[n] : 0; }
const char *vk_packed_q8_kernel(const vk_packed_q8 *p) { return p ? p->p.kernel->name : NULL; }
const char *vk_packed_bf16_kernel(const vk_packed_bf16 *p) { return p ? p->p.kernel->name : NULL; }

// ---- Per-thread scratch (the prepared A block of the calling thread) -----------------------------------------------

typedef struct {
    void *data;
    size_t bytes;
} scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static void scratch_free(void *p) {
    scratch *s = p;
    free(s->data);
    free(s);
}
static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_free); }
static void *scratch_get(size_t bytes) {
    pthread_once(&scratch_once, scratch_init);
    scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return NULL;
        if (pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->bytes < bytes) {
        free(s->data);
        s->bytes = 0;
        s->data = aligned_alloc(64, round_up(bytes, 64));
        if (!s->data) return NULL;
        s->bytes = bytes;
    }
    return s->data;
}

// ---- Driver --------------------------------------------------------------------------------------------------------

typedef struct {
    const lp_packed *B;
    const float *A;
    size_t lda;
    float *C;
    size_t ldc;
    const float *bias;
    int accumulate, activation;
    // The current row block: rows [r0, r0 + rows) of the call, prepared into abuf (rows a_stride bytes apart).
    size_t r0, rows;
    unsigned char *abuf;
    size_t a_stride;
    int32_t *zp;
    float *sa;
    size_t mc, mblocks, nchunks;
} lp_job;

#define PREP_ROWS 8 ///< rows per preparation work item

static void prep_rows(void *context, size_t g) {
    const lp_job *job = context;
    const lp_packed *B = job->B;
    size_t i0 = g * PREP_ROWS, i1 = i0 + PREP_ROWS < job->rows ? i0 + PREP_ROWS : job->rows;
    for (size_t i = i0; i < i1; i++) {
        const float *x = job->A + (job->r0 + i) * job->lda;
        void *dst = job->abuf + i * job->a_stride;
        if (B->kernel->precision == VK_LP_Q8)
            vk_q8_prepare_row(x, B->K, B->kp, B->kernel->a_format, dst, job->zp + i, job->sa + i);
        else
            vk_bf16_prepare_row(x, B->K, B->kp, B->kernel->a_format, dst);
    }
}

static void lp_task(void *context, size_t t) {
    const lp_job *job = context;
    const lp_packed *B = job->B;
    const vk_lp_kernel *kernel = B->kernel;
    size_t mr = kernel->mr, nr = kernel->nr;
    size_t mb = t / job->nchunks, nb = t % job->nchunks;
    size_t m0 = mb * job->mc, m1 = m0 + job->mc < job->rows ? m0 + job->mc : job->rows;
    size_t P = B->panels;
    size_t p0 = nb * P / job->nchunks, p1 = (nb + 1) * P / job->nchunks;
    size_t elem = kernel->precision == VK_LP_Q8 ? 1 : 2;
    if (kernel->begin) kernel->begin();
    if (kernel->strip) {
        // Row tile after row tile, each against the task's panels (the kernel finishes the tiles itself).
        size_t c0 = p0 * nr, panel_bytes = B->kp * nr * elem;
        vk_lp_epilogue e = {.load_c = job->accumulate, .bias = job->bias ? job->bias + c0 : NULL};
        if (B->colsum) {
            e.colsum = B->colsum + c0;
            e.sw = B->scale + c0;
        }
        for (size_t i = m0; i < m1 && p1 > p0; i += mr) {
            size_t rows = m1 - i < mr ? m1 - i : mr;
            e.zp = job->zp + i;
            e.sa = job->sa + i;
            kernel->strip(rows, B->kp, job->abuf + i * job->a_stride, job->a_stride,
                          (const unsigned char *)B->data + p0 * panel_bytes, panel_bytes, p1 - p0,
                          job->C + (job->r0 + i) * job->ldc + c0, job->ldc, B->N - c0, &e, job->activation);
        }
        if (kernel->end) kernel->end();
        return;
    }
    for (size_t p = p0; p < p1; p++) {
        size_t c0 = p * nr, w = B->N - c0 < nr ? B->N - c0 : nr;
        const unsigned char *b = (const unsigned char *)B->data + p * B->kp * nr * elem;
        vk_lp_epilogue e = {.load_c = job->accumulate, .bias = job->bias ? job->bias + c0 : NULL};
        if (B->colsum) {
            e.colsum = B->colsum + c0;
            e.sw = B->scale + c0;
        }
        for (size_t i = m0; i < m1; i += mr) {
            size_t rows = m1 - i < mr ? m1 - i : mr;
            float *c = job->C + (job->r0 + i) * job->ldc + c0;
            e.zp = job->zp + i;
            e.sa = job->sa + i;
            kernel->kernel(rows, B->kp, job->abuf + i * job->a_stride, job->a_stride, b, c, job->ldc, w, &e);
            if (job->activation) vk_activate_rows(c, rows, w, job->ldc, job->activation);
        }
    }
    if (kernel->end) kernel->end();
}

static void lp_gemm(size_t M, const float *A, size_t lda, const lp_packed *B, float *C, size_t ldc, const float *bias,
                    int accumulate, int activation, int threads) {
    if (!B || M == 0 || B->N == 0) return;
    const vk_lp_kernel *kernel = B->kernel;
    size_t mr = kernel->mr;
    lp_job job = {.B = B, .A = A, .lda = lda, .C = C, .ldc = ldc, .bias = bias, .accumulate = accumulate,
                  .activation = activation};
    if (job.activation != VK_ACT_GELU_ERF && job.activation != VK_ACT_GELU_TANH) job.activation = VK_ACT_NONE;
    // Prepared A: rows a_stride bytes apart (whole 64-byte lines, and not a multiple of 1 KB so that a tile's rows
    // fall in different L1 sets), whole mr-row tiles.
    size_t elem = kernel->a_format == VK_A_U8 || kernel->a_format == VK_A_U7 ? 1 : kernel->a_format == VK_A_F32 ? 4 : 2;
    size_t stride = round_up(B->kp * elem, 64);
    if (stride == 0) stride = 64;
    if (stride % 1024 == 0) stride += 64;
    job.a_stride = stride;
    size_t block = VK_LP_BLOCK_BYTES / stride / mr * mr;
    size_t min_block = mr * kernel->mc_tiles;
    if (block < min_block) block = min_block;
    size_t first = M < block ? round_up(M, mr) : block;
    unsigned char *buf = scratch_get(first * (stride + 8));
    while (!buf && first > mr) { // short of memory: smaller row blocks (down to one tile)
        first = (first / 2 + mr - 1) / mr * mr;
        block = first;
        buf = scratch_get(first * (stride + 8));
    }
    if (!buf) return; // not even one tile's worth: C is left as it was
    job.abuf = buf;
    job.zp = (int32_t *)(buf + first * stride);
    job.sa = (float *)(buf + first * stride + first * 4);
    // Threads: none beyond what ~1 M multiply-adds each can keep busy (these kernels are 2–16× the fp32 one).
    double macs = (double)M * (double)B->K * (double)B->N;
    if (threads < 1) threads = 1;
    if (threads > 1 && macs < 2e6 * threads) threads = macs < 4e6 ? 1 : (int)(macs / 2e6);
    size_t T = (size_t)threads;
    for (size_t r0 = 0; r0 < M; r0 += block) {
        size_t rows = M - r0 < block ? M - r0 : block;
        job.r0 = r0;
        job.rows = rows;
        size_t groups = (rows + PREP_ROWS - 1) / PREP_ROWS;
        if (T > 1 && rows * B->K >= 32768) vk_parallel_for(groups, threads, prep_rows, &job);
        else for (size_t g = 0; g < groups; g++) prep_rows(&job, g);
        // Tasks: ≤ mr·mc_tiles rows × ~4 panels of 32 columns, as gemm.c.
        size_t tiles = (rows + mr - 1) / mr, per_block = kernel->mc_tiles;
        size_t mblocks = (tiles + per_block - 1) / per_block;
        size_t P = B->panels, per_task = 4 * 32 / kernel->nr;
        if (per_task == 0) per_task = 1;
        size_t nchunks = (P + per_task - 1) / per_task;
        if (T > 1) {
            if (P >= T) nchunks = (nchunks + T - 1) / T * T;
            else nchunks = P;
            if (nchunks > P) nchunks = P;
            while (mblocks * nchunks < 2 * T && mblocks < tiles) mblocks++;
        }
        job.mc = (tiles + mblocks - 1) / mblocks * mr;
        job.mblocks = (rows + job.mc - 1) / job.mc;
        job.nchunks = nchunks;
        size_t tasks = job.mblocks * job.nchunks;
        if (threads <= 1 || tasks == 1) {
            for (size_t t = 0; t < tasks; t++) lp_task(&job, t);
        } else {
            vk_parallel_tasks(tasks, threads, lp_task, &job);
        }
    }
}

void vk_gemm_q8(size_t M, const float *A, size_t lda, const vk_packed_q8 *B, float *C, size_t ldc, const float *bias,
                int accumulate, int activation, int threads) {
    lp_gemm(M, A, lda, B ? &B->p : NULL, C, ldc, bias, accumulate, activation, threads);
}

void vk_gemm_bf16(size_t M, const float *A, size_t lda, const vk_packed_bf16 *B, float *C, size_t ldc,
                  const float *bias, int accumulate, int activation, int threads) {
    lp_gemm(M, A, lda, B ? &B->p : NULL, C, ldc, bias, accumulate, activation, threads);
}
