// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// AMX micro-kernels (Sapphire Rapids and later): a 32 × 32 tile of C in four 16 × 16 accumulator tiles; per step
// of K (64 int8 or 32 bf16 values), two A tiles (16 rows each, straight from the prepared rows) and two B tiles
// (16 columns each, straight from the packed panel: its [k/kg][32][kg] layout is AMX's B-tile layout with a
// 128-byte row stride) feed four tdpbusd / tdpbf16ps. The sums are stored to a small buffer and finished with
// AVX-512 (INT8: the same epilogue code as the VNNI kernel, so the same bits).
//
// tdpbusd is exact (INT32), so the INT8 kernel gives the same bits as every other INT8 kernel and shares the
// AVX-512 VNNI kernel's panels. tdpbf16ps accumulates in fp32 but rounds its internal sums in an undocumented way
// (measured: not k-order sequential, not pairwise, not one rounding per step), so the BF16 kernel is within the
// fp32 accumulation bound of the canonical sum rather than equal to it; its sum order still depends on K only.
//
// Linux gives a process the AMX tile state only on request (arch_prctl ARCH_REQ_XCOMP_PERM): asked once, at the
// first check; if refused, these kernels are not used. Each task configures the tiles on its thread and releases
// them at the end (so that idle pool threads carry no tile state).

#include "gemm_kernels.h"
#include "qgemm_kernels.h"
#include "vk_isa.h"

#if defined(VK_X86) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

void vk_q8_finish_rows_avx512(size_t rows, const int32_t *acc, size_t acc_ld, float *c, size_t ldc, size_t w,
                              const vk_lp_epilogue *e);

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

static int amx_int8, amx_bf16;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_check(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq"))
        return;
    unsigned int a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    int tile = (d >> 24) & 1, int8 = (d >> 25) & 1, bf16 = (d >> 22) & 1;
    if (!tile) return;
    unsigned int xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & (3u << 17)) != (3u << 17)) return; // XTILECFG and XTILEDATA enabled by the OS
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return;
    amx_int8 = int8;
    amx_bf16 = bf16;
}

static int usable_int8(void) {
    pthread_once(&amx_once, amx_check);
    return amx_int8;
}
static int usable_bf16(void) {
    pthread_once(&amx_once, amx_check);
    return amx_bf16;
}

#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,amx-tile,amx-int8,amx-bf16"))), apply_to = function)

/// Tiles 0–3: C (rows 0–15 / 16–31 × columns 0–15 / 16–31); 4, 5: A (rows 0–15, 16–31); 6, 7: B (columns 0–15,
/// 16–31). All 16 rows × 64 bytes.
static void begin(void) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);
}

static void end(void) { _tile_release(); }

#define B_ROW 128 // bytes per row of a packed panel: 32 columns × 4 bytes

static void kernel_int8(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c, size_t ldc,
                        size_t w, const vk_lp_epilogue *e) {
    const unsigned char *ap = a, *bp = b;
    _Alignas(64) int32_t acc[32 * 32];
    _tile_zero(0);
    _tile_zero(1);
    if (rows > 16) {
        _tile_zero(2);
        _tile_zero(3);
        for (size_t k = 0; k < kp; k += 64) {
            const unsigned char *bk = bp + k / 4 * B_ROW;
            _tile_loadd(6, bk, B_ROW);
            _tile_loadd(7, bk + 64, B_ROW);
            _tile_loadd(4, ap + k, a_stride);
            _tile_loadd(5, ap + 16 * a_stride + k, a_stride);
            _tile_dpbusd(0, 4, 6);
            _tile_dpbusd(1, 4, 7);
            _tile_dpbusd(2, 5, 6);
            _tile_dpbusd(3, 5, 7);
        }
        _tile_stored(2, acc + 16 * 32, 128);
        _tile_stored(3, acc + 16 * 32 + 16, 128);
    } else {
        for (size_t k = 0; k < kp; k += 64) {
            const unsigned char *bk = bp + k / 4 * B_ROW;
            _tile_loadd(6, bk, B_ROW);
            _tile_loadd(7, bk + 64, B_ROW);
            _tile_loadd(4, ap + k, a_stride);
            _tile_dpbusd(0, 4, 6);
            _tile_dpbusd(1, 4, 7);
        }
    }
    _tile_stored(0, acc, 128);
    _tile_stored(1, acc + 16, 128);
    vk_q8_finish_rows_avx512(rows, acc, 32, c, ldc, w, e);
}

