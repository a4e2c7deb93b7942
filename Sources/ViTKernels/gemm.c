// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// Packed-weight SGEMM: packing, blocking and threading, shared by every instruction set's micro-kernel
// (gemm_kernels.h). See vit_gemm.h.
//
// B is packed into panels of nr columns (zero-padded on the right), each panel K rows deep, row after row:
// panel p holds B[k][nr·p .. nr·p+nr−1] at data[p·K·nr + k·nr] (64-byte aligned).
//
// Work is split into tasks: ≤ mr·mc_tiles rows × a range of panels; a task walks its K blocks, for each K block its
// panels, and for each panel its row tiles, so the A block (rows × kc) stays in L2 and each kc × nr slice of B is
// reused by all row tiles. Tasks are handed out dynamically by the pool (other processes may hold a core).
//
// Reproducibility: the K blocking depends on K and the kernel only, and a micro-kernel computes each element from
// its own row and column alone, so an element of C is the same bits whatever M, the row's position in the batch, the
// task split or the thread count. This is what makes a batch's rows equal to the same images classified alone.
//
// When mr rows lda floats apart map to the same L1 set (lda a multiple of 1024 floats, e.g. K = 3072 in fc2), A
// blocks are first copied into a per-thread buffer with a harmless row stride, and tasks are made wide to amortise
// the copy.

#include "vit_gemm.h"
#include "vit_backward.h"

#include "gemm_kernels.h"
#include "vk_isa.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#ifndef PANELS_PER_TASK
#define PANELS_PER_TASK 4
#endif

struct vk_packed {
    size_t K, N, panels;
    size_t bytes; // reported by vk_packed_bytes
    const vk_gemm_kernel *kernel;
    float *data;
};

static const vk_gemm_kernel *current_kernel(void) {
    switch (vk_isa_level()) {
#ifdef VK_X86
    case VK_LEVEL_AVX512: return &vk_gemm_kernel_avx512;
    case VK_LEVEL_AVX2: return &vk_gemm_kernel_avx2;
#endif
    default: return &vk_gemm_kernel_portable;
    }
}

const char *vk_gemm_kernel_name(void) { return current_kernel()->name; }

static vk_packed *alloc_packed(size_t K, size_t N) {
    const vk_gemm_kernel *kernel = current_kernel();
    size_t nr = kernel->nr;
    size_t panels = (N + nr - 1) / nr;
    if (K != 0 && panels > SIZE_MAX / 2 / sizeof(float) / nr / K) return NULL; // also keeps +63 below from wrapping
    size_t bytes = panels * nr * K * sizeof(float);
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
    p->kernel = kernel;
    p->bytes = (bytes + 63) / 64 * 64 + sizeof *p;
    return p;
}

/// Fills p->data with the K × N matrix whose element (k, c) is at src[k·row_stride + c·col_stride], times `scale`.
static void fill_panels(vk_packed *p, const float *src, size_t row_stride, size_t col_stride, float scale) {
    size_t K = p->K, N = p->N, nr = p->kernel->nr;
    for (size_t j = 0; j < p->panels; j++) {
        size_t c0 = j * nr, w = N - c0 < nr ? N - c0 : nr;
        float *dst = p->data + j * K * nr;
        size_t k = 0;
#if defined(__SSE2__)
        // Bᵀ given (K_hᵀ of the attention scores): 4 × 4 blocks, one SSE transpose each, instead of a strided gather
        // per element (the gather took as long as the product at 50 tokens). The same products, so the same bits.
        if (row_stride == 1) {
            __m128 vs = _mm_set1_ps(scale);
            for (; k + 4 <= K; k += 4, dst += 4 * nr) {
                size_t c = 0;
                for (; c + 4 <= w; c += 4) {
                    const float *s = src + (c0 + c) * col_stride + k;
                    __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + col_stride), r2 = _mm_loadu_ps(s + 2 * col_stride),
                           r3 = _mm_loadu_ps(s + 3 * col_stride);
                    _MM_TRANSPOSE4_PS(r0, r1, r2, r3); // r_i = element k + i of columns c .. c + 3
                    _mm_storeu_ps(dst + c, _mm_mul_ps(vs, r0));
                    _mm_storeu_ps(dst + nr + c, _mm_mul_ps(vs, r1));
                    _mm_storeu_ps(dst + 2 * nr + c, _mm_mul_ps(vs, r2));
                    _mm_storeu_ps(dst + 3 * nr + c, _mm_mul_ps(vs, r3));
                }
                for (size_t i = 0; i < 4; i++) {
                    for (size_t r = c; r < w; r++) dst[i * nr + r] = scale * src[(c0 + r) * col_stride + k + i];
                    for (size_t r = w; r < nr; r++) dst[i * nr + r] = 0;
                }
            }
        }
#endif
        for (; k < K; k++, dst += nr) {
            const float *row = src + k * row_stride + c0 * col_stride;
            if (col_stride == 1 && scale == 1) {
                for (size_t c = 0; c < w; c++) dst[c] = row[c]; // inline: a memcpy call per 16-float row cost more
            } else {
                for (size_t c = 0; c < w; c++) dst[c] = scale * row[c * col_stride];
            }
            for (size_t c = w; c < nr; c++) dst[c] = 0;
        }
    }
}

