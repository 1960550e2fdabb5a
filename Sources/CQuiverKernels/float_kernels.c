#include "kernels_internal.h"

#include <math.h>
#include <string.h>

#if QUIVER_X86
#include <immintrin.h>
#endif

// ---------------------------------------------------------------------------------------------
// Half precision, scalar reference (exact: round to nearest even, subnormals, inf and NaN)
// ---------------------------------------------------------------------------------------------

static inline uint32_t float_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

static inline float bits_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    if (exponent == 0x1f) {
        // NaNs come out quiet with their payload kept, as F16C converts them.
        uint32_t quiet = mantissa ? 0x400000 : 0;
        return bits_float(sign | 0x7f800000 | quiet | (mantissa << 13));
    }
    if (exponent == 0) {
        // Zero or subnormal: mantissa * 2^-24 is exact in float.
        return bits_float(sign | float_bits((float)mantissa * 0x1p-24f));
    }
    return bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

/// Rounds `value` (an integer scaled by 2^-shift) to nearest, ties to even.
static inline uint32_t round_shift_even(uint32_t value, uint32_t shift) {
    uint32_t kept = value >> shift, rest = value & ((1u << shift) - 1), half = 1u << (shift - 1);
    return kept + (rest > half || (rest == half && (kept & 1)));
}

static uint16_t float_to_half(float f) {
    uint32_t bits = float_bits(f);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    uint32_t magnitude = bits & 0x7fffffff;
    if (magnitude >= 0x7f800000) {
        if (magnitude == 0x7f800000) return sign | 0x7c00;
        return sign | 0x7e00 | ((magnitude >> 13) & 0x3ff);  // quiet, top payload bits kept
    }
    // 65520 is halfway between the largest half (65504, odd mantissa) and 2^16: ties go up to inf.
    if (magnitude >= 0x477ff000) return sign | 0x7c00;
    // Below 2^-25 everything rounds to zero (2^-25 itself is a tie that goes to even zero).
    if (magnitude < 0x33000000) return sign;
    if (magnitude < 0x38800000) {
        // Half subnormal: the value in units of 2^-24, from the float's full significand.
        uint32_t exponent = magnitude >> 23;
        uint32_t significand = (magnitude & 0x7fffff) | 0x800000;
        return sign | (uint16_t)round_shift_even(significand, 126 - exponent);
    }
    // Normal: rebias the exponent in place; a carry out of the mantissa correctly bumps it.
    return sign | (uint16_t)round_shift_even(magnitude - (112u << 23), 13);
}

static void scalar_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = half_to_float(src[i]);
}

static void scalar_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = float_to_half(src[i]);
}

// ---------------------------------------------------------------------------------------------
// Scalar reference
// ---------------------------------------------------------------------------------------------

static float scalar_dot(const float *a, const float *b, size_t d) {
    float sum = 0.0f;
    for (size_t i = 0; i < d; i++) sum += a[i] * b[i];
    return sum;
}

static float scalar_l2_squared(const float *a, const float *b, size_t d) {
    float sum = 0.0f;
    for (size_t i = 0; i < d; i++) {
        float diff = a[i] - b[i];
        sum += diff * diff;
    }
    return sum;
}

static float scalar_dot_f16(const float *q, const uint16_t *x, size_t d) {
    float sum = 0.0f;
    for (size_t i = 0; i < d; i++) sum += q[i] * half_to_float(x[i]);
    return sum;
}

static float scalar_l2_squared_f16(const float *q, const uint16_t *x, size_t d) {
    float sum = 0.0f;
    for (size_t i = 0; i < d; i++) {
        float diff = q[i] - half_to_float(x[i]);
        sum += diff * diff;
    }
    return sum;
}

static void scalar_inner_products(const float *a, size_t na, const float *b, size_t nb, size_t d,
                                  float *out, size_t ldo) {
    for (size_t i = 0; i < na; i++) {
        for (size_t j = 0; j < nb; j++) out[i * ldo + j] = scalar_dot(a + i * d, b + j * d, d);
    }
}

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA + F16C
// ---------------------------------------------------------------------------------------------

#if QUIVER_X86

#define QUIVER_INLINE_AVX2 QUIVER_TARGET_AVX2 static inline __attribute__((always_inline))

