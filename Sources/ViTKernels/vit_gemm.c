// Packed-weight SGEMM with an AVX-512 micro-kernel, and the persistent thread pool it runs on. See vit_gemm.h.

#include "vit_gemm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>
#define VKG_X86 1
#endif

// ================================================================================================================
// Thread pool
// ================================================================================================================
//
// One job at a time. The job's claim word `ticket` holds (generation << 32 | next index): a thread takes a chunk of
// indices with a compare-and-swap that also checks the generation, so a late worker can never run a chunk of the next
// job with the previous job's function. `slots` is (generation << 32 | workers still allowed to join). The caller
// publishes a job by bumping `gen`; it returns once `done` == n, after which no thread touches fn/context again.

#define VKP_MAX_THREADS 64
#define VKP_SPIN_NS 50000 // idle workers (and a waiting caller) spin this long before sleeping

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;     // workers sleep here for a new generation
    pthread_cond_t finished; // the caller sleeps here for done == n
    _Atomic uint32_t gen;
    _Atomic uint64_t ticket;
    _Atomic uint64_t slots;
    _Atomic size_t done;
    _Atomic int sleepers;
    _Atomic int caller_waiting;
    _Atomic int busy; // a job is running (trylock for callers)
    _Atomic(void (*)(void *, size_t)) fn;
    _Atomic(void *) context;
    _Atomic size_t n;
    _Atomic size_t chunk;
    _Atomic int workers; // started so far (only grows, under lock)
} vkp_pool;

static vkp_pool pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .finished = PTHREAD_COND_INITIALIZER};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/// Claims and runs chunks of generation g until none is left.
static void vkp_work(uint32_t g) {
    for (;;) {
        uint64_t t = atomic_load(&pool.ticket);
        if ((uint32_t)(t >> 32) != g) return;
        size_t n = atomic_load_explicit(&pool.n, memory_order_relaxed);
        size_t chunk = atomic_load_explicit(&pool.chunk, memory_order_relaxed);
        size_t i = (uint32_t)t;
        if (i >= n) return;
        size_t e = n - i < chunk ? n : i + chunk;
        if (!atomic_compare_exchange_weak(&pool.ticket, &t, ((uint64_t)g << 32) | (uint64_t)e)) continue;
        // The chunk [i, e) is ours and not done, so the caller is still inside this job: fn/context are this job's.
        void (*fn)(void *, size_t) = atomic_load_explicit(&pool.fn, memory_order_relaxed);
        void *context = atomic_load_explicit(&pool.context, memory_order_relaxed);
        for (size_t j = i; j < e; j++) fn(context, j);
        size_t before = atomic_fetch_add(&pool.done, e - i);
        if (before + (e - i) == n && atomic_load(&pool.caller_waiting)) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.finished);
            pthread_mutex_unlock(&pool.lock);
        }
    }
}

static void *vkp_worker(void *start_gen) {
    // The generation current when this worker was created: a job published before the thread got going is still new.
    uint32_t seen = (uint32_t)(uintptr_t)start_gen;
    for (;;) {
        uint32_t g = atomic_load(&pool.gen);
        if (g == seen) {
            uint64_t start = now_ns();
            for (unsigned spins = 1;; spins++) {
                cpu_relax();
                if ((g = atomic_load(&pool.gen)) != seen) break;
                if ((spins & 255) == 0 && now_ns() - start > VKP_SPIN_NS) {
                    pthread_mutex_lock(&pool.lock);
                    atomic_fetch_add(&pool.sleepers, 1);
                    while ((g = atomic_load(&pool.gen)) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
                    atomic_fetch_sub(&pool.sleepers, 1);
                    pthread_mutex_unlock(&pool.lock);
                    break;
                }
            }
        }
        seen = g;
        // Join generation g if it still has a free slot.
        uint64_t s = atomic_load(&pool.slots);
        int joined = 0;
        while ((uint32_t)(s >> 32) == g && (uint32_t)s > 0) {
            if (atomic_compare_exchange_weak(&pool.slots, &s, s - 1)) {
                joined = 1;
                break;
            }
        }
        if (joined) vkp_work(g);
    }
    return NULL;
}

/// Starts workers until there are `want` (capped); returns how many there are.
static int vkp_ensure_workers(int want) {
    if (want > VKP_MAX_THREADS - 1) want = VKP_MAX_THREADS - 1;
    int have = atomic_load(&pool.workers);
    if (have >= want) return have;
    pthread_mutex_lock(&pool.lock);
    while (pool.workers < want) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1 << 20);
        int rc = pthread_create(&thread, &attr, vkp_worker, (void *)(uintptr_t)atomic_load(&pool.gen));
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        pool.workers++;
    }
    have = pool.workers;
    pthread_mutex_unlock(&pool.lock);
    return have;
}

