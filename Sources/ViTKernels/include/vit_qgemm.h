#ifndef VITCLASSIFY_VIT_QGEMM_H
#define VITCLASSIFY_VIT_QGEMM_H

#include <stddef.h>
#include <stdint.h>

// Reduced-precision GEMMs over weights packed once at load time: INT8 (vk_gemm_q8) and BF16 (vk_gemm_bf16). Same
// shape as vk_gemm_packed (vit_gemm.h): C[M×N] = A[M×K]·B (+ C) (+ bias), then the activation (VK_ACT_* of
// vit_gemm.h), A and C fp32, rows lda / ldc floats apart, run on the shared pool with up to `threads` threads.
//
// INT8 scheme (all kernel paths compute exactly these numbers):
//   weights  per output channel n, symmetric: s_w[n] = amax/127 and q = clamp(rint(w · (127/amax)), −127, 127),
//            amax = max_k |B[k][n]| (fp32 arithmetic, rint = round half to even); a column with amax < 1e-30 is all
//            zeros with s_w = 0.
//   A        per row, asymmetric uint8 (as ONNX Runtime's DynamicQuantizeLinear): lo = min(0, min_k a),
//            hi = max(0, max_k a), s_a = (hi − lo)/255, inv = 255/(hi − lo), zp = rint(−lo · inv) clamped to
//            [0, 255], q = clamp(rint(a · inv) + zp, 0, 255); a row with hi − lo < 1e-30 quantises to q = zp = 0,
//            s_a = 0. Rows are quantised independently (and once per call).
//   product  exact INT32: S = Σ_k q_a·q_w − zp·Σ_k q_w (|S| ≤ 255·127·K: K ≤ 65536 keeps it exact);
//            out = fp32(S) · (s_a · s_w[n]), rounded, then + C (accumulate), + bias[n], each a separate fp32
//            rounding (no fused multiply-add), then the activation.
// So INT8 results are the same bits on every path (AMX, AVX-512 VNNI, AVX-VNNI, AVX2 madd16, portable) before the
// activation; the activation is vk_gelu of the path in use, as for fp32.
//
// INT8 reduced range (the "avx2-maddubs7 6x16" kernel, the default on AVX2 CPUs without VNNI): the same scheme with
// 7-bit weights, s_w[n] = amax/63 and q = clamp(rint(w · (63/amax)), −63, 63) (ONNX Runtime's `reduce_range` for
// CPUs without VNNI), and 7-bit rows, 127 in place of 255 throughout A (s_a = (hi − lo)/127, inv = 127/(hi − lo),
// zp and q clamped to [0, 127]). vpmaddubsw adds two u8 × s8 products in int16 and saturates: 8-bit operands reach
// 255·127·2 = 64770 > 32767 (ONNX Runtime's MLAS kernel accepts that saturation); here a pair is at most
// 127·63·2 = 16002, so even two pairs added in int16 (32004) are exact, and every kernel of the same range gives the
// same bits. That int16 addition saves a quarter of the multiply-port instructions (3 per 64 multiply-adds, not 4).
// Twice the step on both operands: about 2.5× the INT8 error of the 8-bit kernels (BENCHMARKS.md).
// vk_q8_kernel_weight_max tells which range a kernel uses.
//
// BF16 scheme: B rounded to bfloat16 (round to nearest even) when packed, A rounded the same way as it is packed for
// the kernel; subnormal inputs are flushed to (signed) zero, NaN stays NaN. Products of two bf16 values are exact in
// fp32, so the canonical result is acc = 0; acc = fl(acc + a_k·b_k) for k = 0, 1, …, K−1 in order (one fp32 rounding
// per k), then + C, + bias, activation. The AVX-512 BF16 (vdpbf16ps), AVX2 and portable paths all compute exactly
// that (unless an intermediate sum is subnormal: vdpbf16ps flushes those to zero). The AMX path (tdpbf16ps) rounds
// its internal sums differently (not documented); it stays within the fp32 accumulation bound
// |err| ≤ K·2⁻²³·Σ_k|a_k·b_k| of the exact product of the rounded inputs, but is not the same bits as the others.
//
// Every element is computed from its own row of A and column of B in an order fixed by K and the packed matrix's
// kernel, so results never depend on M, on the row's position among the M, or on the thread count.

/// Opaque packed weight matrices, immutable once packed (usable by concurrent calls).
typedef struct vk_packed_q8 vk_packed_q8;
typedef struct vk_packed_bf16 vk_packed_bf16;

// ---- INT8 ----------------------------------------------------------------------------------------------------------

/// The INT8 micro-kernel vk_pack_q8_transposed picks: the widest this CPU runs at the instruction-set level in use
/// (VITCLASSIFY_ISA narrows it; VITCLASSIFY_NO_AMX=1 skips AMX), e.g. "amx-int8 32x32", "avx512-vnni 14x32",
/// "avx-vnni 6x16", "avx2-maddubs7 6x16", "avx2-madd16 6x16", "portable-q8 4x8". AMX and AVX-512 need the avx512
/// level, AVX-VNNI and AVX2 the avx2 level.
const char *vk_gemm_q8_kernel_name(void);

