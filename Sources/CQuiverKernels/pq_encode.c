// 4-bit PQ encoding with score-aware (anisotropic) code assignment: the inner loop of every add.
// Each subspace has 16 centers, stored dimension-major (`transposed[(s * dsub + j) * 16 + c]`), so
// one 512-bit register (two 256-bit ones) holds a quantity for all 16 centers of a subspace.
//
// Every path computes each value with the same operations in the same order (FMA where the
// reference calls fmaf), so all paths choose the same codes bit for bit.
#include "kernels_internal.h"

#include <math.h>

#if QUIVER_X86
#include <immintrin.h>
#endif

#pragma STDC FP_CONTRACT OFF

enum { CENTERS = 16 };

/// The first index of the smallest of 16 values.
static inline int first_min16(const float *v) {
    int best = 0;
    for (int c = 1; c < CENTERS; c++) {
        if (v[c] < v[best]) best = c;
    }
    return best;
}

/// The 16 candidate losses of one subspace, ‖e‖² + w·⟨e, x̂⟩² with the other subspaces fixed,
/// written to `losses`; returns the first index of their minimum.
typedef int (*candidate_fn)(const float *norms, const float *projections, float base_squared,
                            float base_parallel, float weight, float *losses);

/// Coordinate descent on the loss ‖e‖² + (η − 1)·⟨e, x̂⟩², assembled from the per-subspace
/// tables `norms[s][c] = ‖r_s − c‖²` and `projections[s][c] = ⟨r_s − c, x̂_s⟩`. A pass visits the
/// subspaces in order and moves each to the center whose loss (computed for all 16 the same way)
/// is strictly below its current one, the first such minimum; stops after a pass with no move.
static inline __attribute__((always_inline)) void descend(const float *norms, const float *projections, size_t m,
                                                          float weight, int max_passes, uint8_t *codes,
                                                          candidate_fn candidates) {
    float squared = 0, parallel = 0;
    for (size_t s = 0; s < m; s++) {
        squared += norms[s * CENTERS + codes[s]];
        parallel += projections[s * CENTERS + codes[s]];
    }
    float losses[CENTERS];
    for (int pass = 0; pass < max_passes; pass++) {
        int changed = 0;
        for (size_t s = 0; s < m; s++) {
            const float *row_norms = norms + s * CENTERS, *row_projections = projections + s * CENTERS;
            int current = codes[s];
            float base_squared = squared - row_norms[current];
            float base_parallel = parallel - row_projections[current];
            int best = candidates(row_norms, row_projections, base_squared, base_parallel, weight, losses);
            if (losses[best] < losses[current]) {
                codes[s] = (uint8_t)best;
                squared = base_squared + row_norms[best];
                parallel = base_parallel + row_projections[best];
                changed = 1;
            }
        }
        if (!changed) break;
    }
}

// ---------------------------------------------------------------------------------------------
// Scalar reference
// ---------------------------------------------------------------------------------------------

static void scalar_tables(const float *residual, const float *direction, const float *transposed, size_t m,
                          size_t dsub, float *norms, float *projections) {
    for (size_t s = 0; s < m; s++) {
        const float *r = residual + s * dsub;
        const float *book = transposed + s * dsub * CENTERS;
        for (int c = 0; c < CENTERS; c++) {
            float norm = 0, projection = 0;
            for (size_t j = 0; j < dsub; j++) {
                float diff = r[j] - book[j * CENTERS + c];
                norm = fmaf(diff, diff, norm);
                if (direction) projection = fmaf(diff, direction[s * dsub + j], projection);
            }
            norms[s * CENTERS + c] = norm;
            if (direction) projections[s * CENTERS + c] = projection;
        }
    }
}

static inline int scalar_candidates(const float *norms, const float *projections, float base_squared,
                                    float base_parallel, float weight, float *losses) {
    for (int c = 0; c < CENTERS; c++) {
        float p = base_parallel + projections[c];
        losses[c] = fmaf(weight * p, p, base_squared + norms[c]);
    }
    return first_min16(losses);
}