int vk_pool_workers(void) { return atomic_load(&pool.workers); }

static void vkp_serial(size_t begin, size_t end, void (*fn)(void *, size_t), void *context) {
    for (size_t i = begin; i < end; i++) fn(context, i);
}

/// Runs fn over [0, n) in chunks of `chunk` indices on up to `threads` threads.
static void vkp_run(size_t n, int threads, size_t chunk, void (*fn)(void *, size_t), void *context) {
    if (n == 0) return;
    if (threads > VKP_MAX_THREADS) threads = VKP_MAX_THREADS;
    if (chunk == 0) chunk = 1;
    size_t chunks = (n + chunk - 1) / chunk;
    if ((size_t)threads > chunks) threads = (int)chunks;
    int expected = 0;
    if (threads <= 1 || !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        vkp_serial(0, n, fn, context);
        return;
    }
    // The ticket holds 32-bit indices; ranges this large never occur in the engine: run them serially.
    if (n > ((size_t)1 << 31)) {
        atomic_store(&pool.busy, 0);
        vkp_serial(0, n, fn, context);
        return;
    }
    int workers = vkp_ensure_workers(threads - 1);
    if (workers <= 0) {
        atomic_store(&pool.busy, 0);
        vkp_serial(0, n, fn, context);
        return;
    }
    if (threads - 1 > workers) threads = workers + 1;

    uint32_t g = atomic_load(&pool.gen) + 1;
    atomic_store_explicit(&pool.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool.context, context, memory_order_relaxed);
    atomic_store_explicit(&pool.n, n, memory_order_relaxed);
    atomic_store_explicit(&pool.chunk, chunk, memory_order_relaxed);
    atomic_store(&pool.done, 0);
    atomic_store(&pool.ticket, (uint64_t)g << 32);
    atomic_store(&pool.slots, ((uint64_t)g << 32) | (uint32_t)(threads - 1));
    atomic_store(&pool.gen, g);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }

    vkp_work(g);

    if (atomic_load(&pool.done) != n) {
        uint64_t start = now_ns();
        for (unsigned spins = 1; atomic_load(&pool.done) != n; spins++) {
            cpu_relax();
            if ((spins & 255) == 0 && now_ns() - start > VKP_SPIN_NS) {
                pthread_mutex_lock(&pool.lock);
                atomic_store(&pool.caller_waiting, 1);
                while (atomic_load(&pool.done) != n) pthread_cond_wait(&pool.finished, &pool.lock);
                atomic_store(&pool.caller_waiting, 0);
                pthread_mutex_unlock(&pool.lock);
                break;
            }
        }
    }
    atomic_store(&pool.busy, 0);
}

void vk_parallel_for(size_t n, int threads, void (*fn)(void *context, size_t i), void *context) {
    if (n == 0) return;
    if (threads < 1) threads = 1;
    // A few chunks per thread: dynamic balance (other processes share the cores) at a small claiming cost.
    size_t chunk = threads > 1 ? n / ((size_t)threads * 4) : n;
    vkp_run(n, threads, chunk ? chunk : 1, fn, context);
}