static void kernel_bf16(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c, size_t ldc,
                        size_t w, const vk_lp_epilogue *e) {
    const unsigned char *ap = a, *bp = b;
    _Alignas(64) float acc[32 * 32];
    _tile_zero(0);
    _tile_zero(1);
    if (rows > 16) {
        _tile_zero(2);
        _tile_zero(3);
        for (size_t k = 0; k < kp; k += 32) {
            const unsigned char *bk = bp + k / 2 * B_ROW;
            _tile_loadd(6, bk, B_ROW);
            _tile_loadd(7, bk + 64, B_ROW);
            _tile_loadd(4, ap + 2 * k, a_stride);
            _tile_loadd(5, ap + 16 * a_stride + 2 * k, a_stride);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(2, acc + 16 * 32, 128);
        _tile_stored(3, acc + 16 * 32 + 16, 128);
    } else {
        for (size_t k = 0; k < kp; k += 32) {
            const unsigned char *bk = bp + k / 2 * B_ROW;
            _tile_loadd(6, bk, B_ROW);
            _tile_loadd(7, bk + 64, B_ROW);
            _tile_loadd(4, ap + 2 * k, a_stride);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
        }
    }
    _tile_stored(0, acc, 128);
    _tile_stored(1, acc + 16, 128);
    __mmask16 m0 = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
    __mmask16 m1 = w >= 32 ? (__mmask16)0xFFFF : w > 16 ? (__mmask16)((1u << (w - 16)) - 1) : 0;
    for (size_t r = 0; r < rows; r++) {
        float *row = c + r * ldc;
        __m512 v0 = _mm512_load_ps(acc + r * 32), v1 = _mm512_load_ps(acc + r * 32 + 16);
        if (e->load_c) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
        }
        if (e->bias) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, e->bias));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, e->bias + 16));
        }
        _mm512_mask_storeu_ps(row, m0, v0);
        _mm512_mask_storeu_ps(row + 16, m1, v1);
    }
}

/// Rows [r0, r1) of a stored BF16 tile (32 × 32 fp32): + C, + bias, store.
static void finish_bf16_rows(const float *acc, size_t r0, size_t r1, float *c, size_t ldc, size_t w,
                             const vk_lp_epilogue *e) {
    __mmask16 m0 = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
    __mmask16 m1 = w >= 32 ? (__mmask16)0xFFFF : w > 16 ? (__mmask16)((1u << (w - 16)) - 1) : 0;
    for (size_t r = r0; r < r1; r++) {
        float *row = c + r * ldc;
        __m512 v0 = _mm512_load_ps(acc + r * 32), v1 = _mm512_load_ps(acc + r * 32 + 16);
        if (e->load_c) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
        }
        if (e->bias) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, e->bias));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, e->bias + 16));
        }
        _mm512_mask_storeu_ps(row, m0, v0);
        _mm512_mask_storeu_ps(row + 16, m1, v1);
    }
}

/// A stored tile waiting for its epilogue while the next tile's products run.
typedef struct {
    int bf16;
    const void *acc;
    float *c;
    size_t w;
    vk_lp_epilogue e;
} pending_tile;

/// Rows [r0, r1) of the pending tile: epilogue, then the activation.
static void finish(const pending_tile *t, size_t r0, size_t r1, size_t ldc, int activation) {
    if (r1 <= r0) return;
    if (t->bf16) {
        finish_bf16_rows(t->acc, r0, r1, t->c, ldc, t->w, &t->e);
    } else {
        vk_lp_epilogue sub = t->e;
        sub.zp += r0;
        sub.sa += r0;
        vk_q8_finish_rows_avx512(r1 - r0, (const int32_t *)t->acc + r0 * 32, 32, t->c + r0 * ldc, ldc, t->w, &sub);
    }
    if (activation) vk_activate_rows(t->c + r0 * ldc, r1 - r0, t->w, ldc, activation);
}