/// Packs the K × N matrix whose element (k, c) is at src[k·row_stride + c·col_stride].
static vk_packed *pack_strided(const float *src, size_t K, size_t N, size_t row_stride, size_t col_stride) {
    vk_packed *p = alloc_packed(K, N);
    if (p) fill_panels(p, src, row_stride, col_stride, 1);
    return p;
}

vk_packed *vk_pack(const float *B, size_t K, size_t N, size_t ldb) { return pack_strided(B, K, N, ldb, 1); }

vk_packed *vk_pack_transposed(const float *Bt, size_t K, size_t N, size_t ldbt) { return pack_strided(Bt, K, N, 1, ldbt); }

void vk_packed_free(vk_packed *p) {
    if (!p) return;
    free(p->data);
    free(p);
}

size_t vk_packed_bytes(const vk_packed *p) { return p ? p->bytes : 0; }
size_t vk_packed_rows(const vk_packed *p) { return p ? p->K : 0; }
size_t vk_packed_cols(const vk_packed *p) { return p ? p->N : 0; }

// For the backward pass (vit_backward.h): Bᵀ packed, read element by element from B's panels.
vk_packed *vkb_pack_transpose_of(const vk_packed *p) {
    size_t K = p->K, N = p->N, nr = p->kernel->nr;
    vk_packed *t = alloc_packed(N, K);
    if (!t) return NULL;
    size_t tnr = t->kernel->nr;
    for (size_t j = 0; j < t->panels; j++) {
        size_t c0 = j * tnr, w = K - c0 < tnr ? K - c0 : tnr;
        float *dst = t->data + j * N * tnr;
        for (size_t k = 0; k < N; k++, dst += tnr) { // row k of Bᵀ = column k of B
            const float *column = p->data + (k / nr) * K * nr + k % nr;
            for (size_t c = 0; c < w; c++) dst[c] = column[(c0 + c) * nr];
            for (size_t c = w; c < tnr; c++) dst[c] = 0;
        }
    }
    return t;
}

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
    size_t kc;          // K block
    size_t mblocks, mc; // row blocks of mc rows (multiple of mr) — the last may be shorter
    size_t nchunks;     // panel ranges: chunk i holds panels [i·P/nchunks, (i+1)·P/nchunks)
    size_t a_stride;    // > 0: copy each A block to a buffer with this row stride first
    float *a_packed;    // non-NULL for a packed-A kernel (kernel->packed_a): all of A packed into mr-interleaved
                        // micro-panels, row tile t's panel of columns [k0, k0 + kb) at a_packed + t·mr·K + k0·mr
                        // (A[t·mr + r][k] at [t·mr·K + k·mr + r])
    size_t pack_tiles;  // row tiles per packing task
} gemm_job;

/// Whether mr rows lda floats apart all start in the same L1 set (64-byte lines, 64 sets), so that the
/// micro-kernel's streams of A keep evicting each other. Two sets (lda ≡ 512 mod 1024) measured fine.
static int lda_aliases(size_t lda, size_t mr) {
    uint64_t seen = 0;
    for (size_t r = 0; r < mr; r++) seen |= (uint64_t)1 << ((r * lda * sizeof(float) / 64) % 64);
    return __builtin_popcountll(seen) < 2;
}

