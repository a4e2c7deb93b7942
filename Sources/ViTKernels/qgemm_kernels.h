// The reduced-precision GEMMs' micro-kernels (INT8: qgemm_amx.c, qgemm_vnni.c, qgemm_avx2.c, qgemm_portable.c;
// BF16: qgemm_amx.c, bf16_avx512.c, bf16_widened.c), each described by one vk_lp_kernel; qgemm.c packs, prepares A,
// blocks and threads the same way for all of them. Internal to ViTKernels; the public API is vit_qgemm.h.

#ifndef VITCLASSIFY_QGEMM_KERNELS_H
#define VITCLASSIFY_QGEMM_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { VK_LP_Q8 = 1, VK_LP_BF16 = 2 };

/// How the A block is prepared for a kernel (qgemm.c, once per call, row-major, rows `a_stride` bytes apart, K
/// padded with zeros to the kernel's kpad).
enum {
    VK_A_U8 = 1,          ///< INT8: quantised uint8
    VK_A_S16 = 2,         ///< INT8: quantised, widened to int16
    VK_A_BF16 = 3,        ///< BF16 bits, k order
    VK_A_BF16_SWAPPED = 4, ///< BF16 bits, each pair (2j, 2j+1) stored swapped (vdpbf16ps takes the odd half first)
    VK_A_F32 = 5,         ///< BF16-rounded values as fp32
    VK_A_U7 = 6,          ///< INT8 reduced range: quantised to [0, 127], as uint8
};

/// What a micro-kernel needs besides A and B to finish a tile.
typedef struct {
    int load_c;           ///< add the current C
    const float *bias;    ///< NULL or the tile's w bias values
    // INT8 only: per row of the tile, and per column of the panel (nr entries, zero past w).
    const int32_t *zp;
    const float *sa;
    const int32_t *colsum;
    const float *sw;
} vk_lp_epilogue;

/// C[0..rows)[0..w) = epilogue(A[0..rows)[0..kp) · Bpanel[0..kp)[0..nr)). A: prepared rows `a_stride` bytes apart
/// (the buffer holds whole mr-row tiles, so a kernel may read all mr rows); B: one packed panel, kp (K padded to
/// kpad) rows of nr columns in groups of kg consecutive k per column: element (k, c) at
/// [(k / kg)·nr·kg + c·kg + k % kg]. Every element depends only on its own row and column.
typedef void (*vk_lp_micro)(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, float *c,
                            size_t ldc, size_t w, const vk_lp_epilogue *e);

/// Optional, instead of vk_lp_micro: one row tile against np consecutive panels (panel_bytes apart), finishing every
/// tile (epilogue, then the activation) itself, so that a kernel can overlap one tile's epilogue with the next
/// tile's products. c and e are those of the first panel (e's column arrays advance nr per panel); n_left = the
/// columns from c to N. Each element is computed exactly as by the tile kernel.
typedef void (*vk_lp_strip)(size_t rows, size_t kp, const void *a, size_t a_stride, const void *b, size_t panel_bytes,
                            size_t np, float *c, size_t ldc, size_t n_left, const vk_lp_epilogue *e, int activation);

typedef struct {
    const char *name;
    int precision;    ///< VK_LP_Q8 or VK_LP_BF16
    size_t mr, nr;    ///< tile rows; columns of a packed panel
    size_t kg, kpad;  ///< B layout (see vk_lp_micro)
    int b_swapped;    ///< BF16: B pairs stored swapped, as VK_A_BF16_SWAPPED
    int a_format;     ///< VK_A_*
    size_t mc_tiles;  ///< row tiles per task at most
    int q8_max;       ///< INT8: weights quantised to [−q8_max, q8_max]; 0 means 127 (63: the reduced range of
                      ///< the vpmaddubsw kernel, with VK_A_U7 rows, whose 16-bit sums then cannot saturate)
    int (*usable)(void);
    void (*begin)(void), (*end)(void); ///< around each task on its thread (AMX tile configuration), or NULL
    vk_lp_micro kernel;
    vk_lp_strip strip; ///< or NULL
} vk_lp_kernel;

#ifdef __x86_64__
extern const vk_lp_kernel vk_q8_kernel_amx, vk_q8_kernel_vnni512, vk_q8_kernel_avxvnni, vk_q8_kernel_avx2,
    vk_q8_kernel_avx2_maddubs;
extern const vk_lp_kernel vk_bf16_kernel_amx, vk_bf16_kernel_avx512, vk_bf16_kernel_avx2;
#endif
extern const vk_lp_kernel vk_q8_kernel_portable, vk_bf16_kernel_portable;

/// Row preparation, per instruction-set level (qgemm_prep.c); every level writes the same bytes.
/// INT8: quantise x[0..K) (zeros up to kp) as VK_A_U8, VK_A_U7 or VK_A_S16 into dst; the row's zero point and scale.
/// BF16: round x[0..K) (zeros up to kp) into dst as VK_A_BF16, VK_A_BF16_SWAPPED or VK_A_F32.
void vk_q8_prepare_row(const float *x, size_t K, size_t kp, int format, void *dst, int32_t *zp, float *scale);
void vk_bf16_prepare_row(const float *x, size_t K, size_t kp, int format, void *dst);

// ---- Shared scalar definitions of the schemes (vit_qgemm.h) --------------------------------------------------------

/// Below this range a row (or weight column) is all zeros.
#define VK_Q8_TINY 1e-30f

/// The largest quantised row value of an INT8 A format: 127 for VK_A_U7, else 255.
static inline int vk_q8_levels(int format) { return format == VK_A_U7 ? 127 : 255; }

/// Row parameters from lo = min(0, min a) and hi = max(0, max a), for values quantised to [0, levels].
static inline void vk_q8_row_params(float lo, float hi, int levels, float *inv, int32_t *zp, float *scale) {
    float range = hi - lo;
    if (!(range >= VK_Q8_TINY)) { // also NaN
        *inv = 0, *zp = 0, *scale = 0;
        return;
    }
    *scale = range / (float)levels;
    *inv = (float)levels / range;
    float z = __builtin_roundevenf(-lo * *inv);
    *zp = z < 0 ? 0 : z > levels ? levels : (int32_t)z;
}

/// fp32 → bf16 bits: nearest even; subnormal → signed zero; NaN → quiet NaN.
static inline uint16_t vk_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t e = u & 0x7F800000u;
    if (e == 0) return (uint16_t)((u >> 16) & 0x8000u);
    if (e == 0x7F800000u && (u & 0x7FFFFFu)) return (uint16_t)((u | 0x00400000u) >> 16);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/// A bf16 value from a checkpoint, as the kernels take it: subnormal → signed zero.
static inline uint16_t vk_bf16_clean(uint16_t h) { return (h & 0x7F80u) == 0 ? (uint16_t)(h & 0x8000u) : h; }

static inline float vk_bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/// Keeps a product from being fused with the addition that follows (clang fuses a·b + c into an FMA under
/// -ffp-contract=fast whatever `#pragma clang fp contract` says): the INT8 scheme rounds the product first.
#if defined(__x86_64__)
#define VK_ROUNDED(v) __asm__("" : "+v"(v))
#elif defined(__aarch64__)
#define VK_ROUNDED(v) __asm__("" : "+w"(v))
#else
#define VK_ROUNDED(v) __asm__("" : "+m"(v))
#endif

#endif