/// The strip of both precisions: for each panel, the K loop of tile products, with the previous tile's epilogue
/// spread over its steps (a few rows per step: the out-of-order core runs them while the tile unit works), then the
/// tile stored for the next round. `k_step`: K values per tile step (64 int8, 32 bf16).
static inline __attribute__((always_inline)) void strip(int bf16, size_t rows, size_t kp, const void *a,
                                                        size_t a_stride, const void *b, size_t panel_bytes, size_t np,
                                                        float *c, size_t ldc, size_t n_left, const vk_lp_epilogue *e,
                                                        int activation) {
    const unsigned char *ap = a;
    _Alignas(64) int32_t acc[2][32 * 32];
    size_t k_step = bf16 ? 32 : 64, a_step = 64; // bytes of an A tile row per step
    size_t steps = kp / k_step;
    int two = rows > 16;
    pending_tile t = {.bf16 = bf16};
    int have = 0;
    for (size_t j = 0; j < np; j++) {
        const unsigned char *bp = (const unsigned char *)b + j * panel_bytes;
        size_t done = 0, per = have && steps ? (rows + steps - 1) / steps : 0;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (size_t s = 0; s < steps; s++) {
            const unsigned char *bk = bp + s * 16 * B_ROW, *ak = ap + s * a_step;
            _tile_loadd(6, bk, B_ROW);
            _tile_loadd(7, bk + 64, B_ROW);
            _tile_loadd(4, ak, a_stride);
            if (bf16) {
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
            } else {
                _tile_dpbusd(0, 4, 6);
                _tile_dpbusd(1, 4, 7);
            }
            if (two) {
                _tile_loadd(5, ak + 16 * a_stride, a_stride);
                if (bf16) {
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                } else {
                    _tile_dpbusd(2, 5, 6);
                    _tile_dpbusd(3, 5, 7);
                }
            }
            if (have) {
                size_t r1 = done + per < rows ? done + per : rows;
                finish(&t, done, r1, ldc, activation);
                done = r1;
            }
        }
        if (have) finish(&t, done, rows, ldc, activation);
        int32_t *out = acc[j & 1];
        _tile_stored(0, out, 128);
        _tile_stored(1, out + 16, 128);
        if (two) {
            _tile_stored(2, out + 16 * 32, 128);
            _tile_stored(3, out + 16 * 32 + 16, 128);
        }
        t.acc = out;
        t.c = c + 32 * j;
        t.w = n_left - 32 * j < 32 ? n_left - 32 * j : 32;
        t.e = *e;
        if (e->colsum) {
            t.e.colsum = e->colsum + 32 * j;
            t.e.sw = e->sw + 32 * j;
        }
        if (e->bias) t.e.bias = e->bias + 32 * j;
        have = 1;
    }
    if (have) finish(&t, 0, rows, ldc, activation);
}

static void strip_int8(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, size_t panel_bytes,
                       size_t np, float *c, size_t ldc, size_t n_left, const vk_lp_epilogue *e, int activation) {
    strip(0, rows, kp, a, a_stride, b, panel_bytes, np, c, ldc, n_left, e, activation);
}

static void strip_bf16(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, size_t panel_bytes,
                       size_t np, float *c, size_t ldc, size_t n_left, const vk_lp_epilogue *e, int activation) {
    strip(1, rows, kp, a, a_stride, b, panel_bytes, np, c, ldc, n_left, e, activation);
}

#pragma clang attribute pop

// INT8: the AVX-512 VNNI kernel's panels (32 columns, groups of 4 k, K padded to 64).
const vk_lp_kernel vk_q8_kernel_amx = {.name = "amx-int8 32x32", .precision = VK_LP_Q8, .mr = 32, .nr = 32, .kg = 4,
                                       .kpad = 64, .a_format = VK_A_U8, .mc_tiles = 8, .usable = usable_int8,
                                       .begin = begin, .end = end, .kernel = kernel_int8, .strip = strip_int8};

const vk_lp_kernel vk_bf16_kernel_amx = {.name = "amx-bf16 32x32", .precision = VK_LP_BF16, .mr = 32, .nr = 32,
                                         .kg = 2, .kpad = 32, .a_format = VK_A_BF16, .mc_tiles = 8,
                                         .usable = usable_bf16, .begin = begin, .end = end, .kernel = kernel_bf16,
                                         .strip = strip_bf16};

#elif defined(VK_X86)
// Not Linux: no AMX (the tile state needs the OS's permission, requested here through Linux's arch_prctl).
static int never(void) { return 0; }
const vk_lp_kernel vk_q8_kernel_amx = {.name = "amx-int8 32x32", .precision = VK_LP_Q8, .mr = 32, .nr = 32, .kg = 4,
                                       .kpad = 64, .a_format = VK_A_U8, .mc_tiles = 8, .usable = never};
const vk_lp_kernel vk_bf16_kernel_amx = {.name = "amx-bf16 32x32", .precision = VK_LP_BF16, .mr = 32, .nr = 32,
                                         .kg = 2, .kpad = 32, .a_format = VK_A_BF16, .mc_tiles = 8, .usable = never};
#endif