/// Per-thread scratch (grown on demand, freed when the thread exits): `task` for the A blocks a task copies, `call`
/// for the packed A a calling thread shares with the pool for the duration of one GEMM, `b` for the B that
/// vk_gemm packs per call. One key each, because the calling thread also runs tasks.
typedef struct {
    float *data;
    size_t floats;
} scratch;
enum { SCRATCH_TASK, SCRATCH_CALL, SCRATCH_B, SCRATCH_KEYS };
static pthread_key_t scratch_keys[SCRATCH_KEYS];
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static void scratch_free(void *p) {
    scratch *s = p;
    free(s->data);
    free(s);
}
static void scratch_init(void) {
    for (int i = 0; i < SCRATCH_KEYS; i++) pthread_key_create(&scratch_keys[i], scratch_free);
}
static float *scratch_get_for(int which, size_t floats) {
    pthread_once(&scratch_once, scratch_init);
    pthread_key_t scratch_key = scratch_keys[which];
    scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return NULL;
        if (pthread_setspecific(scratch_key, s) != 0) {
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
static float *scratch_get(size_t floats) { return scratch_get_for(SCRATCH_TASK, floats); }

/// Packs a whole tile of 6 rows: dst[k·6 + r] = src[r·lda + k]. With SSE (every x86-64), four columns at a time as
/// one 4×4 transpose of rows 0–3 and two 2-float pairs of rows 4–5: the scalar loop's 12 loads and stores per
/// column were 14% of the AVX2 kernel's time in ViT-Ti at batch 8. A copy, so the bits of C do not change.
static void pack_tile6(float *dst, const float *src, size_t lda, size_t K) {
    size_t k = 0;
#if defined(__SSE2__)
    const float *s0 = src, *s1 = src + lda, *s2 = src + 2 * lda, *s3 = src + 3 * lda, *s4 = src + 4 * lda,
                *s5 = src + 5 * lda;
    for (; k + 4 <= K; k += 4) {
        __m128 r0 = _mm_loadu_ps(s0 + k), r1 = _mm_loadu_ps(s1 + k), r2 = _mm_loadu_ps(s2 + k),
               r3 = _mm_loadu_ps(s3 + k), r4 = _mm_loadu_ps(s4 + k), r5 = _mm_loadu_ps(s5 + k);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3); // r_j = column k + j of rows 0–3
        __m128 lo = _mm_unpacklo_ps(r4, r5), hi = _mm_unpackhi_ps(r4, r5); // (4,5) pairs of columns k..k+1, k+2..k+3
        float *d = dst + k * 6;
        _mm_storeu_ps(d, r0);
        _mm_storel_pi((__m64 *)(d + 4), lo);
        _mm_storeu_ps(d + 6, r1);
        _mm_storeh_pi((__m64 *)(d + 10), lo);
        _mm_storeu_ps(d + 12, r2);
        _mm_storel_pi((__m64 *)(d + 16), hi);
        _mm_storeu_ps(d + 18, r3);
        _mm_storeh_pi((__m64 *)(d + 22), hi);
    }
#endif
    for (; k < K; k++)
        for (size_t r = 0; r < 6; r++) dst[k * 6 + r] = src[r * lda + k];
}

/// Packs row tiles [t·pack_tiles, (t+1)·pack_tiles) of A into job->a_packed (layout in gemm_job).
static void pack_a_task(void *context, size_t t) {
    const gemm_job *job = context;
    size_t mr = job->B->kernel->mr, K = job->K, tiles = (job->M + mr - 1) / mr;
    size_t t1 = (t + 1) * job->pack_tiles < tiles ? (t + 1) * job->pack_tiles : tiles;
    for (size_t tile = t * job->pack_tiles; tile < t1; tile++) {
        size_t i0 = tile * mr, rows = job->M - i0 < mr ? job->M - i0 : mr;
        float *dst = job->a_packed + i0 * K;
        const float *src = job->A + i0 * job->lda;
        size_t lda = job->lda;
        if (mr == 6 && rows == 6) {
            pack_tile6(dst, src, lda, K);
            continue;
        }
        // k outer: sequential stores, one read stream per row of the tile.
        for (size_t k = 0; k < K; k++)
            for (size_t r = 0; r < rows; r++) dst[k * mr + r] = src[r * lda + k];
    }
}

static void gemm_task(void *context, size_t t) {
    const gemm_job *job = context;
    const vk_gemm_kernel *kernel = job->B->kernel;
    size_t mr = kernel->mr, nr = kernel->nr;
    size_t mb = t / job->nchunks, nb = t % job->nchunks;
    size_t m0 = mb * job->mc, m1 = m0 + job->mc < job->M ? m0 + job->mc : job->M;
    size_t P = job->B->panels;
    size_t p0 = nb * P / job->nchunks, p1 = (nb + 1) * P / job->nchunks;
    size_t K = job->K, kc = job->kc;
    const float *bdata = job->B->data;
    // A packed by vk_gemm_packed (a packed-A kernel), or copied per block when its rows alias in L1.
    int pack_a = job->a_packed != NULL;
    float *abuf = !pack_a && job->a_stride ? scratch_get((m1 - m0) * job->a_stride) : NULL;
    for (size_t k0 = 0; k0 < K || (K == 0 && k0 == 0); k0 += kc) {
        size_t kb = K - k0 < kc ? K - k0 : kc;
        int first = k0 == 0, last = k0 + kb >= K;
        int load_c = !first || job->accumulate;
        for (size_t p = p0; p < p1; p++) {
            size_t c0 = p * nr, w = job->N - c0 < nr ? job->N - c0 : nr;
            const float *b = bdata + p * K * nr + k0 * nr;
            const float *a = job->A + m0 * job->lda + k0;
            size_t lda = job->lda;
            if (abuf) {
                if (p == p0) {
                    for (size_t i = m0; i < m1; i++)
                        memcpy(abuf + (i - m0) * job->a_stride, job->A + i * job->lda + k0, kb * sizeof(float));
                }
                a = abuf;
                lda = job->a_stride;
            }
            const float *bias = last && job->bias ? job->bias + c0 : NULL;
            for (size_t i = m0; i < m1; i += mr) {
                size_t rows = m1 - i < mr ? m1 - i : mr;
                float *c = job->C + i * job->ldc + c0;
                const float *ai = pack_a ? job->a_packed + i * K + k0 * mr : a + (i - m0) * lda;
                kernel->kernel(rows, kb, ai, lda, pack_a, b, c, job->ldc, w, load_c, bias);
                if (last && job->activation) vk_activate_rows(c, rows, w, job->ldc, job->activation);
            }
        }
        if (K == 0) break;
    }
}

/// Packed A (a packed-A kernel) is at most this many floats: a taller A is multiplied in passes of fewer rows.
#define PACKED_A_FLOATS ((size_t)1 << 20)

static void gemm_rows(size_t M, const float *A, size_t lda, const vk_packed *B, float *C, size_t ldc, const float *bias,
                      int accumulate, int activation, int threads);

/// The K block: K split into equal blocks of at most kc_max. It depends on K and the kernel only (never on M or the
/// threads): see "Reproducibility" above.
static size_t k_block(size_t K, const vk_gemm_kernel *kernel) {
    size_t kblocks = (K + kernel->kc_max - 1) / kernel->kc_max;
    return kblocks ? (K + kblocks - 1) / kblocks : 1;
}

void vk_gemm_packed(size_t M, const float *A, size_t lda, const vk_packed *B, float *C, size_t ldc, const float *bias,
                    int accumulate, int activation, int threads) {
    if (!B || M == 0 || B->N == 0) return;
    // Passes over row ranges bound the packed-A scratch (4 MB; ViT-B/16's fc2 at batch 8 would need 19 MB). Every
    // element is computed from its own row alone, so the passes change no bits.
    size_t mr = B->kernel->mr, rows = M;
    if (B->kernel->packed_a && B->K > 0) {
        rows = PACKED_A_FLOATS / B->K / mr * mr;
        if (rows < mr * B->kernel->mc_tiles) rows = mr * B->kernel->mc_tiles;
    }
    for (size_t r0 = 0; r0 < M; r0 += rows) {
        size_t m = M - r0 < rows ? M - r0 : rows;
        gemm_rows(m, A + r0 * lda, lda, B, C + r0 * ldc, ldc, bias, accumulate, activation, threads);
    }
}

static void gemm_rows(size_t M, const float *A, size_t lda, const vk_packed *B, float *C, size_t ldc, const float *bias,
                      int accumulate, int activation, int threads) {
    const vk_gemm_kernel *kernel = B->kernel;
    size_t mr = kernel->mr, mc_max = kernel->mr * kernel->mc_tiles;
    gemm_job job = {.M = M, .K = B->K, .N = B->N, .A = A, .lda = lda, .B = B, .C = C, .ldc = ldc, .bias = bias,
                    .accumulate = accumulate, .activation = activation};
    if (job.activation < VK_ACT_NONE || job.activation > VK_ACT_SILU) job.activation = VK_ACT_NONE;
    size_t K = B->K, P = B->panels;
    job.kc = k_block(K, kernel);
    // Threads: none beyond what ~1 MFLOP each can keep busy (waking a worker costs microseconds).
    double flops = 2.0 * (double)M * (double)K * (double)B->N;
    if (threads < 1) threads = 1;
    if (threads > 1 && flops < 2e6 * threads) threads = flops < 4e6 ? 1 : (int)(flops / 2e6);
    // Row blocks: ≤ mc_max rows each, whole micro-tiles.
    size_t tiles = (M + mr - 1) / mr;
    size_t mblocks = (tiles + mc_max / mr - 1) / (mc_max / mr);
    // Panel chunks: ~PANELS_PER_TASK panels of 32 columns each (one per thread when A is copied), a multiple of the
    // thread count when there are enough panels.
    size_t T = (size_t)threads;
    int copy_a = !kernel->packed_a && K > 128 && lda_aliases(lda, mr);
    size_t per_task = PANELS_PER_TASK * 32 / kernel->nr;
    size_t nchunks = copy_a ? 1 : (P + per_task - 1) / per_task;
    if (T > 1) {
        if (P >= T) nchunks = (nchunks + T - 1) / T * T;
        else nchunks = P;
        if (nchunks > P) nchunks = P;
        // Too few tasks to keep T threads busy: split rows further.
        while (mblocks * nchunks < 2 * T && mblocks < tiles) mblocks++;
    }
    job.mc = (tiles + mblocks - 1) / mblocks * mr;
    job.mblocks = (M + job.mc - 1) / job.mc;
    job.nchunks = nchunks;
    job.a_stride = copy_a ? kernel->kc_max + 16 : 0; // mr rows then fall in mr different L1 sets
    // A packed-A kernel: all of A is packed once here, shared by every task (packed per task, each row block would
    // be packed again for every panel chunk: 11% of ViT-B/16's time on the AVX2 path). Without the memory, the
    // kernel reads A in place (same sums, same bits).
    // Narrow B (fewer than 8 panels, e.g. N = 64) reuses each packed tile too few times to repay the copy (a quarter
    // of the kernel's time at N = 64): the kernel then reads A in place unless its rows alias in L1.
    int pack = kernel->packed_a && K > 0 && (P >= 8 || lda_aliases(lda, mr));
    if (pack && (job.a_packed = scratch_get_for(SCRATCH_CALL, tiles * mr * K)) != NULL) {
        size_t groups = threads > 1 ? (size_t)threads * 4 : 1;
        if (groups > tiles) groups = tiles;
        job.pack_tiles = (tiles + groups - 1) / groups;
        groups = (tiles + job.pack_tiles - 1) / job.pack_tiles;
        if (threads <= 1 || groups == 1) {
            for (size_t t = 0; t < groups; t++) pack_a_task(&job, t);
        } else {
            vk_parallel_tasks(groups, threads, pack_a_task, &job);
        }
    }
    size_t tasks = job.mblocks * job.nchunks;
    if (threads <= 1 || tasks == 1) {
        for (size_t t = 0; t < tasks; t++) gemm_task(&job, t);
    } else {
        vk_parallel_tasks(tasks, threads, gemm_task, &job);
    }
}

void vk_gemm(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t b_row_stride,
             size_t b_col_stride, float scale, float *C, size_t ldc) {
    if (M == 0 || N == 0) return;
    const vk_gemm_kernel *kernel = current_kernel();
    size_t nr = kernel->nr, panels = (N + nr - 1) / nr;
    vk_packed b = {.K = K, .N = N, .panels = panels, .kernel = kernel,
                   .data = scratch_get_for(SCRATCH_B, panels * nr * (K ? K : 1))};
    if (b.data) {
        fill_panels(&b, B, b_row_stride, b_col_stride, scale);
        gemm_rows(M, A, lda, &b, C, ldc, NULL, 0, VK_ACT_NONE, 1);
        return;
    }
    // No memory for a few KB: the micro-kernel's sums element by element (each K block from zero, added to the
    // blocks before it), so the bits are the same; slow, and not expected to run.
    size_t kc = k_block(K, kernel);
    for (size_t i = 0; i < M; i++)
        for (size_t c = 0; c < N; c++) {
            float out = 0;
            for (size_t k0 = 0; k0 < K; k0 += kc) {
                float acc = 0;
                for (size_t k = k0; k < K && k < k0 + kc; k++)
                    acc += A[i * lda + k] * (scale * B[k * b_row_stride + c * b_col_stride]);
                out = k0 ? acc + out : acc;
            }
            C[i * ldc + c] = out;
        }
}