/// The weight range of an INT8 kernel: 127 (8-bit weights and rows) or 63 (reduced range: 7-bit weights and rows, see
/// above); 0 for an unknown name.
int vk_q8_kernel_weight_max(const char *kernel);

/// Quantises and packs Bᵀ (N rows × K columns, PyTorch's [out, in] Linear layout, rows ldbt floats apart, ldbt ≥ K)
/// for vk_gemm_q8: per-column scales and column sums are kept with the INT8 panels. Bt is not referenced afterwards.
/// Returns NULL if allocation fails or K > 65536.
vk_packed_q8 *vk_pack_q8_transposed(const float *Bt, size_t K, size_t N, size_t ldbt);

/// C = dequantised (quantised A · quantised B) (+ C) (+ bias), activation: see the scheme above and vk_gemm_packed
/// for the arguments. Uses a per-calling-thread scratch buffer for the quantised A (≤ ~4 MB, kept until the thread
/// exits; if even one row tile's worth cannot be allocated, C is left unchanged).
void vk_gemm_q8(size_t M, const float *A, size_t lda, const vk_packed_q8 *B, float *C, size_t ldc, const float *bias,
                int accumulate, int activation, int threads);

void vk_packed_q8_free(vk_packed_q8 *p);
/// Memory held by the packed matrix in bytes (≈ K·N + 8·N, rounded up to whole panels, plus a header).
size_t vk_packed_q8_bytes(const vk_packed_q8 *p);
size_t vk_packed_q8_rows(const vk_packed_q8 *p); ///< K
size_t vk_packed_q8_cols(const vk_packed_q8 *p); ///< N
/// The weight scale s_w[n] of column n (n < N).
float vk_packed_q8_scale(const vk_packed_q8 *p, size_t n);
/// The name of the micro-kernel the matrix was packed for.
const char *vk_packed_q8_kernel(const vk_packed_q8 *p);

/// For tests and benchmarks: the names of the INT8 kernels this CPU (and OS) can run, i = 0, 1, … (NULL past the
/// end), widest first; and packing for one of them by name (NULL if unknown or unusable here). Every kernel gives
/// the same bits.
const char *vk_q8_kernel_available(size_t i);
vk_packed_q8 *vk_pack_q8_transposed_with(const float *Bt, size_t K, size_t N, size_t ldbt, const char *kernel);

// ---- BF16 ----------------------------------------------------------------------------------------------------------

/// The BF16 micro-kernel in use, chosen as for INT8: "amx-bf16 32x32", "avx512-bf16 14x32", "avx2-bf16 6x16",
/// "portable-bf16 4x8". With VITCLASSIFY_NO_AMX=1 the BF16 results are the same bits on every x86 path.
const char *vk_gemm_bf16_kernel_name(void);

/// Rounds Bᵀ (N × K fp32, rows ldbt floats apart) to BF16 and packs it for vk_gemm_bf16. NULL if allocation fails.
vk_packed_bf16 *vk_pack_bf16_transposed(const float *Bt, size_t K, size_t N, size_t ldbt);

/// The same from raw BF16 bits (a BF16 checkpoint's [out, in] tensor, rows ldbt elements apart): no fp32 copy.
vk_packed_bf16 *vk_pack_bf16_transposed_bits(const uint16_t *Bt, size_t K, size_t N, size_t ldbt);

/// C = A_bf16 · B_bf16 (fp32 accumulation) (+ C) (+ bias), activation. A is rounded to BF16 (RNE) into a
/// per-calling-thread scratch buffer as it is packed.
void vk_gemm_bf16(size_t M, const float *A, size_t lda, const vk_packed_bf16 *B, float *C, size_t ldc,
                  const float *bias, int accumulate, int activation, int threads);

void vk_packed_bf16_free(vk_packed_bf16 *p);
size_t vk_packed_bf16_bytes(const vk_packed_bf16 *p); ///< ≈ 2·K·N rounded up to whole panels, plus a header
size_t vk_packed_bf16_rows(const vk_packed_bf16 *p);
size_t vk_packed_bf16_cols(const vk_packed_bf16 *p);
const char *vk_packed_bf16_kernel(const vk_packed_bf16 *p);

const char *vk_bf16_kernel_available(size_t i);
vk_packed_bf16 *vk_pack_bf16_transposed_with(const float *Bt, size_t K, size_t N, size_t ldbt, const char *kernel);
vk_packed_bf16 *vk_pack_bf16_transposed_bits_with(const uint16_t *Bt, size_t K, size_t N, size_t ldbt,
                                                  const char *kernel);

/// fp32 → BF16 bits as every BF16 path rounds: nearest even, subnormals to signed zero, NaN kept (quiet).
uint16_t vk_bf16_from_float(float x);

#endif