// ================================================================================================================
// Packed GEMM
// ================================================================================================================
//
// B is packed into panels of NR = 32 columns (zero-padded on the right), each panel K rows deep, row after row:
// panel p holds B[k][32p .. 32p+31] at data[p·K·32 + k·32] (64-byte aligned).
//
// The micro-kernel computes an MR×32 tile of C (MR = 14 rows: 28 zmm accumulators; per k, 2 zmm loads of B and 14
// broadcasts of A feeding 28 FMAs) over a block of kc values of k, reading A in place (rows lda apart), then adds C
// (later K blocks, or accumulate) and the bias and stores with masks for the last panel's columns; the activation
// runs over the freshly stored tile (in L1). Work is split into tasks: ≤ MC_MAX rows × a range of panels; a task
// walks its K blocks, for each K block its panels, and for each panel its row tiles, so the A block (rows × kc)
// stays in L2 and each kc×32 slice of B is reused by all row tiles. Tasks are handed out dynamically by the pool
// (other processes may hold a core), and each task reads its panels of B once.
// When 14 rows lda apart map to the same L1 sets (lda a multiple of 1024 floats, e.g. K = 3072 in fc2), A blocks are
// first copied into a per-thread buffer with a harmless row stride, and tasks are made wide to amortise the copy.

#define NR 32
#define MR 14
#ifndef KC_MAX
#define KC_MAX 768 // K block: 197 rows × 768 × 4 B = 605 KB of A in L2
#endif
#ifndef MC_TILES
#define MC_TILES 16 // row tiles per task at most
#endif
#define MC_MAX (MR * MC_TILES)
#ifndef PANELS_PER_TASK
#define PANELS_PER_TASK 4
#endif
#define A_STRIDE (KC_MAX + 16) // floats between rows of a copied A block: 14 rows fall in 14 different L1 sets

struct vk_packed {
    size_t K, N, panels;
    size_t bytes; // reported by vk_packed_bytes
    float *data;
};

#ifdef VKG_X86
static int vkg_level = -1;
int vk_gemm_supported(void) {
    int l = __atomic_load_n(&vkg_level, __ATOMIC_RELAXED);
    if (l < 0) {
        __builtin_cpu_init();
        l = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
        const char *off = getenv("VITCLASSIFY_NO_PACKED_GEMM");
        if (off && *off && strcmp(off, "0") != 0) l = 0;
        __atomic_store_n(&vkg_level, l, __ATOMIC_RELAXED);
    }
    return l;
}
#else
int vk_gemm_supported(void) { return 0; }
#endif

static vk_packed *vkg_alloc(size_t K, size_t N) {
    if (!vk_gemm_supported()) return NULL;
    size_t panels = (N + NR - 1) / NR;
    if (K != 0 && panels > SIZE_MAX / 2 / sizeof(float) / NR / K) return NULL; // also keeps +63 below from wrapping
    size_t bytes = panels * NR * K * sizeof(float);
    if (bytes == 0) bytes = 64;
    vk_packed *p = malloc(sizeof *p);
    if (!p) return NULL;
    p->data = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p->data) {
        free(p);
        return NULL;
    }
    p->K = K;
    p->N = N;
    p->panels = panels;
    p->bytes = (bytes + 63) / 64 * 64 + sizeof *p;
    return p;
}

vk_packed *vk_pack(const float *B, size_t K, size_t N, size_t ldb) {
    vk_packed *p = vkg_alloc(K, N);
    if (!p) return NULL;
    for (size_t j = 0; j < p->panels; j++) {
        size_t c0 = j * NR, w = N - c0 < NR ? N - c0 : NR;
        float *dst = p->data + j * K * NR;
        for (size_t k = 0; k < K; k++, dst += NR) {
            memcpy(dst, B + k * ldb + c0, w * sizeof(float));
            if (w < NR) memset(dst + w, 0, (NR - w) * sizeof(float));
        }
    }
    return p;
}

vk_packed *vk_pack_transposed(const float *Bt, size_t K, size_t N, size_t ldbt) {
    vk_packed *p = vkg_alloc(K, N);
    if (!p) return NULL;
    for (size_t j = 0; j < p->panels; j++) {
        size_t c0 = j * NR, w = N - c0 < NR ? N - c0 : NR;
        float *dst = p->data + j * K * NR;
        for (size_t k = 0; k < K; k++, dst += NR) {
            for (size_t c = 0; c < w; c++) dst[c] = Bt[(c0 + c) * ldbt + k];
            for (size_t c = w; c < NR; c++) dst[c] = 0;
        }
    }
    return p;
}

void vk_packed_free(vk_packed *p) {
    if (!p) return;
    free(p->data);
    free(p);
}

