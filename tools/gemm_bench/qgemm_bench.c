// Times the reduced-precision packed GEMMs (vk_gemm_q8, vk_gemm_bf16; vit_qgemm.h) against the fp32 packed GEMM
// (vk_gemm_packed) on the forward pass's GEMM shapes, interleaved in the same run, and measures the instruction-level
// peaks they are bounded by (--peak). Not a test (Tests/ViTKitTests/QuantizedGemmTests.swift is): it only prints the
// error of each result against the fp32 product. Build and run with ./qrun.sh; see README.md.

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vit_gemm.h"
#include "vit_kernels.h"
#include "vit_qgemm.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void loadavg(char *out, size_t size) {
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f || !fgets(out, (int)size, f)) snprintf(out, size, "?");
    if (f) fclose(f);
    out[strcspn(out, "\n")] = 0;
}

// ---- Instruction peaks: independent accumulator chains (no loads), 1 and 2 threads --------------------------------
//
// Each chain is one register updated by one instruction per iteration; CHAINS chains cover latency × throughput of
// every instruction measured here. OP/s counts a multiply-add as 2 operations (GOP/s = GFLOP/s for fp32 and BF16).

#define CHAINS 12
#define OPAQUE(x) __asm__ volatile("" : "+v"(x))

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static double run_fma512(long n) {
    __m512 acc[CHAINS], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < n; it++) {
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
        OPAQUE(x);
    }
    float s = 0;
    for (int i = 0; i < CHAINS; i++) s += acc[i][0];
    return s;
}
__attribute__((target("avx2,fma"))) static double run_fma256(long n) {
    __m256 acc[CHAINS], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < n; it++) {
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
        OPAQUE(x);
    }
    float s = 0;
    for (int i = 0; i < CHAINS; i++) s += acc[i][0];
    return s;
}
__attribute__((target("avx512f,avx512vnni"))) static double run_vpdpbusd512(long n) {
    __m512i acc[CHAINS], a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_epi32(i);
    for (long it = 0; it < n; it++) {
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
        OPAQUE(a);
    }
    int32_t s = 0;
    for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_epi32(acc[i]);
    return s;
}
__attribute__((target("avx2,avxvnni"))) static double run_vpdpbusd256(long n) {
    __m256i acc[CHAINS], a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_epi32(i);
    for (long it = 0; it < n; it++) {
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_dpbusd_avx_epi32(acc[i], a, b);
        OPAQUE(a);
    }
    int32_t s = 0;
    for (int i = 0; i < CHAINS; i++) s += _mm256_extract_epi32(acc[i], 0);
    return s;
}
// The AVX2 sequences' multiplies do not read the accumulator, so with one operand pair per iteration the compiler
// computes the product once and only the adds are repeated (that measured 341 GOP/s for vpmaddubsw, more than two
// multiply ports allow). Here every product of an iteration has its own operand pair (4 × 3 opaque registers), and
// the 12 products go into 6 accumulators: 14 of the 16 ymm registers, no spills.
#define PAIRS_A 4
#define PAIRS_B 3
#define OPAQUE_PAIRS(a, b)                                    \
    do {                                                      \
        for (int j = 0; j < PAIRS_A; j++) OPAQUE(a[j]);       \
        for (int j = 0; j < PAIRS_B; j++) OPAQUE(b[j]);       \
    } while (0)
