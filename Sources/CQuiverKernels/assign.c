// List assignment of one vector from its products with every centroid: the nearest list, and
// SOAR's spill list over every list at once.
//
// Each path computes every value with the same operations in the same order (no contraction
// into FMA), and the choice among equal values is a fixed rule, so the scalar reference and the
// SIMD paths return the same index for the same input.

#include "kernels_internal.h"
#include <math.h>

#if QUIVER_X86
#include <immintrin.h>
#endif

#pragma STDC FP_CONTRACT OFF

// ---------------------------------------------------------------------------------------------
// Nearest

static int32_t scalar_argmin(const float *values, size_t n) {
    int32_t best = 0;
    float best_value = INFINITY;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        // NaN compares false: never chosen.
        if (values[i] < best_value || (!found && values[i] == best_value)) {
            best = (int32_t)i;
            best_value = values[i];
            found = 1;
        }
    }
    return best;
}

// The lowest index among the lanes holding the smallest value: a min reduction, then one pass
// for the first position equal to it.
#if QUIVER_X86
QUIVER_TARGET_AVX2 static int32_t avx2_argmin(const float *values, size_t n) {
    __m256 low = _mm256_set1_ps(INFINITY);
    size_t i = 0;
    // _mm256_min_ps returns its second operand when either is NaN: NaN lanes keep `low`.
    for (; i + 8 <= n; i += 8) low = _mm256_min_ps(_mm256_loadu_ps(values + i), low);
    float lanes[8];
    _mm256_storeu_ps(lanes, low);
    float smallest = INFINITY;
    for (int j = 0; j < 8; j++) smallest = lanes[j] < smallest ? lanes[j] : smallest;
    for (; i < n; i++) smallest = values[i] < smallest ? values[i] : smallest;
    __m256 target = _mm256_set1_ps(smallest);
    for (i = 0; i + 8 <= n; i += 8) {
        int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(values + i), target, _CMP_EQ_OQ));
        if (mask) return (int32_t)(i + (size_t)__builtin_ctz((unsigned)mask));
    }
    for (; i < n; i++) {
        if (values[i] == smallest) return (int32_t)i;
    }
    return 0;  // every value NaN
}

QUIVER_TARGET_AVX512 static int32_t avx512_argmin(const float *values, size_t n) {
    __m512 low = _mm512_set1_ps(INFINITY);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) low = _mm512_min_ps(_mm512_loadu_ps(values + i), low);
    if (i < n) {
        __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
        low = _mm512_min_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(INFINITY), tail, values + i), low);
    }
    float smallest = _mm512_reduce_min_ps(low);
    __m512 target = _mm512_set1_ps(smallest);
    for (i = 0; i < n; i += 16) {
        __mmask16 valid = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __mmask16 equal = _mm512_mask_cmp_ps_mask(valid, _mm512_maskz_loadu_ps(valid, values + i), target, _CMP_EQ_OQ);
        if (equal) return (int32_t)(i + (size_t)__builtin_ctz((unsigned)equal));
    }
    return 0;  // every value NaN
}
#endif

int32_t quiver_argmin_isa(quiver_isa isa, const float *values, size_t n) {
    switch (quiver_runnable_isa(isa)) {
#if QUIVER_X86
    case QUIVER_ISA_AVX512: return avx512_argmin(values, n);
    case QUIVER_ISA_AVX2: return avx2_argmin(values, n);
#endif
    default: return scalar_argmin(values, n);
    }
}

int32_t quiver_argmin(const float *values, size_t n) {
    return quiver_argmin_isa(quiver_best_isa(), values, n);
}

// ---------------------------------------------------------------------------------------------
// SOAR spill
//
// loss(c) = (x_norm + rank[c]) + ((lambda * p) * p) * inv_r1, p = (x_dot_r1 + neg_ip[c]) + gram[c].

static inline float spill_loss(const quiver_spill_row *row, size_t c) {
    float squared = row->x_norm + row->rank[c];
    float p = (row->x_dot_r1 + row->neg_ip[c]) + row->gram[c];
    return squared + ((row->lambda * p) * p) * row->inv_r1;
}

/// Whether `c` is a better spill than `best` at an equal loss: the nearer list, then the lower.
static inline int spill_prefers(const quiver_spill_row *row, size_t c, int32_t best) {
    return best < 0 || row->rank[c] < row->rank[best];
}

// Two passes: the smallest loss, then among the lists at exactly that loss the preferred one.
static int32_t scalar_spill(const quiver_spill_row *row, size_t n) {
    float smallest = INFINITY;
    for (size_t c = 0; c < n; c++) {
        if ((int32_t)c == row->first) continue;
        float loss = spill_loss(row, c);
        if (loss < smallest) smallest = loss;  // NaN compares false: never chosen
    }
    if (!(smallest < INFINITY)) return -1;
    int32_t best = -1;
    for (size_t c = 0; c < n; c++) {
        if ((int32_t)c != row->first && spill_loss(row, c) == smallest && spill_prefers(row, c, best)) best = (int32_t)c;
    }
    return best;
}