/// Lanes below `d % 8` set: masked loads read the tail of a row without touching memory past it.
QUIVER_INLINE_AVX2 __m256i avx2_tail_mask(size_t d) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(d % 8)), lanes);
}

QUIVER_INLINE_AVX2 float avx2_hsum(__m256 v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
}

/// The four horizontal sums of v0..v3, in order.
QUIVER_INLINE_AVX2 __m128 avx2_hsum4(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
    __m256 sums = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
    return _mm_add_ps(_mm256_castps256_ps128(sums), _mm256_extractf128_ps(sums, 1));
}

QUIVER_TARGET_AVX2 static float avx2_dot(const float *a, const float *b, size_t d) {
    // Four independent accumulators hide the FMA latency.
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= d; i += 8) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    }
    if (i < d) {
        __m256i tail = avx2_tail_mask(d);
        acc1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, tail), _mm256_maskload_ps(b + i, tail), acc1);
    }
    return avx2_hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

QUIVER_TARGET_AVX2 static float avx2_l2_squared(const float *a, const float *b, size_t d) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        acc0 = _mm256_fmadd_ps(d0, d0, acc0);
        acc1 = _mm256_fmadd_ps(d1, d1, acc1);
        acc2 = _mm256_fmadd_ps(d2, d2, acc2);
        acc3 = _mm256_fmadd_ps(d3, d3, acc3);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 diff = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        acc0 = _mm256_fmadd_ps(diff, diff, acc0);
    }
    if (i < d) {
        __m256i tail = avx2_tail_mask(d);
        __m256 diff = _mm256_sub_ps(_mm256_maskload_ps(a + i, tail), _mm256_maskload_ps(b + i, tail));
        acc1 = _mm256_fmadd_ps(diff, diff, acc1);
    }
    return avx2_hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

/// Eight halves from x, zero past `available` (which may be below 8 only at a row's tail).
QUIVER_INLINE_AVX2 __m256 avx2_load_halves(const uint16_t *x, size_t available) {
    if (available >= 8) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x));
    uint16_t padded[8] = {0};
    memcpy(padded, x, available * sizeof(uint16_t));
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)padded));
}

QUIVER_TARGET_AVX2 static float avx2_dot_f16(const float *q, const uint16_t *x, size_t d) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), avx2_load_halves(x + i, 8), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), avx2_load_halves(x + i + 8, 8), acc1);
    }
    for (; i < d; i += 8) {
        __m256 qv = d - i >= 8 ? _mm256_loadu_ps(q + i) : _mm256_maskload_ps(q + i, avx2_tail_mask(d));
        acc0 = _mm256_fmadd_ps(qv, avx2_load_halves(x + i, d - i), acc0);
    }
    return avx2_hsum(_mm256_add_ps(acc0, acc1));
}

QUIVER_TARGET_AVX2 static float avx2_l2_squared_f16(const float *q, const uint16_t *x, size_t d) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), avx2_load_halves(x + i, 8));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), avx2_load_halves(x + i + 8, 8));
        acc0 = _mm256_fmadd_ps(d0, d0, acc0);
        acc1 = _mm256_fmadd_ps(d1, d1, acc1);
    }
    for (; i < d; i += 8) {
        __m256 qv = d - i >= 8 ? _mm256_loadu_ps(q + i) : _mm256_maskload_ps(q + i, avx2_tail_mask(d));
        __m256 diff = _mm256_sub_ps(qv, avx2_load_halves(x + i, d - i));
        acc0 = _mm256_fmadd_ps(diff, diff, acc0);
    }
    return avx2_hsum(_mm256_add_ps(acc0, acc1));
}

QUIVER_TARGET_AVX2 static void avx2_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, avx2_load_halves(src + i, 8));
    if (i < n) _mm256_maskstore_ps(dst + i, avx2_tail_mask(n), avx2_load_halves(src + i, n - i));
}

QUIVER_TARGET_AVX2 static void avx2_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i halves = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(dst + i), halves);
    }
    if (i < n) {
        uint16_t halves[8];
        __m256 floats = _mm256_maskload_ps(src + i, avx2_tail_mask(n));
        _mm_storeu_si128((__m128i *)halves, _mm256_cvtps_ph(floats, _MM_FROUND_TO_NEAREST_INT));
        memcpy(dst + i, halves, (n - i) * sizeof(uint16_t));
    }
}