/// vpmaddubsw sequences on u8 × s8 operand pairs, 32 multiply-adds per vpmaddubsw. PER_WIDEN 1: vpmaddubsw +
/// vpmaddwd (·1) + vpaddd, the classic AVX2 sequence (saturating). PER_WIDEN 2: two vpmaddubsw + vpaddw + vpmaddwd +
/// vpaddd, 3 multiplies per 64 multiply-adds (qgemm_avx2.c's avx2-maddubs7 kernel, whose 7-bit operands keep the
/// int16 sum of two pairs exact).
__attribute__((target("avx2"), always_inline)) static inline double maddubs_sequence(long n, const int PER_WIDEN) {
    __m256i acc[6], a[PAIRS_A], b[PAIRS_B], one = _mm256_set1_epi16(1);
    for (int i = 0; i < 6; i++) acc[i] = _mm256_set1_epi32(i);
    for (int j = 0; j < PAIRS_A; j++) a[j] = _mm256_set1_epi8((char)(3 + j));
    for (int j = 0; j < PAIRS_B; j++) b[j] = _mm256_set1_epi8((char)(-2 - j));
    for (long it = 0; it < n; it++) {
        OPAQUE_PAIRS(a, b);
        for (int i = 0; i < CHAINS; i += PER_WIDEN) {
            __m256i s = _mm256_maddubs_epi16(a[i % PAIRS_A], b[i / PAIRS_A]);
            if (PER_WIDEN == 2) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(a[(i + 1) % PAIRS_A], b[(i + 1) / PAIRS_A]));
            acc[(i / PER_WIDEN) % 6] = _mm256_add_epi32(acc[(i / PER_WIDEN) % 6], _mm256_madd_epi16(s, one));
        }
    }
    int32_t s = 0;
    for (int i = 0; i < 6; i++) s += _mm256_extract_epi32(acc[i], 0);
    return s;
}
__attribute__((target("avx2"))) static double run_maddubs256(long n) { return maddubs_sequence(n, 1); }
__attribute__((target("avx2"))) static double run_maddubs7_256(long n) { return maddubs_sequence(n, 2); }
/// vpmaddwd + vpaddd on 16-bit operands (what qgemm_avx2.c's exact kernel runs), 16 multiply-adds.
__attribute__((target("avx2"))) static double run_maddwd256(long n) {
    __m256i acc[6], a[PAIRS_A], b[PAIRS_B];
    for (int i = 0; i < 6; i++) acc[i] = _mm256_set1_epi32(i);
    for (int j = 0; j < PAIRS_A; j++) a[j] = _mm256_set1_epi16((short)(3 + j));
    for (int j = 0; j < PAIRS_B; j++) b[j] = _mm256_set1_epi16((short)(-2 - j));
    for (long it = 0; it < n; it++) {
        OPAQUE_PAIRS(a, b);
        for (int i = 0; i < CHAINS; i++)
            acc[i % 6] = _mm256_add_epi32(acc[i % 6], _mm256_madd_epi16(a[i % PAIRS_A], b[i / PAIRS_A]));
    }
    int32_t s = 0;
    for (int i = 0; i < 6; i++) s += _mm256_extract_epi32(acc[i], 0);
    return s;
}
__attribute__((target("avx512f,avx512bf16"))) static double run_vdpbf16ps(long n) {
    __m512 acc[CHAINS];
    __m512i a = _mm512_set1_epi16(0x3F80), b = _mm512_set1_epi16(0x3F00);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < n; it++) {
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)a, (__m512bh)b);
        OPAQUE(a);
    }
    float s = 0;
    for (int i = 0; i < CHAINS; i++) s += acc[i][0];
    return s;
}
#if defined(__linux__)
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;
/// Four independent accumulator tiles, operands in tiles 4–7 (no loads in the loop).
__attribute__((target("amx-tile,amx-int8,amx-bf16"))) static double run_amx(long n, int bf16) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    _tile_loadconfig(&cfg);
    _Alignas(64) static const uint8_t ones[16 * 64] = {0};
    for (int t = 0; t < 4; t++) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    _tile_loadd(4, ones, 64);
    _tile_loadd(5, ones, 64);
    _tile_loadd(6, ones, 64);
    _tile_loadd(7, ones, 64);
    if (bf16)
        for (long it = 0; it < n; it++) {
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    else
        for (long it = 0; it < n; it++) {
            _tile_dpbusd(0, 4, 6);
            _tile_dpbusd(1, 4, 7);
            _tile_dpbusd(2, 5, 6);
            _tile_dpbusd(3, 5, 7);
        }
    _Alignas(64) int32_t out[256];
    _tile_stored(0, out, 64);
    _tile_release();
    return out[0];
}
static double run_amx_int8(long n) { return run_amx(n, 0); }
static double run_amx_bf16(long n) { return run_amx(n, 1); }
static int amx_ok(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 24) & 1)) return 0;
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0; // ARCH_REQ_XCOMP_PERM, XTILEDATA
}
#endif
#endif

typedef struct {
    double (*fn)(long);
    long n;
    double sink;
    double cpu; // thread CPU seconds of the run
} peak_job;

static void *peak_thread(void *p) {
    peak_job *job = p;
    struct timespec a, b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    job->sink = job->fn(job->n);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    job->cpu = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
    return NULL;
}

