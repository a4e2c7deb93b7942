// Times cblas_sgemm against vk_gemm_packed (weights packed once) on the forward pass's GEMM shapes, interleaved in the
// same run, and prints GFLOP/s for both. Not a test: see README.md. Build and run with ./run.sh.

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vit_gemm.h"
#include "vit_kernels.h"

#include <pthread.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// ---- FMA peak: independent FMA chains (no loads), timed on 1 and 2 threads: the ceiling for any sgemm here. -------

#define CHAINS 12
#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static double fma256(long iterations) {
    __m256 acc[CHAINS], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long n = 0; n < iterations; n++)
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    float sum = 0;
    for (int i = 0; i < CHAINS; i++) sum += acc[i][0];
    return sum;
}
__attribute__((target("avx512f"))) static double fma512(long iterations) {
    __m512 acc[CHAINS], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long n = 0; n < iterations; n++)
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    float sum = 0;
    for (int i = 0; i < CHAINS; i++) sum += acc[i][0];
    return sum;
}
#endif

typedef struct {
    int width;
    long iterations;
    double sink;
} peak_job;

static void *peak_thread(void *p) {
    peak_job *job = p;
#if defined(__x86_64__)
    job->sink = job->width == 512 ? fma512(job->iterations) : fma256(job->iterations);
#endif
    return NULL;
}

static double now(void);

/// GFLOP/s of `threads` threads each running FMA chains of `width` bits (best of 5).
static double fma_gflops(int width, int threads) {
    long iterations = 20000000;
    double best = 0;
    for (int round = 0; round < 5; round++) {
        pthread_t t[8];
        peak_job jobs[8];
        double t0 = now();
        for (int i = 0; i < threads; i++) {
            jobs[i] = (peak_job){width, iterations, 0};
            pthread_create(&t[i], NULL, peak_thread, &jobs[i]);
        }
        for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
        double gflops = 2.0 * CHAINS * (width / 32) * iterations * threads / (now() - t0) * 1e-9;
        if (gflops > best) best = gflops;
    }
    return best;
}

static void print_fma_peak(void) {
    printf("CPU: %s\n", vk_cpu_model());
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("fma")) {
        printf("no FMA\n");
        return;
    }
    for (int threads = 1; threads <= 2; threads++) {
        printf("FMA peak, %d thread%s: 256-bit %.1f GFLOP/s", threads, threads > 1 ? "s" : "", fma_gflops(256, threads));
        if (__builtin_cpu_supports("avx512f")) printf(", 512-bit %.1f GFLOP/s", fma_gflops(512, threads));
        printf("\n");
    }
}

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

static void pause_ms(double ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000) * 1e6)};
    nanosleep(&ts, NULL);
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    const char *name;
    size_t M, K, N;
} shape;

static void loadavg(char *out, size_t size) {
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f || !fgets(out, (int)size, f)) snprintf(out, size, "?");
    if (f) fclose(f);
    out[strcspn(out, "\n")] = 0;
}