// GEMM in dot-product form (both operands have d contiguous): a tile of TILE_A rows of A against
// TILE_B rows of B keeps TILE_A * TILE_B = 12 accumulators plus 3 A vectors in the 16 ymm
// registers, and feeds B straight from memory into the FMAs: 7 loads per 12 FMAs.
enum { TILE_A = 3, TILE_B = 4 };
// B is walked in panels small enough to stay in L2 while every A tile streams past them.
enum { B_PANEL_BYTES = 256 * 1024 };

QUIVER_INLINE_AVX2 void avx2_tile(const float *a, const float *b, size_t d, __m256i tail,
                                  float *out, size_t ldo, const int rows, const int cols) {
    __m256 acc[TILE_A][TILE_B];
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < TILE_B; c++) acc[r][c] = _mm256_setzero_ps();
    }
    size_t k = 0;
    for (; k + 8 <= d; k += 8) {
        __m256 av[TILE_A];
        for (int r = 0; r < rows; r++) av[r] = _mm256_loadu_ps(a + r * d + k);
        for (int c = 0; c < cols; c++) {
            __m256 bv = _mm256_loadu_ps(b + c * d + k);
            for (int r = 0; r < rows; r++) acc[r][c] = _mm256_fmadd_ps(av[r], bv, acc[r][c]);
        }
    }
    if (k < d) {
        __m256 av[TILE_A];
        for (int r = 0; r < rows; r++) av[r] = _mm256_maskload_ps(a + r * d + k, tail);
        for (int c = 0; c < cols; c++) {
            __m256 bv = _mm256_maskload_ps(b + c * d + k, tail);
            for (int r = 0; r < rows; r++) acc[r][c] = _mm256_fmadd_ps(av[r], bv, acc[r][c]);
        }
    }
    for (int r = 0; r < rows; r++) {
        __m128 sums = avx2_hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
        if (cols == TILE_B) {
            _mm_storeu_ps(out + r * ldo, sums);
        } else {
            float partial[TILE_B];
            _mm_storeu_ps(partial, sums);
            for (int c = 0; c < cols; c++) out[r * ldo + c] = partial[c];
        }
    }
}

typedef void (*avx2_tile_fn)(const float *, const float *, size_t, __m256i, float *, size_t);

// One specialisation per tile shape, so each keeps its accumulators in registers.
#define QUIVER_DEFINE_TILE(R, C)                                                                   \
    QUIVER_TARGET_AVX2 static void avx2_tile_##R##x##C(const float *a, const float *b, size_t d,   \
                                                       __m256i tail, float *out, size_t ldo) {     \
        avx2_tile(a, b, d, tail, out, ldo, R, C);                                                  \
    }
QUIVER_DEFINE_TILE(1, 1) QUIVER_DEFINE_TILE(1, 2) QUIVER_DEFINE_TILE(1, 3) QUIVER_DEFINE_TILE(1, 4)
QUIVER_DEFINE_TILE(2, 1) QUIVER_DEFINE_TILE(2, 2) QUIVER_DEFINE_TILE(2, 3) QUIVER_DEFINE_TILE(2, 4)
QUIVER_DEFINE_TILE(3, 1) QUIVER_DEFINE_TILE(3, 2) QUIVER_DEFINE_TILE(3, 3) QUIVER_DEFINE_TILE(3, 4)
#undef QUIVER_DEFINE_TILE

static const avx2_tile_fn avx2_tiles[TILE_A][TILE_B] = {
    {avx2_tile_1x1, avx2_tile_1x2, avx2_tile_1x3, avx2_tile_1x4},
    {avx2_tile_2x1, avx2_tile_2x2, avx2_tile_2x3, avx2_tile_2x4},
    {avx2_tile_3x1, avx2_tile_3x2, avx2_tile_3x3, avx2_tile_3x4},
};