/// G operations per second of `threads` threads each running fn(n) (best of 5), by wall time and per CPU-second
/// of the threads (the latter is what one core does while it runs: other processes' time slices excluded).
static void peak_rate(double (*fn)(long), long n, double ops, int threads, double *wall, double *per_cpu) {
    *wall = *per_cpu = 0;
    for (int round = 0; round < 5; round++) {
        pthread_t t[8];
        peak_job jobs[8];
        double t0 = now();
        for (int i = 0; i < threads; i++) {
            jobs[i] = (peak_job){fn, n, 0, 0};
            pthread_create(&t[i], NULL, peak_thread, &jobs[i]);
        }
        for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
        double rate = ops * threads / (now() - t0) * 1e-9, cpu = 0;
        for (int i = 0; i < threads; i++) cpu += jobs[i].cpu;
        if (rate > *wall) *wall = rate;
        if (cpu > 0 && ops * threads / cpu * 1e-9 > *per_cpu) *per_cpu = ops * threads / cpu * 1e-9;
    }
}

static void print_peaks(void) {
    printf("CPU: %s\n", vk_cpu_model());
    printf("Instruction peaks (independent chains, no loads; best of 5; a multiply-add = 2 ops):\n");
#if defined(__x86_64__)
    __builtin_cpu_init();
    typedef struct {
        const char *name;
        double (*fn)(long);
        long n;
        double ops_per_iter; // per loop iteration of one thread
        int ok;
    } peak;
    int amx = 0;
#if defined(__linux__)
    amx = amx_ok();
#endif
    peak peaks[] = {
        {"fp32 FMA zmm (vfmadd)", run_fma512, 20000000, CHAINS * 16 * 2, __builtin_cpu_supports("avx512f")},
        {"fp32 FMA ymm (vfmadd)", run_fma256, 20000000, CHAINS * 8 * 2, __builtin_cpu_supports("fma")},
        {"int8 vpdpbusd zmm", run_vpdpbusd512, 20000000, CHAINS * 64 * 2, __builtin_cpu_supports("avx512vnni")},
        {"int8 vpdpbusd ymm (AVX-VNNI)", run_vpdpbusd256, 20000000, CHAINS * 32 * 2, __builtin_cpu_supports("avxvnni")},
        {"int8 vpmaddubsw+vpmaddwd+vpaddd ymm", run_maddubs256, 20000000, CHAINS * 32 * 2,
         __builtin_cpu_supports("avx2")},
        {"int8 2x vpmaddubsw+vpaddw+vpmaddwd+vpaddd ymm", run_maddubs7_256, 20000000, CHAINS * 32 * 2,
         __builtin_cpu_supports("avx2")},
        {"int16 vpmaddwd+vpaddd ymm", run_maddwd256, 20000000, CHAINS * 16 * 2, __builtin_cpu_supports("avx2")},
        {"bf16 vdpbf16ps zmm", run_vdpbf16ps, 10000000, CHAINS * 32 * 2, __builtin_cpu_supports("avx512bf16")},
#if defined(__linux__)
        {"int8 AMX tdpbusd (16x16x64)", run_amx_int8, 2000000, 4 * 16 * 16 * 64 * 2, amx},
        {"bf16 AMX tdpbf16ps (16x16x32)", run_amx_bf16, 2000000, 4 * 16 * 16 * 32 * 2, amx},
#endif
    };
    (void)amx;
    char load[128];
    loadavg(load, sizeof load);
    printf("loadavg at start: %s\n", load);
    printf("%-38s %23s %23s\n", "instruction", "1 thread: wall, /CPU-s", "2 threads: wall, /CPU-s");
    for (size_t i = 0; i < sizeof peaks / sizeof peaks[0]; i++) {
        if (!peaks[i].ok) {
            printf("%-38s %23s\n", peaks[i].name, "(not here)");
            continue;
        }
        double ops = peaks[i].ops_per_iter * peaks[i].n, w1, c1, w2, c2;
        peak_rate(peaks[i].fn, peaks[i].n, ops, 1, &w1, &c1);
        peak_rate(peaks[i].fn, peaks[i].n, ops, 2, &w2, &c2);
        printf("%-38s %8.1f %8.1f GOP/s %8.1f %8.1f GOP/s\n", peaks[i].name, w1, c1, w2, c2);
        fflush(stdout);
    }
    loadavg(load, sizeof load);
    printf("loadavg at end: %s\n", load);
#else
    printf("(x86-64 only)\n");
#endif
}

// ---- GEMM timing ---------------------------------------------------------------------------------------------------

typedef struct {
    const char *name;
    size_t M, K, N;
} shape;

enum { FP32, Q8, BF16 };

typedef struct {
    int kind;
    const char *kernel;
    vk_packed *fp;
    vk_packed_q8 *q8;
    vk_packed_bf16 *bf;
    float *C;
    double *gops; // per round
    double cpu, ops;
} variant;