#if QUIVER_X86
/// Losses of lists c … c + 7 (all eight must exist), the own list's lane at +inf.
QUIVER_TARGET_AVX2 static inline __m256 avx2_spill_loss(const quiver_spill_row *row, size_t c) {
    __m256 squared = _mm256_add_ps(_mm256_set1_ps(row->x_norm), _mm256_loadu_ps(row->rank + c));
    __m256 p = _mm256_add_ps(_mm256_add_ps(_mm256_set1_ps(row->x_dot_r1), _mm256_loadu_ps(row->neg_ip + c)),
                             _mm256_loadu_ps(row->gram + c));
    __m256 weighted = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(row->lambda), p), p), _mm256_set1_ps(row->inv_r1));
    __m256 loss = _mm256_add_ps(squared, weighted);
    __m256i lanes = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)c));
    __m256 own = _mm256_castsi256_ps(_mm256_cmpeq_epi32(lanes, _mm256_set1_epi32(row->first)));
    return _mm256_blendv_ps(loss, _mm256_set1_ps(INFINITY), own);
}

QUIVER_TARGET_AVX2 static int32_t avx2_spill(const quiver_spill_row *row, size_t n) {
    __m256 low = _mm256_set1_ps(INFINITY);
    size_t full = n & ~(size_t)7;
    // _mm256_min_ps returns its second operand when either is NaN: NaN lanes keep `low`.
    for (size_t c = 0; c < full; c += 8) low = _mm256_min_ps(avx2_spill_loss(row, c), low);
    float lanes[8];
    _mm256_storeu_ps(lanes, low);
    float smallest = INFINITY;
    for (int j = 0; j < 8; j++) smallest = lanes[j] < smallest ? lanes[j] : smallest;
    for (size_t c = full; c < n; c++) {
        if ((int32_t)c == row->first) continue;
        float loss = spill_loss(row, c);
        if (loss < smallest) smallest = loss;
    }
    if (!(smallest < INFINITY)) return -1;
    int32_t best = -1;
    __m256 target = _mm256_set1_ps(smallest);
    for (size_t c = 0; c < full; c += 8) {
        unsigned equal = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(avx2_spill_loss(row, c), target, _CMP_EQ_OQ));
        for (; equal; equal &= equal - 1) {
            size_t at = c + (size_t)__builtin_ctz(equal);
            if (spill_prefers(row, at, best)) best = (int32_t)at;
        }
    }
    for (size_t c = full; c < n; c++) {
        if ((int32_t)c != row->first && spill_loss(row, c) == smallest && spill_prefers(row, c, best)) best = (int32_t)c;
    }
    return best;
}

/// Losses of lists c … c + 15 where `valid` (the rest are not lists, or the own list).
QUIVER_TARGET_AVX512 static inline __m512 avx512_spill_loss(const quiver_spill_row *row, size_t c, __mmask16 valid) {
    __m512 squared = _mm512_add_ps(_mm512_set1_ps(row->x_norm), _mm512_maskz_loadu_ps(valid, row->rank + c));
    __m512 p = _mm512_add_ps(_mm512_add_ps(_mm512_set1_ps(row->x_dot_r1), _mm512_maskz_loadu_ps(valid, row->neg_ip + c)),
                             _mm512_maskz_loadu_ps(valid, row->gram + c));
    __m512 weighted = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(row->lambda), p), p), _mm512_set1_ps(row->inv_r1));
    return _mm512_add_ps(squared, weighted);
}

QUIVER_TARGET_AVX512 static inline __mmask16 avx512_spill_lanes(const quiver_spill_row *row, size_t c, size_t n) {
    __mmask16 valid = n - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - c)) - 1);
    if (row->first >= 0 && (size_t)row->first >= c && (size_t)row->first < c + 16) valid &= (__mmask16)~(1u << ((size_t)row->first - c));
    return valid;
}

QUIVER_TARGET_AVX512 static int32_t avx512_spill(const quiver_spill_row *row, size_t n) {
    __m512 low = _mm512_set1_ps(INFINITY);
    for (size_t c = 0; c < n; c += 16) {
        __mmask16 valid = avx512_spill_lanes(row, c, n);
        low = _mm512_mask_min_ps(low, valid, avx512_spill_loss(row, c, valid), low);
    }
    float smallest = _mm512_reduce_min_ps(low);
    if (!(smallest < INFINITY)) return -1;
    int32_t best = -1;
    __m512 target = _mm512_set1_ps(smallest);
    for (size_t c = 0; c < n; c += 16) {
        __mmask16 valid = avx512_spill_lanes(row, c, n);
        unsigned equal = (unsigned)_mm512_mask_cmp_ps_mask(valid, avx512_spill_loss(row, c, valid), target, _CMP_EQ_OQ);
        for (; equal; equal &= equal - 1) {
            size_t at = c + (size_t)__builtin_ctz(equal);
            if (spill_prefers(row, at, best)) best = (int32_t)at;
        }
    }
    return best;
}
#endif

int32_t quiver_soar_spill_isa(quiver_isa isa, const quiver_spill_row *row, size_t n) {
    switch (quiver_runnable_isa(isa)) {
#if QUIVER_X86
    case QUIVER_ISA_AVX512: return avx512_spill(row, n);
    case QUIVER_ISA_AVX2: return avx2_spill(row, n);
#endif
    default: return scalar_spill(row, n);
    }
}

int32_t quiver_soar_spill(const quiver_spill_row *row, size_t n) {
    return quiver_soar_spill_isa(quiver_best_isa(), row, n);
}