QUIVER_TARGET_AVX2 static void avx2_inner_products(const float *a, size_t na, const float *b,
                                                   size_t nb, size_t d, float *out, size_t ldo) {
    __m256i tail = avx2_tail_mask(d);
    size_t row_bytes = d * sizeof(float);
    size_t panel = row_bytes ? B_PANEL_BYTES / row_bytes : nb;
    panel = panel < TILE_B ? TILE_B : panel - panel % TILE_B;
    for (size_t j0 = 0; j0 < nb; j0 += panel) {
        size_t j_end = j0 + panel < nb ? j0 + panel : nb;
        for (size_t i = 0; i < na; i += TILE_A) {
            size_t rows = na - i < TILE_A ? na - i : TILE_A;
            for (size_t j = j0; j < j_end; j += TILE_B) {
                size_t cols = j_end - j < TILE_B ? j_end - j : TILE_B;
                avx2_tiles[rows - 1][cols - 1](a + i * d, b + j * d, d, tail, out + i * ldo + j, ldo);
            }
        }
    }
}

#endif

// ---------------------------------------------------------------------------------------------
// AVX-512: the GEMM (k-means assignment, coarse probing, exact search) and the re-ranking dot
// products, where twice the lanes per FMA pay.
// ---------------------------------------------------------------------------------------------

#if QUIVER_X86

#define QUIVER_INLINE_AVX512 QUIVER_TARGET_AVX512 static inline __attribute__((always_inline))

enum { TILE512_A = 4, TILE512_B = 4 };