size_t vk_packed_bytes(const vk_packed *p) { return p ? p->bytes : 0; }
size_t vk_packed_rows(const vk_packed *p) { return p ? p->K : 0; }
size_t vk_packed_cols(const vk_packed *p) { return p ? p->N : 0; }

#ifdef VKG_X86

#define VKG_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
#pragma clang attribute push(VKG_TARGET, apply_to = function)

// ---- GELU approximations: copied from kernels_body.h (same constants, same operation order) with W = 16 ----------

typedef float vkg_vf __attribute__((vector_size(16 * sizeof(float))));
typedef int32_t vkg_vi __attribute__((vector_size(16 * sizeof(int32_t))));
#define GW 16

static inline __attribute__((always_inline)) vkg_vf g_splat(float v) { return (vkg_vf){0} + v; }
static inline __attribute__((always_inline)) vkg_vf g_vselect(vkg_vi mask, vkg_vf a, vkg_vf b) {
    vkg_vi ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    vkg_vi r = (mask & ia) | (~mask & ib);
    vkg_vf out;
    memcpy(&out, &r, sizeof out);
    return out;
}
static inline __attribute__((always_inline)) vkg_vf g_vmin(vkg_vf a, vkg_vf b) { return g_vselect(a < b, a, b); }
static inline __attribute__((always_inline)) vkg_vf g_vmax(vkg_vf a, vkg_vf b) { return g_vselect(a > b, a, b); }