static void run(const variant *v, size_t M, const float *A, size_t K, size_t N, const float *bias, int threads) {
    if (v->kind == FP32) vk_gemm_packed(M, A, K, v->fp, v->C, N, bias, 0, 0, threads);
    else if (v->kind == Q8) vk_gemm_q8(M, A, K, v->q8, v->C, N, bias, 0, 0, threads);
    else vk_gemm_bf16(M, A, K, v->bf, v->C, N, bias, 0, 0, threads);
}

static int listed(const char *list, const char *name) {
    if (!list) return 1;
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}

int main(int argc, char **argv) {
    int threads = 2, rounds = 7, peak = 0;
    double block_ms = 60;
    const char *only = NULL, *q8_list = NULL, *bf16_list = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--block-ms") && i + 1 < argc) block_ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--q8") && i + 1 < argc) q8_list = argv[++i];
        else if (!strcmp(argv[i], "--bf16") && i + 1 < argc) bf16_list = argv[++i];
        else if (!strcmp(argv[i], "--peak")) peak = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--rounds N] [--block-ms MS] [--only SUBSTRING] [--q8 K1,K2|none]\n"
                    "       [--bf16 K1,K2|none] [--peak]\n"
                    "kernels: the default kernel of each precision and every other one this CPU runs at this level\n"
                    "(except the portable ones unless that is the level); --q8/--bf16 name them (see below).\n",
                    argv[0]);
            for (size_t k = 0; vk_q8_kernel_available(k); k++) fprintf(stderr, "  int8: %s\n", vk_q8_kernel_available(k));
            for (size_t k = 0; vk_bf16_kernel_available(k); k++) fprintf(stderr, "  bf16: %s\n", vk_bf16_kernel_available(k));
            return 2;
        }
    }
    if (peak) {
        print_peaks();
        return 0;
    }
    static const shape shapes[] = {
        {"B/16 b1 qkv", 197, 768, 2304},  {"B/16 b1 proj", 197, 768, 768},  {"B/16 b1 fc1", 197, 768, 3072},
        {"B/16 b1 fc2", 197, 3072, 768},  {"S/16 b1 qkv", 197, 384, 1152},  {"S/16 b1 proj", 197, 384, 384},
        {"S/16 b1 fc1", 197, 384, 1536},  {"S/16 b1 fc2", 197, 1536, 384},  {"Ti/16 b1 qkv", 197, 192, 576},
        {"Ti/16 b1 proj", 197, 192, 192}, {"Ti/16 b1 fc1", 197, 192, 768},  {"Ti/16 b1 fc2", 197, 768, 192},
        {"B/16 b8 qkv", 1576, 768, 2304}, {"B/16 b8 proj", 1576, 768, 768}, {"B/16 b8 fc1", 1576, 768, 3072},
        {"B/16 b8 fc2", 1576, 3072, 768}, {"S/16 b8 fc1", 1576, 384, 1536}, {"Ti/16 b8 fc1", 1576, 192, 768},
    };
    // Kernels: the defaults, then the other usable ones at this level (portable only on the fallback level).
    const char *q8_names[8], *bf_names[8];
    size_t nq = 0, nb = 0;
    int fallback = strcmp(vk_instruction_set(), "fallback") == 0;
    if (!q8_list || strcmp(q8_list, "none")) {
        if (!q8_list) q8_names[nq++] = vk_gemm_q8_kernel_name();
        for (size_t k = 0; vk_q8_kernel_available(k) && nq < 8; k++) {
            const char *n = vk_q8_kernel_available(k);
            if (!q8_list && (!strcmp(n, vk_gemm_q8_kernel_name()) || (strstr(n, "portable") && !fallback))) continue;
            if (!q8_list && !fallback && strcmp(vk_instruction_set(), "avx2") == 0 && (strstr(n, "avx512") || strstr(n, "amx"))) continue;
            if (listed(q8_list, n)) q8_names[nq++] = n;
        }
    }
    if (!bf16_list || strcmp(bf16_list, "none")) {
        if (!bf16_list) bf_names[nb++] = vk_gemm_bf16_kernel_name();
        for (size_t k = 0; vk_bf16_kernel_available(k) && nb < 8; k++) {
            const char *n = vk_bf16_kernel_available(k);
            if (!bf16_list && (!strcmp(n, vk_gemm_bf16_kernel_name()) || (strstr(n, "portable") && !fallback))) continue;
            if (!bf16_list && !fallback && strcmp(vk_instruction_set(), "avx2") == 0 && (strstr(n, "avx512") || strstr(n, "amx"))) continue;
            if (listed(bf16_list, n)) bf_names[nb++] = n;
        }
    }
    char load[128];
    loadavg(load, sizeof load);
    printf("threads %d, %d rounds of %.0f ms per variant, variants interleaved (order rotated every round); "
           "loadavg at start: %s\n",
           threads, rounds, block_ms, load);
    printf("CPU: %s; path %s; fp32 micro-kernel %s\n", vk_cpu_model(), vk_instruction_set(), vk_gemm_kernel_name());
    printf("GOP/s (a multiply-add = 2 ops) by wall time: median of the rounds [best]; x = median time / fp32's median "
           "time;\nerr = max |C − C_fp32| / max |C_fp32| over the product (no bias)\n");
    size_t nv = 1 + nq + nb;
    srand(1);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape sh = shapes[s];
        if (only && !strstr(sh.name, only)) continue;
        size_t M = sh.M, K = sh.K, N = sh.N;
        float *A = malloc(M * K * 4), *Bt = malloc(K * N * 4), *bias = malloc(N * 4);
        // LayerNorm-like activations, weights ~ N(0, 0.02²)-like (uniform of the same spread).
        for (size_t i = 0; i < M * K; i++) A[i] = 2.0f * ((float)rand() / (float)RAND_MAX - 0.5f) * 1.7f;
        for (size_t i = 0; i < K * N; i++) Bt[i] = 0.07f * ((float)rand() / (float)RAND_MAX - 0.5f);
        for (size_t i = 0; i < N; i++) bias[i] = 0;
        variant v[17];
        memset(v, 0, sizeof v);
        v[0].kind = FP32;
        v[0].kernel = vk_gemm_kernel_name();
        v[0].fp = vk_pack_transposed(Bt, K, N, K);
        for (size_t i = 0; i < nq; i++) {
            v[1 + i].kind = Q8;
            v[1 + i].kernel = q8_names[i];
            v[1 + i].q8 = vk_pack_q8_transposed_with(Bt, K, N, K, q8_names[i]);
        }
        for (size_t i = 0; i < nb; i++) {
            v[1 + nq + i].kind = BF16;
            v[1 + nq + i].kernel = bf_names[i];
            v[1 + nq + i].bf = vk_pack_bf16_transposed_with(Bt, K, N, K, bf_names[i]);
        }
        for (size_t i = 0; i < nv; i++) {
            v[i].C = malloc(M * N * 4);
            v[i].gops = calloc((size_t)rounds, sizeof(double));
            run(&v[i], M, A, K, N, NULL, threads);
        }
        double ops = 2.0 * M * K * N;
        for (int r = 0; r < rounds; r++) {
            for (size_t j = 0; j < nv; j++) {
                variant *x = &v[(j + (size_t)r) % nv];
                double t0 = now(), c0 = cpu_now(), t;
                long calls = 0;
                do {
                    run(x, M, A, K, N, bias, threads);
                    calls++;
                    t = now() - t0;
                } while (t < block_ms * 1e-3);
                x->gops[r] = ops * calls / t * 1e-9;
                x->cpu += cpu_now() - c0;
                x->ops += ops * calls;
            }
        }
        printf("\n%s  M %zu K %zu N %zu\n", sh.name, M, K, N);
        double fp_med = 0, ref_max = 0;
        for (size_t i = 0; i < M * N; i++) ref_max = fmax(ref_max, fabs(v[0].C[i]));
        for (size_t i = 0; i < nv; i++) {
            qsort(v[i].gops, (size_t)rounds, sizeof(double), compare);
            double med = v[i].gops[rounds / 2], best = v[i].gops[rounds - 1];
            if (i == 0) fp_med = med;
            double err = 0;
            for (size_t e = 0; e < M * N; e++) err = fmax(err, fabs(v[i].C[e] - v[0].C[e]));
            printf("  %-5s %-20s %7.1f [%7.1f] GOP/s  x %.2f  per CPU-s %7.1f  err %.1e\n",
                   v[i].kind == FP32 ? "fp32" : v[i].kind == Q8 ? "int8" : "bf16", v[i].kernel, med, best,
                   fp_med / med, v[i].ops / v[i].cpu * 1e-9, err / (ref_max > 0 ? ref_max : 1));
        }
        fflush(stdout);
        for (size_t i = 0; i < nv; i++) {
            free(v[i].C);
            free(v[i].gops);
            vk_packed_free(v[i].fp);
            vk_packed_q8_free(v[i].q8);
            vk_packed_bf16_free(v[i].bf);
        }
        free(A), free(Bt), free(bias);
    }
    loadavg(load, sizeof load);
    printf("\nloadavg at end: %s\n", load);
    return 0;
}