/// The 16 horizontal sums of v[0..15], in order, in one register: a transposing tree of adds
/// (15 adds, no scalar extraction). Lane 4r + c of the result is the sum of v[4r + c].
QUIVER_INLINE_AVX512 __m512 avx512_hsum16(const __m512 v[16]) {
    __m512 pairs[8];
    for (int i = 0; i < 8; i++) {
        // Per 128-bit lane: (a0+a2, b0+b2, a1+a3, b1+b3).
        pairs[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    }
    __m512 quads[4];
    for (int i = 0; i < 4; i++) {
        // Per 128-bit lane: the lane's partial sums of four vectors, in order.
        __m512d x = _mm512_castps_pd(pairs[2 * i]), y = _mm512_castps_pd(pairs[2 * i + 1]);
        quads[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    // Add the four 128-bit lanes of each quad, gathering quad g's totals into lane g.
    __m512 u01 = _mm512_add_ps(_mm512_shuffle_f32x4(quads[0], quads[1], 0x44), _mm512_shuffle_f32x4(quads[0], quads[1], 0xEE));
    __m512 u23 = _mm512_add_ps(_mm512_shuffle_f32x4(quads[2], quads[3], 0x44), _mm512_shuffle_f32x4(quads[2], quads[3], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_f32x4(u01, u23, 0x88), _mm512_shuffle_f32x4(u01, u23, 0xDD));
}

/// A tile of up to 4 rows of A against up to 4 rows of B. Every output element is computed the
/// same way whatever the tile's shape (missing rows and columns are zero accumulators), so a
/// product does not depend on where it falls in the blocking.
QUIVER_INLINE_AVX512 void avx512_tile(const float *a, const float *b, size_t d, __mmask16 tail,
                                      float *out, size_t ldo, const int rows, const int cols) {
    __m512 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    size_t k = 0;
    for (; k + 16 <= d; k += 16) {
        __m512 av[TILE512_A];
        for (int r = 0; r < rows; r++) av[r] = _mm512_loadu_ps(a + r * d + k);
        for (int c = 0; c < cols; c++) {
            __m512 bv = _mm512_loadu_ps(b + c * d + k);
            for (int r = 0; r < rows; r++) acc[r * 4 + c] = _mm512_fmadd_ps(av[r], bv, acc[r * 4 + c]);
        }
    }
    if (k < d) {
        __m512 av[TILE512_A];
        for (int r = 0; r < rows; r++) av[r] = _mm512_maskz_loadu_ps(tail, a + r * d + k);
        for (int c = 0; c < cols; c++) {
            __m512 bv = _mm512_maskz_loadu_ps(tail, b + c * d + k);
            for (int r = 0; r < rows; r++) acc[r * 4 + c] = _mm512_fmadd_ps(av[r], bv, acc[r * 4 + c]);
        }
    }
    __m512 sums = avx512_hsum16(acc);
    __mmask16 columns = (__mmask16)((1u << cols) - 1);
    for (int r = 0; r < rows; r++) {
        _mm_mask_storeu_ps(out + r * ldo, columns, _mm512_extractf32x4_ps(sums, 0));
        sums = _mm512_shuffle_f32x4(sums, sums, 0x39);  // next row's four sums to lane 0
    }
}

typedef void (*avx512_tile_fn)(const float *, const float *, size_t, __mmask16, float *, size_t);

#define QUIVER_DEFINE_TILE(R, C)                                                                    \
    QUIVER_TARGET_AVX512 static void avx512_tile_##R##x##C(const float *a, const float *b, size_t d, \
                                                           __mmask16 tail, float *out, size_t ldo) { \
        avx512_tile(a, b, d, tail, out, ldo, R, C);                                                 \
    }
QUIVER_DEFINE_TILE(1, 1) QUIVER_DEFINE_TILE(1, 2) QUIVER_DEFINE_TILE(1, 3) QUIVER_DEFINE_TILE(1, 4)
QUIVER_DEFINE_TILE(2, 1) QUIVER_DEFINE_TILE(2, 2) QUIVER_DEFINE_TILE(2, 3) QUIVER_DEFINE_TILE(2, 4)
QUIVER_DEFINE_TILE(3, 1) QUIVER_DEFINE_TILE(3, 2) QUIVER_DEFINE_TILE(3, 3) QUIVER_DEFINE_TILE(3, 4)
QUIVER_DEFINE_TILE(4, 1) QUIVER_DEFINE_TILE(4, 2) QUIVER_DEFINE_TILE(4, 3) QUIVER_DEFINE_TILE(4, 4)
#undef QUIVER_DEFINE_TILE

static const avx512_tile_fn avx512_tiles[TILE512_A][TILE512_B] = {
    {avx512_tile_1x1, avx512_tile_1x2, avx512_tile_1x3, avx512_tile_1x4},
    {avx512_tile_2x1, avx512_tile_2x2, avx512_tile_2x3, avx512_tile_2x4},
    {avx512_tile_3x1, avx512_tile_3x2, avx512_tile_3x3, avx512_tile_3x4},
    {avx512_tile_4x1, avx512_tile_4x2, avx512_tile_4x3, avx512_tile_4x4},
};

QUIVER_TARGET_AVX512 static void avx512_inner_products(const float *a, size_t na, const float *b,
                                                       size_t nb, size_t d, float *out, size_t ldo) {
    __mmask16 tail = (__mmask16)((1u << (d % 16)) - 1);
    size_t row_bytes = d * sizeof(float);
    size_t panel = row_bytes ? B_PANEL_BYTES / row_bytes : nb;
    panel = panel < TILE512_B ? TILE512_B : panel - panel % TILE512_B;
    for (size_t j0 = 0; j0 < nb; j0 += panel) {
        size_t j_end = j0 + panel < nb ? j0 + panel : nb;
        for (size_t i = 0; i < na; i += TILE512_A) {
            size_t rows = na - i < TILE512_A ? na - i : TILE512_A;
            for (size_t j = j0; j < j_end; j += TILE512_B) {
                size_t cols = j_end - j < TILE512_B ? j_end - j : TILE512_B;
                avx512_tiles[rows - 1][cols - 1](a + i * d, b + j * d, d, tail, out + i * ldo + j, ldo);
            }
        }
    }
}

/// Prefetches the `bytes` of one stored vector, a cache line at a time.
static inline void prefetch_row(const void *row, size_t bytes) {
    for (size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch((const char *)row + offset);
}

QUIVER_INLINE_AVX512 float avx512_row_distance_f32(const float *q, const float *x, size_t d, int inner_product) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
        __m512 q0 = _mm512_loadu_ps(q + i), q1 = _mm512_loadu_ps(q + i + 16);
        if (inner_product) {
            acc0 = _mm512_fmadd_ps(q0, x0, acc0);
            acc1 = _mm512_fmadd_ps(q1, x1, acc1);
        } else {
            __m512 d0 = _mm512_sub_ps(q0, x0), d1 = _mm512_sub_ps(q1, x1);
            acc0 = _mm512_fmadd_ps(d0, d0, acc0);
            acc1 = _mm512_fmadd_ps(d1, d1, acc1);
        }
    }
    for (; i < d; i += 16) {
        __mmask16 mask = d - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (d - i)) - 1);
        __m512 xv = _mm512_maskz_loadu_ps(mask, x + i), qv = _mm512_maskz_loadu_ps(mask, q + i);
        if (inner_product) {
            acc0 = _mm512_fmadd_ps(qv, xv, acc0);
        } else {
            __m512 diff = _mm512_sub_ps(qv, xv);
            acc0 = _mm512_fmadd_ps(diff, diff, acc0);
        }
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    return inner_product ? -sum : sum;
}

QUIVER_INLINE_AVX512 float avx512_row_distance_f16(const float *q, const uint16_t *x, size_t d, int inner_product) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m512 x0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i)));
        __m512 x1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + 16)));
        __m512 q0 = _mm512_loadu_ps(q + i), q1 = _mm512_loadu_ps(q + i + 16);
        if (inner_product) {
            acc0 = _mm512_fmadd_ps(q0, x0, acc0);
            acc1 = _mm512_fmadd_ps(q1, x1, acc1);
        } else {
            __m512 d0 = _mm512_sub_ps(q0, x0), d1 = _mm512_sub_ps(q1, x1);
            acc0 = _mm512_fmadd_ps(d0, d0, acc0);
            acc1 = _mm512_fmadd_ps(d1, d1, acc1);
        }
    }
    for (; i < d; i += 16) {
        __mmask16 mask = d - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (d - i)) - 1);
        __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, x + i));
        __m512 qv = _mm512_maskz_loadu_ps(mask, q + i);
        if (inner_product) {
            acc0 = _mm512_fmadd_ps(qv, xv, acc0);
        } else {
            __m512 diff = _mm512_sub_ps(qv, xv);
            acc0 = _mm512_fmadd_ps(diff, diff, acc0);
        }
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    return inner_product ? -sum : sum;
}