static inline __attribute__((always_inline)) vkg_vf g_vexp(vkg_vf x) {
    x = g_vmin(g_vmax(x, g_splat(-87.33654f)), g_splat(88.72283f));
    vkg_vf fx = x * g_splat(1.44269504088896341f);
    // round to nearest
    vkg_vi n = __builtin_convertvector(fx + g_vselect(fx >= g_splat(0), g_splat(0.5f), g_splat(-0.5f)), vkg_vi);
    vkg_vf nf = __builtin_convertvector(n, vkg_vf);
    vkg_vf r = x - nf * g_splat(0.693359375f) + nf * g_splat(2.12194440e-4f);
    vkg_vf r2 = r * r;
    vkg_vf y = g_splat(1.9875691500e-4f);
    y = y * r + g_splat(1.3981999507e-3f);
    y = y * r + g_splat(8.3334519073e-3f);
    y = y * r + g_splat(4.1665795894e-2f);
    y = y * r + g_splat(1.6666665459e-1f);
    y = y * r + g_splat(5.0000001201e-1f);
    y = y * r2 + r + g_splat(1.0f);
    vkg_vi bits = (n + 127) << 23;
    vkg_vf scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

static inline __attribute__((always_inline)) vkg_vf g_verf(vkg_vf x) {
    x = g_vmin(g_vmax(x, g_splat(-4.0f)), g_splat(4.0f));
    vkg_vf x2 = x * x;
    vkg_vf p = g_splat(-2.72614225801306e-10f);
    p = p * x2 + g_splat(2.77068142495902e-08f);
    p = p * x2 + g_splat(-2.10102402082508e-06f);
    p = p * x2 + g_splat(-5.69250639462346e-05f);
    p = p * x2 + g_splat(-7.34990630326855e-04f);
    p = p * x2 + g_splat(-2.95459980854025e-03f);
    p = p * x2 + g_splat(-1.60960333262415e-02f);
    p = p * x;
    vkg_vf q = g_splat(-1.45660718464996e-05f);
    q = q * x2 + g_splat(-2.13374055278905e-04f);
    q = q * x2 + g_splat(-1.68282697438203e-03f);
    q = q * x2 + g_splat(-7.37332916720468e-03f);
    q = q * x2 + g_splat(-1.42647390514189e-02f);
    return p / q;
}

static inline __attribute__((always_inline)) vkg_vf g_vtanh(vkg_vf x) {
    // tanh(x) = 1 - 2 / (exp(2x) + 1), accurate to a few ulp away from 0; use the series near 0.
    vkg_vf e = g_vexp(x * g_splat(2.0f));
    vkg_vf t = g_splat(1.0f) - g_splat(2.0f) / (e + g_splat(1.0f));
    vkg_vf x2 = x * x;
    vkg_vf small = x * (g_splat(1.0f) + x2 * (g_splat(-1.0f / 3) + x2 * g_splat(2.0f / 15)));
    return g_vselect(x2 < g_splat(1e-4f), small, t);
}

static inline __attribute__((always_inline)) vkg_vf g_gelu_erf(vkg_vf v) {
    const float rsqrt2 = 0.70710678118654752f;
    return g_splat(0.5f) * v * (g_splat(1.0f) + g_verf(v * g_splat(rsqrt2)));
}
static inline __attribute__((always_inline)) vkg_vf g_gelu_tanh(vkg_vf v) {
    const float k = 0.7978845608028654f;
    return g_splat(0.5f) * v * (g_splat(1.0f) + g_vtanh(g_splat(k) * (v + g_splat(0.044715f) * v * v * v)));
}

/// Applies the activation in place to an mr × (≤ 32) tile of C (just stored by the micro-kernel, so in L1).
static __attribute__((noinline)) void vkg_activate_tile(float *c, size_t ldc, size_t mr, __mmask16 m0, __mmask16 m1,
                                                         int activation) {
    for (size_t r = 0; r < mr; r++, c += ldc) {
        __m512 v0 = _mm512_maskz_loadu_ps(m0, c), v1 = _mm512_maskz_loadu_ps(m1, c + 16);
        if (activation == VK_ACT_GELU_ERF) {
            v0 = (__m512)g_gelu_erf((vkg_vf)v0);
            v1 = (__m512)g_gelu_erf((vkg_vf)v1);
        } else {
            v0 = (__m512)g_gelu_tanh((vkg_vf)v0);
            v1 = (__m512)g_gelu_tanh((vkg_vf)v1);
        }
        _mm512_mask_storeu_ps(c, m0, v0);
        _mm512_mask_storeu_ps(c + 16, m1, v1);
    }
}

// ---- Micro-kernel --------------------------------------------------------------------------------------------------

/// C[0..R)[0..32) (masked by m0/m1) = (load_c ? C : 0) + A[0..R)[0..kc) · Bpanel[0..kc)[0..32) (+ bias).
/// R is a compile-time constant in every instantiation, so acc[] lives in registers.
static inline __attribute__((always_inline)) void vkg_kernel(const int R, size_t kc, const float *a, size_t lda,
                                                             const float *b, float *c, size_t ldc, __mmask16 m0,
                                                             __mmask16 m1, int load_c, const float *bias) {
    __m512 acc0[MR], acc1[MR];
    for (int r = 0; r < R; r++) acc0[r] = acc1[r] = _mm512_setzero_ps();
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b + k * NR), b1 = _mm512_load_ps(b + k * NR + 16);
        for (int r = 0; r < R; r++) {
            __m512 av = _mm512_set1_ps(a[r * lda + k]);
            acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
        }
    }
    if (load_c) {
        for (int r = 0; r < R; r++) {
            acc0[r] = _mm512_add_ps(acc0[r], _mm512_maskz_loadu_ps(m0, c + r * ldc));
            acc1[r] = _mm512_add_ps(acc1[r], _mm512_maskz_loadu_ps(m1, c + r * ldc + 16));
        }
    }
    if (bias) {
        __m512 bias0 = _mm512_maskz_loadu_ps(m0, bias), bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
        for (int r = 0; r < R; r++) {
            acc0[r] = _mm512_add_ps(acc0[r], bias0);
            acc1[r] = _mm512_add_ps(acc1[r], bias1);
        }
    }
    for (int r = 0; r < R; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
    }
}

#define VKG_KERNEL_FN(R)                                                                                            \
    static void vkg_kernel_##R(size_t kc, const float *a, size_t lda, const float *b, float *c, size_t ldc,        \
                               __mmask16 m0, __mmask16 m1, int load_c, const float *bias) {                        \
        vkg_kernel(R, kc, a, lda, b, c, ldc, m0, m1, load_c, bias);                                                 \
    }
