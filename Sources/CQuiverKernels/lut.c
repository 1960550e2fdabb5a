// Per-query look-up tables for 4-bit PQ: the float distance table of every subspace's 16 centers,
// and its quantization to the uint8 rows the FastScan kernel shuffles. Built once per query (once
// per list for L2), so at m = d/2 this is thousands of entries per query: worth SIMD.
#include "kernels_internal.h"

#include <float.h>
#include <math.h>

#if QUIVER_X86
#include <immintrin.h>
#endif

static void table_scalar(const float *query, const float *transposed, const float *center_norms, size_t m,
                         size_t dsub, float *table) {
    for (size_t s = 0; s < m; s++) {
        const float *q = query + s * dsub;
        const float *cb = transposed + s * dsub * 16;
        float *row = table + s * 16;
        float query_norm = 0;
        for (size_t j = 0; j < dsub; j++) query_norm += q[j] * q[j];
        for (int c = 0; c < 16; c++) {
            float dot = 0;
            for (size_t j = 0; j < dsub; j++) dot += q[j] * cb[j * 16 + c];
            row[c] = center_norms ? query_norm - 2 * dot + center_norms[s * 16 + c] : -dot;
        }
    }
}

static void quantize_scalar(const float *table, size_t m, size_t padded_m, uint8_t *lut, float *scale_out,
                            float *bias_out) {
    float bias = 0, max_range = 0, total_range = 0;
    for (size_t s = 0; s < m; s++) {
        const float *row = table + s * 16;
        float low = row[0], high = row[0];
        for (int c = 1; c < 16; c++) {
            low = row[c] < low ? row[c] : low;
            high = row[c] > high ? row[c] : high;
        }
        bias += low;
        max_range = high - low > max_range ? high - low : max_range;
        total_range += high - low;
    }
    // Every entry ≤ 255, and rounding adds at most 0.5 per row, hence the margin of m below 65535:
    // no 16-bit sum can overflow.
    float scale = 1;
    if (max_range > 0) {
        float by_entry = 255.0f / max_range;
        float by_sum = (float)(65535 - m) / total_range;
        scale = by_entry < by_sum ? by_entry : by_sum;
    }
    for (size_t s = 0; s < m; s++) {
        const float *row = table + s * 16;
        float low = row[0];
        for (int c = 1; c < 16; c++) low = row[c] < low ? row[c] : low;
        for (int c = 0; c < 16; c++) {
            float value = (row[c] - low) * scale + 0.5f;
            int rounded = (int)value;
            lut[s * 16 + c] = (uint8_t)(rounded > 255 ? 255 : (rounded < 0 ? 0 : rounded));
        }
    }
    for (size_t i = m * 16; i < padded_m * 16; i++) lut[i] = 0;
    *scale_out = scale;
    *bias_out = bias;
}

#if QUIVER_X86
QUIVER_TARGET_AVX2 static void table_avx2(const float *query, const float *transposed, const float *center_norms,
                                          size_t m, size_t dsub, float *table) {
    for (size_t s = 0; s < m; s++) {
        const float *q = query + s * dsub;
        const float *cb = transposed + s * dsub * 16;
        __m256 dot_lo = _mm256_setzero_ps(), dot_hi = _mm256_setzero_ps();
        float query_norm = 0;
        for (size_t j = 0; j < dsub; j++) {
            __m256 qj = _mm256_set1_ps(q[j]);
            dot_lo = _mm256_fmadd_ps(qj, _mm256_loadu_ps(cb + j * 16), dot_lo);
            dot_hi = _mm256_fmadd_ps(qj, _mm256_loadu_ps(cb + j * 16 + 8), dot_hi);
            query_norm += q[j] * q[j];
        }
        float *row = table + s * 16;
        if (center_norms) {
            __m256 minus_two = _mm256_set1_ps(-2.0f), qn = _mm256_set1_ps(query_norm);
            const float *cn = center_norms + s * 16;
            _mm256_storeu_ps(row, _mm256_add_ps(_mm256_fmadd_ps(minus_two, dot_lo, qn), _mm256_loadu_ps(cn)));
            _mm256_storeu_ps(row + 8, _mm256_add_ps(_mm256_fmadd_ps(minus_two, dot_hi, qn), _mm256_loadu_ps(cn + 8)));
        } else {
            __m256 zero = _mm256_setzero_ps();
            _mm256_storeu_ps(row, _mm256_sub_ps(zero, dot_lo));
            _mm256_storeu_ps(row + 8, _mm256_sub_ps(zero, dot_hi));
        }
    }
}

QUIVER_TARGET_AVX2 static inline float hmin8(__m256 v) {
    __m128 x = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_min_ps(x, _mm_movehl_ps(x, x));
    x = _mm_min_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}

QUIVER_TARGET_AVX2 static inline float hmax8(__m256 v) {
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}

QUIVER_TARGET_AVX2 static void quantize_avx2(const float *table, size_t m, size_t padded_m, uint8_t *lut,
                                             float *scale_out, float *bias_out, float *lows) {
    float bias = 0, max_range = 0, total_range = 0;
    for (size_t s = 0; s < m; s++) {
        __m256 a = _mm256_loadu_ps(table + s * 16), b = _mm256_loadu_ps(table + s * 16 + 8);
        float low = hmin8(_mm256_min_ps(a, b)), high = hmax8(_mm256_max_ps(a, b));
        lows[s] = low;
        bias += low;
        max_range = high - low > max_range ? high - low : max_range;
        total_range += high - low;
    }
    float scale = 1;
    if (max_range > 0) {
        float by_entry = 255.0f / max_range;
        float by_sum = (float)(65535 - m) / total_range;
        scale = by_entry < by_sum ? by_entry : by_sum;
    }
    __m256 vscale = _mm256_set1_ps(scale), half = _mm256_set1_ps(0.5f);
    for (size_t s = 0; s < m; s++) {
        __m256 low = _mm256_set1_ps(lows[s]);
        __m256 a = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(table + s * 16), low), vscale), half);
        __m256 b = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(table + s * 16 + 8), low), vscale), half);
        __m256i ia = _mm256_cvttps_epi32(a), ib = _mm256_cvttps_epi32(b);
        // Saturating packs keep values in 0...255; the lane interleave of the 256-bit packs is
        // undone by the final permute.
        __m256i words = _mm256_packs_epi32(ia, ib);
        __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
        bytes = _mm_shuffle_epi32(bytes, _MM_SHUFFLE(3, 1, 2, 0));
        _mm_storeu_si128((__m128i *)(lut + s * 16), bytes);
    }
    for (size_t i = m * 16; i < padded_m * 16; i++) lut[i] = 0;
    *scale_out = scale;
    *bias_out = bias;
}
#endif

void quiver_pq4_table(const float *query, const float *transposed, const float *center_norms, size_t m, size_t dsub,
                      float *table) {
#if QUIVER_X86
    if (quiver_isa_has_avx2(quiver_best_isa())) {
        table_avx2(query, transposed, center_norms, m, dsub, table);
        return;
    }
#endif
    table_scalar(query, transposed, center_norms, m, dsub, table);
}

void quiver_quantize_lut(quiver_isa isa, const float *table, size_t m, size_t padded_m, uint8_t *lut,
                         float *scale, float *bias) {
#if QUIVER_X86
    if (quiver_isa_has_avx2(quiver_runnable_isa(isa)) && m <= 4096) {
        float lows[4096];
        quantize_avx2(table, m, padded_m, lut, scale, bias, lows);
        return;
    }
#endif
    quantize_scalar(table, m, padded_m, lut, scale, bias);
}