int main(int argc, char **argv) {
    int threads = 2, rounds = 7;
    double block_ms = 60, blas_cooldown_ms = 120;
    const char *only = NULL;
    int peak = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--block-ms") && i + 1 < argc) block_ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--cooldown-ms") && i + 1 < argc) blas_cooldown_ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--peak")) peak = 1;
        else {
            fprintf(stderr, "usage: %s [--threads N] [--rounds N] [--block-ms MS] [--cooldown-ms MS] [--only SUBSTRING] [--peak]\n",
                    argv[0]);
            return 2;
        }
    }
    if (peak) {
        print_fma_peak();
        return 0;
    }
    static const shape shapes[] = {
        {"B/16 b1 qkv", 197, 768, 2304},   {"B/16 b1 proj", 197, 768, 768},   {"B/16 b1 fc1", 197, 768, 3072},
        {"B/16 b1 fc2", 197, 3072, 768},   {"S/16 b1 qkv", 197, 384, 1152},   {"S/16 b1 proj", 197, 384, 384},
        {"S/16 b1 fc1", 197, 384, 1536},   {"S/16 b1 fc2", 197, 1536, 384},   {"Ti/16 b1 qkv", 197, 192, 576},
        {"Ti/16 b1 proj", 197, 192, 192},  {"Ti/16 b1 fc1", 197, 192, 768},   {"Ti/16 b1 fc2", 197, 768, 192},
        {"B/16 b8 qkv", 1576, 768, 2304},  {"B/16 b8 proj", 1576, 768, 768},  {"B/16 b8 fc1", 1576, 768, 3072},
        {"B/16 b8 fc2", 1576, 3072, 768},  {"S/16 b8 qkv", 1576, 384, 1152},  {"S/16 b8 fc2", 1576, 1536, 384},
        {"Ti/16 b8 qkv", 1576, 192, 576},  {"Ti/16 b8 fc2", 1576, 768, 192},  {"small qkv", 3200, 64, 192},
        {"small proj", 3200, 64, 64},      {"small fc1", 3200, 64, 128},      {"small fc2", 3200, 128, 64},
    };
    char load[128];
    loadavg(load, sizeof load);
    printf("threads %d, %d rounds of %.0f ms per side (best / median GFLOP/s); loadavg at start: %s\n", threads, rounds,
           block_ms, load);
    printf("CPU: %s; packed GEMM path %s, micro-kernel %s (VITCLASSIFY_ISA narrows it)\n", vk_cpu_model(),
           vk_instruction_set(), vk_gemm_kernel_name());
    printf("OpenBLAS: %s\n", openblas_get_config());
    printf("GFLOP/s by wall time (best and median of the rounds), ratio of medians, and GFLOP per CPU-second of all\n"
           "threads (spinning included; 1 core's FMA peak is the ceiling, whatever the load)\n");
    printf("%-14s %5s %5s %5s | %6s %6s | %6s %6s | %5s | %6s %6s | %s\n", "shape", "M", "K", "N", "blas", "med",
           "packed", "med", "ratio", "blas/c", "pack/c", "max err/sum|ab|");
    openblas_set_num_threads(threads);
    srand(1);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape sh = shapes[s];
        if (only && !strstr(sh.name, only)) continue;
        size_t M = sh.M, K = sh.K, N = sh.N;
        float *A = aligned_alloc(64, (M * K * 4 + 63) / 64 * 64), *B = aligned_alloc(64, (K * N * 4 + 63) / 64 * 64);
        float *C1 = aligned_alloc(64, (M * N * 4 + 63) / 64 * 64), *C2 = aligned_alloc(64, (M * N * 4 + 63) / 64 * 64);
        for (size_t i = 0; i < M * K; i++) A[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        for (size_t i = 0; i < K * N; i++) B[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        vk_packed *P = vk_pack(B, K, N, N);
        // Check once (plain product, no bias).
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1, A, (int)K, B, (int)N, 0, C1,
                    (int)N);
        vk_gemm_packed(M, A, K, P, C2, N, NULL, 0, 0, threads);
        double worst = 0;
        for (size_t i = 0; i < M; i += 7)
            for (size_t j = 0; j < N; j++) {
                double scale = 0;
                for (size_t k = 0; k < K; k++) scale += fabs((double)A[i * K + k] * B[k * N + j]);
                double e = fabs((double)C1[i * N + j] - C2[i * N + j]) / (scale > 0 ? scale : 1);
                if (e > worst) worst = e;
            }
        double flop = 2.0 * M * K * N;
        double *gb = malloc(rounds * sizeof(double)), *gp = malloc(rounds * sizeof(double));
        double cpu_b = 0, cpu_p = 0, flop_b = 0, flop_p = 0; // CPU seconds of all threads (spinning included)
        for (int r = 0; r < rounds; r++) {
            // Alternate which side goes first; OpenBLAS's idle threads keep spinning (~0.1 s) after its calls, so
            // pause after a BLAS block before timing the packed GEMM.
            for (int side = 0; side < 2; side++) {
                int blas = (side == 0) == (r % 2 == 0);
                double t0 = now(), c0 = cpu_now(), t;
                long calls = 0;
                do {
                    if (blas)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1, A, (int)K, B,
                                    (int)N, 0, C1, (int)N);
                    else
                        vk_gemm_packed(M, A, K, P, C2, N, NULL, 0, 0, threads);
                    calls++;
                    t = now() - t0;
                } while (t < block_ms * 1e-3);
                (blas ? gb : gp)[r] = flop * calls / t * 1e-9;
                *(blas ? &cpu_b : &cpu_p) += cpu_now() - c0;
                *(blas ? &flop_b : &flop_p) += flop * calls;
                if (blas) pause_ms(blas_cooldown_ms);
            }
        }
        double bb, bm, pb, pm;
        qsort(gb, rounds, sizeof(double), compare);
        qsort(gp, rounds, sizeof(double), compare);
        bb = gb[rounds - 1], bm = gb[rounds / 2], pb = gp[rounds - 1], pm = gp[rounds / 2];
        printf("%-14s %5zu %5zu %5zu | %6.1f %6.1f | %6.1f %6.1f | %5.2f | %6.1f %6.1f | %.1e\n", sh.name, M, K, N, bb,
               bm, pb, pm, pm / bm, flop_b / cpu_b * 1e-9, flop_p / cpu_p * 1e-9, worst);
        fflush(stdout);
        free(gb), free(gp), free(A), free(B), free(C1), free(C2);
        vk_packed_free(P);
    }
    loadavg(load, sizeof load);
    printf("loadavg at end: %s\n", load);
    return 0;
}