VKG_KERNEL_FN(1)
VKG_KERNEL_FN(2)
VKG_KERNEL_FN(3)
VKG_KERNEL_FN(4)
VKG_KERNEL_FN(5)
VKG_KERNEL_FN(6)
VKG_KERNEL_FN(7)
VKG_KERNEL_FN(8)
VKG_KERNEL_FN(9)
VKG_KERNEL_FN(10)
VKG_KERNEL_FN(11)
VKG_KERNEL_FN(12)
VKG_KERNEL_FN(13)
VKG_KERNEL_FN(14)

typedef void (*vkg_kernel_fn)(size_t, const float *, size_t, const float *, float *, size_t, __mmask16, __mmask16, int,
                              const float *);
static const vkg_kernel_fn vkg_kernels[MR + 1] = {
    NULL,           vkg_kernel_1,  vkg_kernel_2,  vkg_kernel_3,  vkg_kernel_4,  vkg_kernel_5,  vkg_kernel_6, vkg_kernel_7,
    vkg_kernel_8,   vkg_kernel_9,  vkg_kernel_10, vkg_kernel_11, vkg_kernel_12, vkg_kernel_13, vkg_kernel_14,
};

// ---- Driver --------------------------------------------------------------------------------------------------------

typedef struct {
    size_t M, K, N;
    const float *A;
    size_t lda;
    const vk_packed *B;
    float *C;
    size_t ldc;
    const float *bias;
    int accumulate, activation;
    size_t kc;           // K block
    size_t mblocks, mc;  // row blocks of mc rows (multiple of MR) — the last may be shorter
    size_t nchunks;      // panel ranges: chunk i holds panels [i·P/nchunks, (i+1)·P/nchunks)
    int copy_a;          // copy each A block to a buffer with a friendlier row stride first
} vkg_job;

/// Whether 14 rows lda floats apart all start in the same L1 set (64-byte lines, 64 sets, 8 ways), so that the
/// micro-kernel's 14 streams of A keep evicting each other. Two sets (lda ≡ 512 mod 1024) measured fine.
static int vkg_lda_aliases(size_t lda) {
    uint64_t seen = 0;
    for (size_t r = 0; r < MR; r++) seen |= (uint64_t)1 << ((r * lda * sizeof(float) / 64) % 64);
    return __builtin_popcountll(seen) < 2;
}