static void scalar_encode(const float *residual, const float *direction, float weight, const float *transposed,
                          size_t m, size_t dsub, int max_passes, uint8_t *codes, float *norms, float *projections) {
    scalar_tables(residual, direction, transposed, m, dsub, norms, projections);
    for (size_t s = 0; s < m; s++) codes[s] = (uint8_t)first_min16(norms + s * CENTERS);
    if (direction) descend(norms, projections, m, weight, max_passes, codes, scalar_candidates);
}

// ---------------------------------------------------------------------------------------------
// AVX2 (two registers of 8 centers) and AVX-512 (one register of 16)
// ---------------------------------------------------------------------------------------------

#if QUIVER_X86

QUIVER_TARGET_AVX2 static void avx2_tables(const float *residual, const float *direction, const float *transposed,
                                           size_t m, size_t dsub, float *norms, float *projections) {
    for (size_t s = 0; s < m; s++) {
        const float *r = residual + s * dsub;
        const float *book = transposed + s * dsub * CENTERS;
        __m256 norm_lo = _mm256_setzero_ps(), norm_hi = _mm256_setzero_ps();
        __m256 proj_lo = _mm256_setzero_ps(), proj_hi = _mm256_setzero_ps();
        for (size_t j = 0; j < dsub; j++) {
            __m256 rj = _mm256_set1_ps(r[j]);
            __m256 diff_lo = _mm256_sub_ps(rj, _mm256_loadu_ps(book + j * CENTERS));
            __m256 diff_hi = _mm256_sub_ps(rj, _mm256_loadu_ps(book + j * CENTERS + 8));
            norm_lo = _mm256_fmadd_ps(diff_lo, diff_lo, norm_lo);
            norm_hi = _mm256_fmadd_ps(diff_hi, diff_hi, norm_hi);
            if (direction) {
                __m256 xj = _mm256_set1_ps(direction[s * dsub + j]);
                proj_lo = _mm256_fmadd_ps(diff_lo, xj, proj_lo);
                proj_hi = _mm256_fmadd_ps(diff_hi, xj, proj_hi);
            }
        }
        _mm256_storeu_ps(norms + s * CENTERS, norm_lo);
        _mm256_storeu_ps(norms + s * CENTERS + 8, norm_hi);
        if (direction) {
            _mm256_storeu_ps(projections + s * CENTERS, proj_lo);
            _mm256_storeu_ps(projections + s * CENTERS + 8, proj_hi);
        }
    }
}

/// The first index of the minimum of 16 values held in two registers (minima are exact).
QUIVER_TARGET_AVX2 static inline int avx2_first_min16(__m256 lo, __m256 hi) {
    __m256 m = _mm256_min_ps(lo, hi);
    m = _mm256_min_ps(m, _mm256_permute2f128_ps(m, m, 0x01));
    m = _mm256_min_ps(m, _mm256_shuffle_ps(m, m, 0x4E));
    m = _mm256_min_ps(m, _mm256_shuffle_ps(m, m, 0xB1));
    unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(lo, m, _CMP_EQ_OQ))
                  | (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(hi, m, _CMP_EQ_OQ)) << 8;
    return __builtin_ctz(mask);
}

QUIVER_TARGET_AVX2 static inline int avx2_candidates(const float *norms, const float *projections, float base_squared,
                                                     float base_parallel, float weight, float *losses) {
    __m256 bs = _mm256_set1_ps(base_squared), bp = _mm256_set1_ps(base_parallel), w = _mm256_set1_ps(weight);
    __m256 p_lo = _mm256_add_ps(bp, _mm256_loadu_ps(projections));
    __m256 p_hi = _mm256_add_ps(bp, _mm256_loadu_ps(projections + 8));
    __m256 lo = _mm256_fmadd_ps(_mm256_mul_ps(w, p_lo), p_lo, _mm256_add_ps(bs, _mm256_loadu_ps(norms)));
    __m256 hi = _mm256_fmadd_ps(_mm256_mul_ps(w, p_hi), p_hi, _mm256_add_ps(bs, _mm256_loadu_ps(norms + 8)));
    _mm256_storeu_ps(losses, lo);
    _mm256_storeu_ps(losses + 8, hi);
    return avx2_first_min16(lo, hi);
}