QUIVER_TARGET_AVX512 static void avx512_rerank(const float *query, const void *vectors, int halves, size_t d,
                                               const int64_t *rows, size_t count, int inner_product, float *distances) {
    size_t row_bytes = d * (halves ? 2 : 4);
    for (size_t i = 0; i < count && i < 2; i++) {
        if (rows[i] >= 0) prefetch_row((const char *)vectors + (size_t)rows[i] * row_bytes, row_bytes);
    }
    for (size_t i = 0; i < count; i++) {
        if (i + 2 < count && rows[i + 2] >= 0) prefetch_row((const char *)vectors + (size_t)rows[i + 2] * row_bytes, row_bytes);
        if (rows[i] < 0) {
            distances[i] = INFINITY;
            continue;
        }
        const char *x = (const char *)vectors + (size_t)rows[i] * row_bytes;
        distances[i] = halves ? avx512_row_distance_f16(query, (const uint16_t *)x, d, inner_product)
                              : avx512_row_distance_f32(query, (const float *)x, d, inner_product);
    }
}

#endif

// ---------------------------------------------------------------------------------------------
// Dispatch: the float kernels take the best ISA; NEON has no hand-written path here because
// the compiler vectorises these loops well for arm64's baseline.
// ---------------------------------------------------------------------------------------------

#if QUIVER_X86
static inline int use_avx2(quiver_isa isa) { return quiver_isa_has_avx2(quiver_runnable_isa(isa)); }
#endif

void quiver_inner_products_isa(quiver_isa isa, const float *a, size_t na, const float *b, size_t nb,
                               size_t d, float *out, size_t ldo) {
    (void)isa;  // only x86 has a choice to make
#if QUIVER_X86
    if (quiver_runnable_isa(isa) == QUIVER_ISA_AVX512) {
        avx512_inner_products(a, na, b, nb, d, out, ldo);
        return;
    }
    if (use_avx2(isa)) {
        avx2_inner_products(a, na, b, nb, d, out, ldo);
        return;
    }
#endif
    scalar_inner_products(a, na, b, nb, d, out, ldo);
}

void quiver_inner_products(const float *a, size_t na, const float *b, size_t nb, size_t d,
                           float *out, size_t ldo) {
    quiver_inner_products_isa(quiver_best_isa(), a, na, b, nb, d, out, ldo);
}

float quiver_dot(const float *a, const float *b, size_t d) {
#if QUIVER_X86
    if (use_avx2(quiver_best_isa())) return avx2_dot(a, b, d);
#endif
    return scalar_dot(a, b, d);
}

void quiver_squared_norms(const float *a, size_t n, size_t d, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = quiver_dot(a + i * d, a + i * d, d);
}