/// Per-thread scratch for copied A blocks (grown on demand, freed when the thread exits).
typedef struct {
    float *data;
    size_t floats;
} vkg_scratch;
static pthread_key_t vkg_scratch_key;
static pthread_once_t vkg_scratch_once = PTHREAD_ONCE_INIT;
static void vkg_scratch_free(void *p) {
    vkg_scratch *s = p;
    free(s->data);
    free(s);
}
static void vkg_scratch_init(void) { pthread_key_create(&vkg_scratch_key, vkg_scratch_free); }
static float *vkg_scratch_get(size_t floats) {
    pthread_once(&vkg_scratch_once, vkg_scratch_init);
    vkg_scratch *s = pthread_getspecific(vkg_scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return NULL;
        if (pthread_setspecific(vkg_scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->floats < floats) {
        free(s->data);
        s->floats = 0;
        s->data = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
        if (!s->data) return NULL;
        s->floats = floats;
    }
    return s->data;
}

static void vkg_task(void *context, size_t t) {
    const vkg_job *job = context;
    size_t mb = t / job->nchunks, nb = t % job->nchunks;
    size_t m0 = mb * job->mc, m1 = m0 + job->mc < job->M ? m0 + job->mc : job->M;
    size_t P = job->B->panels;
    size_t p0 = nb * P / job->nchunks, p1 = (nb + 1) * P / job->nchunks;
    size_t K = job->K, kc = job->kc;
    const float *bdata = job->B->data;
    // Copy A blocks when its rows alias in L1 (and the scratch can be had).
    float *abuf = job->copy_a ? vkg_scratch_get((m1 - m0) * A_STRIDE) : NULL;
    for (size_t k0 = 0; k0 < K || (K == 0 && k0 == 0); k0 += kc) {
        size_t kb = K - k0 < kc ? K - k0 : kc;
        int first = k0 == 0, last = k0 + kb >= K;
        int load_c = !first || job->accumulate;
        for (size_t p = p0; p < p1; p++) {
            size_t c0 = p * NR, w = job->N - c0 < NR ? job->N - c0 : NR;
            __mmask16 mk0 = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
            __mmask16 mk1 = w >= 32 ? (__mmask16)0xFFFF : w > 16 ? (__mmask16)((1u << (w - 16)) - 1) : 0;
            const float *b = bdata + p * K * NR + k0 * NR;
            const float *a = job->A + m0 * job->lda + k0;
            size_t lda = job->lda;
            if (abuf) {
                if (p == p0) {
                    for (size_t i = m0; i < m1; i++)
                        memcpy(abuf + (i - m0) * A_STRIDE, job->A + i * job->lda + k0, kb * sizeof(float));
                }
                a = abuf;
                lda = A_STRIDE;
            }
            const float *bias = last && job->bias ? job->bias + c0 : NULL;
            for (size_t i = m0; i < m1; i += MR) {
                size_t mr = m1 - i < MR ? m1 - i : MR;
                float *c = job->C + i * job->ldc + c0;
                vkg_kernels[mr](kb, a + (i - m0) * lda, lda, b, c, job->ldc, mk0, mk1, load_c, bias);
                if (last && job->activation) vkg_activate_tile(c, job->ldc, mr, mk0, mk1, job->activation);
            }
        }
        if (K == 0) break;
    }
}

#pragma clang attribute pop

void vk_gemm_packed(size_t M, const float *A, size_t lda, const vk_packed *B, float *C, size_t ldc, const float *bias,
                    int accumulate, int activation, int threads) {
    if (!B || M == 0 || B->N == 0) return;
    vkg_job job = {.M = M, .K = B->K, .N = B->N, .A = A, .lda = lda, .B = B, .C = C, .ldc = ldc, .bias = bias,
                   .accumulate = accumulate, .activation = activation};
    if (job.activation != VK_ACT_GELU_ERF && job.activation != VK_ACT_GELU_TANH) job.activation = VK_ACT_NONE;
    size_t K = B->K, P = B->panels;
    size_t kblocks = (K + KC_MAX - 1) / KC_MAX;
    job.kc = kblocks ? (K + kblocks - 1) / kblocks : 1;
    // Threads: none beyond what ~1 MFLOP each can keep busy (waking a worker costs microseconds).
    double flops = 2.0 * (double)M * (double)K * (double)B->N;
    if (threads < 1) threads = 1;
    if (threads > 1 && flops < 2e6 * threads) threads = flops < 4e6 ? 1 : (int)(flops / 2e6);
    // Row blocks: ≤ MC_MAX rows each, whole micro-tiles.
    size_t tiles = (M + MR - 1) / MR;
    size_t mblocks = (tiles + MC_MAX / MR - 1) / (MC_MAX / MR);
    // Panel chunks: ~PANELS_PER_TASK panels each (one per thread when A is copied), a multiple of the thread count
    // when there are enough panels.
    size_t T = (size_t)threads;
    int copy_a = K > 128 && vkg_lda_aliases(lda);
    size_t nchunks = copy_a ? 1 : (P + PANELS_PER_TASK - 1) / PANELS_PER_TASK;
    if (T > 1) {
        if (P >= T) nchunks = (nchunks + T - 1) / T * T;
        else nchunks = P;
        if (nchunks > P) nchunks = P;
        // Too few tasks to keep T threads busy: split rows further.
        while (mblocks * nchunks < 2 * T && mblocks < tiles) mblocks++;
    }
    job.mc = (tiles + mblocks - 1) / mblocks * MR;
    job.mblocks = (M + job.mc - 1) / job.mc;
    job.nchunks = nchunks;
    job.copy_a = copy_a;
    size_t tasks = job.mblocks * job.nchunks;
    if (threads <= 1 || tasks == 1) {
        for (size_t t = 0; t < tasks; t++) vkg_task(&job, t);
    } else {
        vkp_run(tasks, threads, 1, vkg_task, &job);
    }
}

#else // no AVX-512 build

void vk_gemm_packed(size_t M, const float *A, size_t lda, const vk_packed *B, float *C, size_t ldc, const float *bias,
                    int accumulate, int activation, int threads) {
    (void)M, (void)A, (void)lda, (void)B, (void)C, (void)ldc, (void)bias, (void)accumulate, (void)activation,
        (void)threads;
}

#endif