QUIVER_TARGET_AVX2 static void avx2_encode(const float *residual, const float *direction, float weight,
                                           const float *transposed, size_t m, size_t dsub, int max_passes,
                                           uint8_t *codes, float *norms, float *projections) {
    avx2_tables(residual, direction, transposed, m, dsub, norms, projections);
    for (size_t s = 0; s < m; s++) {
        codes[s] = (uint8_t)avx2_first_min16(_mm256_loadu_ps(norms + s * CENTERS), _mm256_loadu_ps(norms + s * CENTERS + 8));
    }
    if (direction) descend(norms, projections, m, weight, max_passes, codes, avx2_candidates);
}

QUIVER_TARGET_AVX512 static void avx512_tables(const float *residual, const float *direction,
                                               const float *transposed, size_t m, size_t dsub, float *norms,
                                               float *projections) {
    for (size_t s = 0; s < m; s++) {
        const float *r = residual + s * dsub;
        const float *book = transposed + s * dsub * CENTERS;
        __m512 norm = _mm512_setzero_ps(), projection = _mm512_setzero_ps();
        for (size_t j = 0; j < dsub; j++) {
            __m512 diff = _mm512_sub_ps(_mm512_set1_ps(r[j]), _mm512_loadu_ps(book + j * CENTERS));
            norm = _mm512_fmadd_ps(diff, diff, norm);
            if (direction) projection = _mm512_fmadd_ps(diff, _mm512_set1_ps(direction[s * dsub + j]), projection);
        }
        _mm512_storeu_ps(norms + s * CENTERS, norm);
        if (direction) _mm512_storeu_ps(projections + s * CENTERS, projection);
    }
}

QUIVER_TARGET_AVX512 static inline int avx512_first_min16(__m512 v) {
    __mmask16 at_min = _mm512_cmp_ps_mask(v, _mm512_set1_ps(_mm512_reduce_min_ps(v)), _CMP_EQ_OQ);
    return __builtin_ctz((unsigned)at_min);
}

QUIVER_TARGET_AVX512 static inline int avx512_candidates(const float *norms, const float *projections,
                                                         float base_squared, float base_parallel, float weight,
                                                         float *losses) {
    __m512 p = _mm512_add_ps(_mm512_set1_ps(base_parallel), _mm512_loadu_ps(projections));
    __m512 loss = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(weight), p), p,
                                  _mm512_add_ps(_mm512_set1_ps(base_squared), _mm512_loadu_ps(norms)));
    _mm512_storeu_ps(losses, loss);
    return avx512_first_min16(loss);
}

QUIVER_TARGET_AVX512 static void avx512_encode(const float *residual, const float *direction, float weight,
                                               const float *transposed, size_t m, size_t dsub, int max_passes,
                                               uint8_t *codes, float *norms, float *projections) {
    avx512_tables(residual, direction, transposed, m, dsub, norms, projections);
    for (size_t s = 0; s < m; s++) codes[s] = (uint8_t)avx512_first_min16(_mm512_loadu_ps(norms + s * CENTERS));
    if (direction) descend(norms, projections, m, weight, max_passes, codes, avx512_candidates);
}

#endif

void quiver_pq4_encode_isa(quiver_isa isa, const float *residual, const float *direction, float eta,
                           const float *transposed, size_t m, size_t dsub, int max_passes, uint8_t *codes,
                           float *scratch) {
    float *norms = scratch, *projections = scratch + m * CENTERS;
    const float *used_direction = direction && eta > 1 && max_passes > 0 ? direction : NULL;
    switch (quiver_runnable_isa(isa)) {
#if QUIVER_X86
    case QUIVER_ISA_AVX512:
        avx512_encode(residual, used_direction, eta - 1, transposed, m, dsub, max_passes, codes, norms, projections);
        return;
    case QUIVER_ISA_AVX2:
        avx2_encode(residual, used_direction, eta - 1, transposed, m, dsub, max_passes, codes, norms, projections);
        return;
#endif
    default:
        scalar_encode(residual, used_direction, eta - 1, transposed, m, dsub, max_passes, codes, norms, projections);
        return;
    }
}

void quiver_pq4_encode(const float *residual, const float *direction, float eta, const float *transposed,
                       size_t m, size_t dsub, int max_passes, uint8_t *codes, float *scratch) {
    quiver_pq4_encode_isa(quiver_best_isa(), residual, direction, eta, transposed, m, dsub, max_passes, codes, scratch);
}