float quiver_l2_squared(const float *a, const float *b, size_t d) {
#if QUIVER_X86
    if (use_avx2(quiver_best_isa())) return avx2_l2_squared(a, b, d);
#endif
    return scalar_l2_squared(a, b, d);
}

float quiver_dot_f16(const float *q, const uint16_t *x, size_t d) {
#if QUIVER_X86
    if (use_avx2(quiver_best_isa())) return avx2_dot_f16(q, x, d);
#endif
    return scalar_dot_f16(q, x, d);
}

float quiver_l2_squared_f16(const float *q, const uint16_t *x, size_t d) {
#if QUIVER_X86
    if (use_avx2(quiver_best_isa())) return avx2_l2_squared_f16(q, x, d);
#endif
    return scalar_l2_squared_f16(q, x, d);
}

void quiver_f16_to_f32_isa(quiver_isa isa, const uint16_t *src, float *dst, size_t n) {
    (void)isa;  // only x86 has a choice to make
#if QUIVER_X86
    if (use_avx2(isa)) {
        avx2_f16_to_f32(src, dst, n);
        return;
    }
#endif
    scalar_f16_to_f32(src, dst, n);
}

void quiver_f32_to_f16_isa(quiver_isa isa, const float *src, uint16_t *dst, size_t n) {
    (void)isa;  // only x86 has a choice to make
#if QUIVER_X86
    if (use_avx2(isa)) {
        avx2_f32_to_f16(src, dst, n);
        return;
    }
#endif
    scalar_f32_to_f16(src, dst, n);
}

void quiver_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    quiver_f16_to_f32_isa(quiver_best_isa(), src, dst, n);
}

void quiver_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    quiver_f32_to_f16_isa(quiver_best_isa(), src, dst, n);
}

// ---------------------------------------------------------------------------------------------
// Re-ranking
// ---------------------------------------------------------------------------------------------

static void scalar_rerank(const float *query, const void *vectors, int halves, size_t d, const int64_t *rows,
                          size_t count, int inner_product, float *distances) {
    for (size_t i = 0; i < count; i++) {
        if (rows[i] < 0) {
            distances[i] = INFINITY;
            continue;
        }
        if (halves) {
            const uint16_t *x = (const uint16_t *)vectors + (size_t)rows[i] * d;
            distances[i] = inner_product ? -scalar_dot_f16(query, x, d) : scalar_l2_squared_f16(query, x, d);
        } else {
            const float *x = (const float *)vectors + (size_t)rows[i] * d;
            distances[i] = inner_product ? -scalar_dot(query, x, d) : scalar_l2_squared(query, x, d);
        }
    }
}

void quiver_rerank_isa(quiver_isa isa, const float *query, const void *vectors, int halves, size_t d,
                       const int64_t *rows, size_t count, int inner_product, float *distances) {
    (void)isa;
#if QUIVER_X86
    quiver_isa runnable = quiver_runnable_isa(isa);
    if (runnable == QUIVER_ISA_AVX512) {
        avx512_rerank(query, vectors, halves, d, rows, count, inner_product, distances);
        return;
    }
    if (use_avx2(runnable)) {
        for (size_t i = 0; i < count; i++) {
            if (i + 2 < count && rows[i + 2] >= 0) {
                const char *ahead = (const char *)vectors + (size_t)rows[i + 2] * d * (halves ? 2 : 4);
                for (size_t offset = 0; offset < d * (halves ? 2 : 4); offset += 64) __builtin_prefetch(ahead + offset);
            }
            if (rows[i] < 0) {
                distances[i] = INFINITY;
            } else if (halves) {
                const uint16_t *x = (const uint16_t *)vectors + (size_t)rows[i] * d;
                distances[i] = inner_product ? -avx2_dot_f16(query, x, d) : avx2_l2_squared_f16(query, x, d);
            } else {
                const float *x = (const float *)vectors + (size_t)rows[i] * d;
                distances[i] = inner_product ? -avx2_dot(query, x, d) : avx2_l2_squared(query, x, d);
            }
        }
        return;
    }
#endif
    scalar_rerank(query, vectors, halves, d, rows, count, inner_product, distances);
}

void quiver_rerank(const float *query, const void *vectors, int halves, size_t d, const int64_t *rows,
                   size_t count, int inner_product, float *distances) {
    quiver_rerank_isa(quiver_best_isa(), query, vectors, halves, d, rows, count, inner_product, distances);
}
