// 4-bit PQ encoding with score-aware (anisotropic) code assignment: the inner loop of every add.
//
// The loss of a code choice is  L = Σ_s n_s(c_s) + w·(Σ_s p_s(c_s))²  with n_s(c) = ‖r_s − c‖²,
// p_s(c) = ⟨r_s − c, x̂_s⟩ and w = η − 1. Only the squared total parallel error couples the
// subspaces, so for a fixed multiplier μ the problem  min Σ_s n_s(c_s) + μ·p_s(c_s)  splits into
// one independent choice per subspace, and the best code choice is the one whose μ satisfies
// μ = 2w·P(μ) (the slope of w·P² at its own total P). P(μ) falls as μ grows, so that μ is found
// by bracketing and false position on one scalar; every step is one pass over the subspaces with
// no dependency between them, which SIMD runs 8 subspaces at a time. On pkgdesc residuals (3
// steps) this reaches a lower mean loss than 4 passes of coordinate descent, the method before
// it (0.07564 against 0.07565), in 40% of its time: coordinate descent visits the subspaces one
// after another, each waiting for the previous one's choice.
//
// Layout: subspaces in blocks of 8 (one 256-bit register holds a quantity for 8 subspaces), the
// codebook as `book[((block · 16 + center) · dsub + j) · 8 + lane]` (quiver_pq4_encoding_book);
// padded subspaces have zero residuals and centers, so they add exact zeros to every sum. AVX-512
// works on pairs of blocks (16 subspaces per register) and still adds the sums block by block.
//
// Every path computes each value with the same operations in the same order (FMA where the
// reference calls fmaf; sums over subspaces in 8 lanes, reduced in one fixed order), so all
// paths choose the same codes bit for bit.
#include "kernels_internal.h"

#include <math.h>
#include <string.h>

#if QUIVER_X86
#include <immintrin.h>
#endif

#pragma STDC FP_CONTRACT OFF

enum { CENTERS = 16, LANES = 8 };

static size_t blocks_of(size_t m) { return (m + LANES - 1) / LANES; }

size_t quiver_pq4_book_size(size_t m, size_t dsub) { return blocks_of(m) * CENTERS * dsub * LANES; }

void quiver_pq4_encoding_book(const float *transposed, size_t m, size_t dsub, float *book) {
    size_t blocks = blocks_of(m);
    for (size_t b = 0; b < blocks; b++) {
        for (size_t c = 0; c < CENTERS; c++) {
            for (size_t j = 0; j < dsub; j++) {
                for (size_t lane = 0; lane < LANES; lane++) {
                    size_t s = b * LANES + lane;
                    book[((b * CENTERS + c) * dsub + j) * LANES + lane] = s < m ? transposed[(s * dsub + j) * CENTERS + c] : 0;
                }
            }
        }
    }
}

size_t quiver_pq4_encode_scratch_size(size_t m, size_t dsub) {
    size_t padded = blocks_of(m) * LANES;
    // Residual and direction by (j, subspace), the two tables, two code buffers (as floats).
    return padded * (2 * dsub + 2 * CENTERS) + padded / 2;
}

/// The fixed reduction order of 8 lane sums (what the AVX2 horizontal add does).
static inline float reduce8(const float *lanes) {
    return ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
}

/// Writes `norms[(b·16 + c)·8 + lane]` = n_s(c) and, with a direction `x`, `projections` = p_s(c).
typedef void (*tables_fn)(const float *residual, const float *direction, const float *book, size_t blocks,
                          size_t dsub, float *norms, float *projections);
/// Each subspace's code minimising n_s(c) + μ·p_s(c) (the first on ties) into `codes` (padded);
/// the sums of the chosen n and p over the subspaces into `squared` and `parallel`. Without
/// `projections`, the nearest centers (μ = 0 gives the same codes) and no sums.
typedef void (*choose_fn)(const float *norms, const float *projections, size_t blocks, float mu, uint8_t *codes,
                          float *squared, float *parallel);

/// The score-aware search on μ, the same for every ISA: `tables` and `choose` differ only in how
/// they compute the same values.
static inline __attribute__((always_inline)) void encode_with(
    tables_fn tables, choose_fn choose, const float *residual, const float *direction, float eta, const float *book,
    size_t m, size_t dsub, int steps, uint8_t *codes, float *scratch) {
    size_t blocks = blocks_of(m), padded = blocks * LANES;
    float *r = scratch, *x = r + dsub * padded, *norms = x + dsub * padded, *projections = norms + CENTERS * padded;
    uint8_t *buffers = (uint8_t *)(projections + CENTERS * padded);
    uint8_t *best = buffers, *work = buffers + padded;
    // Residual and direction by (j, subspace), zero in the padding.
    for (size_t j = 0; j < dsub; j++) {
        memset(r + j * padded + m, 0, (padded - m) * sizeof(float));
        memset(x + j * padded + m, 0, (padded - m) * sizeof(float));
        for (size_t s = 0; s < m; s++) r[j * padded + s] = residual[s * dsub + j];
        if (direction && eta > 1 && steps > 0) {
            for (size_t s = 0; s < m; s++) x[j * padded + s] = direction[s * dsub + j];
        }
    }
    float w = eta - 1;
    if (!direction || !(w > 0) || steps <= 0) {
        tables(r, NULL, book, blocks, dsub, norms, projections);
        float unused;
        choose(norms, NULL, blocks, 0, best, &unused, &unused);
        memcpy(codes, best, m);
        return;
    }
    tables(r, x, book, blocks, dsub, norms, projections);
    float squared, parallel;
    choose(norms, projections, blocks, 0, best, &squared, &parallel);
    if (parallel != 0) {
        // f(μ) = P(μ) − μ/(2w) falls as μ grows; f(0) = P(0) and f(2w·P(0)) = P(2w·P(0)) − P(0)
        // has the other sign, so [0, 2w·P(0)] brackets its root. On pkgdesc residuals the root
        // lies below half of that bound for 99% of vectors, so the first probe is at the half and
        // the full bound is tried only when the half does not bracket. Every choice met on the
        // way is a candidate; the one with the lowest loss is kept (the nearest centers among
        // them, so the loss never exceeds theirs).
        float best_loss = squared + w * parallel * parallel;
        float bound = 2 * w * parallel;
        float lo = 0, f_lo = parallel, hi = 0.5f * bound, f_hi = 0;
        for (int probe = 0; probe < 2; probe++) {
            float s_hi, p_hi;
            choose(norms, projections, blocks, hi, work, &s_hi, &p_hi);
            f_hi = p_hi - hi / (2 * w);
            float loss = s_hi + w * p_hi * p_hi;
            if (loss < best_loss) {
                best_loss = loss;
                uint8_t *t = best; best = work; work = t;
            }
            if ((f_hi > 0) != (f_lo > 0) || f_hi == 0 || probe == 1) break;
            lo = hi; f_lo = f_hi; hi = bound;
        }
        int kept_side = 0;  // Illinois false position: halve f at an end kept twice in a row
        for (int step = 0; step < steps && f_lo != f_hi && f_hi != 0; step++) {
            float mu = lo + (hi - lo) * (f_lo / (f_lo - f_hi));
            if (!(mu > fminf(lo, hi) && mu < fmaxf(lo, hi))) mu = lo + (hi - lo) * 0.5f;
            if (mu == lo || mu == hi) break;
            float s_mu, p_mu;
            choose(norms, projections, blocks, mu, work, &s_mu, &p_mu);
            float loss = s_mu + w * p_mu * p_mu;
            if (loss < best_loss) {
                best_loss = loss;
                uint8_t *t = best; best = work; work = t;
            }
            float f = p_mu - mu / (2 * w);
            if (f == 0) break;
            if ((f > 0) == (f_lo > 0)) {
                lo = mu; f_lo = f;
                if (kept_side == 1) f_hi *= 0.5f;
                kept_side = 1;
            } else {
                hi = mu; f_hi = f;
                if (kept_side == -1) f_lo *= 0.5f;
                kept_side = -1;
            }
        }
    }
    memcpy(codes, best, m);
}

// ---------------------------------------------------------------------------------------------
// Scalar reference
// ---------------------------------------------------------------------------------------------

static void scalar_tables(const float *r, const float *x, const float *book, size_t blocks, size_t dsub, float *norms,
                          float *projections) {
    size_t padded = blocks * LANES;
    for (size_t b = 0; b < blocks; b++) {
        for (size_t c = 0; c < CENTERS; c++) {
            for (size_t lane = 0; lane < LANES; lane++) {
                size_t s = b * LANES + lane;
                float norm = 0, projection = 0;
                for (size_t j = 0; j < dsub; j++) {
                    float diff = r[j * padded + s] - book[((b * CENTERS + c) * dsub + j) * LANES + lane];
                    norm = fmaf(diff, diff, norm);
                    if (x) projection = fmaf(diff, x[j * padded + s], projection);
                }
                norms[(b * CENTERS + c) * LANES + lane] = norm;
                if (x) projections[(b * CENTERS + c) * LANES + lane] = projection;
            }
        }
    }
}

static void scalar_choose(const float *norms, const float *projections, size_t blocks, float mu, uint8_t *codes,
                          float *squared, float *parallel) {
    if (!projections) {
        for (size_t b = 0; b < blocks; b++) {
            const float *n = norms + b * CENTERS * LANES;
            for (size_t lane = 0; lane < LANES; lane++) {
                int best = 0;
                for (int c = 1; c < CENTERS; c++) {
                    if (n[c * LANES + lane] < n[best * LANES + lane]) best = c;
                }
                codes[b * LANES + lane] = (uint8_t)best;
            }
        }
        return;
    }
    float squared_lanes[LANES] = {0}, parallel_lanes[LANES] = {0};
    for (size_t b = 0; b < blocks; b++) {
        const float *n = norms + b * CENTERS * LANES, *p = projections + b * CENTERS * LANES;
        for (size_t lane = 0; lane < LANES; lane++) {
            int best = 0;
            float best_value = fmaf(mu, p[lane], n[lane]);
            for (int c = 1; c < CENTERS; c++) {
                float value = fmaf(mu, p[c * LANES + lane], n[c * LANES + lane]);
                if (value < best_value) {
                    best_value = value;
                    best = c;
                }
            }
            codes[b * LANES + lane] = (uint8_t)best;
            squared_lanes[lane] += n[best * LANES + lane];
            parallel_lanes[lane] += p[best * LANES + lane];
        }
    }
    *squared = reduce8(squared_lanes);
    *parallel = reduce8(parallel_lanes);
}

static void scalar_encode(const float *residual, const float *direction, float eta, const float *book, size_t m,
                          size_t dsub, int steps, uint8_t *codes, float *scratch) {
    encode_with(scalar_tables, scalar_choose, residual, direction, eta, book, m, dsub, steps, codes, scratch);
}

// ---------------------------------------------------------------------------------------------
// AVX2 (8 subspaces per register)
// ---------------------------------------------------------------------------------------------

#if QUIVER_X86

// Helpers are always inlined, as in the other kernel files. The AVX-512 path calls the AVX2 ones
// (for an odd last block); as real calls across target attributes, at -O0 under the address
// sanitizer (the fuzzing build), that path corrupted memory; inlined, it does not.
#define QUIVER_INLINE_AVX2 QUIVER_TARGET_AVX2 static inline __attribute__((always_inline))
#define QUIVER_INLINE_AVX512 QUIVER_TARGET_AVX512 static inline __attribute__((always_inline))

/// One block's tables (`n`, `p`: that block's 16 × 8 values); `padded` is the row length of `r` and `x`.
QUIVER_INLINE_AVX2 void avx2_tables_block(const float *r, const float *x, const float *book, size_t padded,
                                          size_t b, size_t dsub, float *n, float *p) {
    const float *center = book + b * CENTERS * dsub * LANES;
    if (dsub == 2) {
        // The default shape (m = d/2): the block's residual and direction stay in registers.
        __m256 r0 = _mm256_loadu_ps(r + b * LANES), r1 = _mm256_loadu_ps(r + padded + b * LANES);
        if (x) {
            __m256 x0 = _mm256_loadu_ps(x + b * LANES), x1 = _mm256_loadu_ps(x + padded + b * LANES);
            for (size_t c = 0; c < CENTERS; c++, center += 2 * LANES) {
                __m256 diff0 = _mm256_sub_ps(r0, _mm256_loadu_ps(center));
                __m256 diff1 = _mm256_sub_ps(r1, _mm256_loadu_ps(center + LANES));
                __m256 norm = _mm256_fmadd_ps(diff1, diff1, _mm256_fmadd_ps(diff0, diff0, _mm256_setzero_ps()));
                __m256 projection = _mm256_fmadd_ps(diff1, x1, _mm256_fmadd_ps(diff0, x0, _mm256_setzero_ps()));
                _mm256_storeu_ps(n + c * LANES, norm);
                _mm256_storeu_ps(p + c * LANES, projection);
            }
        } else {
            for (size_t c = 0; c < CENTERS; c++, center += 2 * LANES) {
                __m256 diff0 = _mm256_sub_ps(r0, _mm256_loadu_ps(center));
                __m256 diff1 = _mm256_sub_ps(r1, _mm256_loadu_ps(center + LANES));
                _mm256_storeu_ps(n + c * LANES, _mm256_fmadd_ps(diff1, diff1, _mm256_fmadd_ps(diff0, diff0, _mm256_setzero_ps())));
            }
        }
        return;
    }
    for (size_t c = 0; c < CENTERS; c++, center += dsub * LANES) {
        __m256 norm = _mm256_setzero_ps(), projection = _mm256_setzero_ps();
        for (size_t j = 0; j < dsub; j++) {
            __m256 diff = _mm256_sub_ps(_mm256_loadu_ps(r + j * padded + b * LANES), _mm256_loadu_ps(center + j * LANES));
            norm = _mm256_fmadd_ps(diff, diff, norm);
        }
        _mm256_storeu_ps(n + c * LANES, norm);
        if (!x) continue;
        for (size_t j = 0; j < dsub; j++) {
            __m256 diff = _mm256_sub_ps(_mm256_loadu_ps(r + j * padded + b * LANES), _mm256_loadu_ps(center + j * LANES));
            projection = _mm256_fmadd_ps(diff, _mm256_loadu_ps(x + j * padded + b * LANES), projection);
        }
        _mm256_storeu_ps(p + c * LANES, projection);
    }
}

QUIVER_TARGET_AVX2 static void avx2_tables(const float *r, const float *x, const float *book, size_t blocks,
                                           size_t dsub, float *norms, float *projections) {
    for (size_t b = 0; b < blocks; b++) {
        avx2_tables_block(r, x, book, blocks * LANES, b, dsub, norms + b * CENTERS * LANES, projections + b * CENTERS * LANES);
    }
}

QUIVER_INLINE_AVX2 float avx2_reduce8(__m256 v) {
    __m128 four = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));  // l0+l4, l1+l5, l2+l6, l3+l7
    __m128 two = _mm_add_ps(four, _mm_movehl_ps(four, four));                          // (l0+l4)+(l2+l6), (l1+l5)+(l3+l7)
    return _mm_cvtss_f32(_mm_add_ss(two, _mm_shuffle_ps(two, two, 1)));
}

QUIVER_INLINE_AVX2 void avx2_store_codes(__m256i codes32, uint8_t *codes) {
    // 8 × int32 (each < 16) to 8 bytes.
    __m128i packed = _mm_packs_epi32(_mm256_castsi256_si128(codes32), _mm256_extracti128_si256(codes32, 1));
    _mm_storel_epi64((__m128i *)codes, _mm_packus_epi16(packed, packed));
}

/// One block's nearest centers (μ = 0, no sums).
QUIVER_INLINE_AVX2 void avx2_nearest_block(const float *n, uint8_t *codes) {
    __m256 best_n = _mm256_loadu_ps(n);
    __m256i best = _mm256_setzero_si256();
    for (int c = 1; c < CENTERS; c++) {
        __m256 nc = _mm256_loadu_ps(n + c * LANES);
        __m256 lower = _mm256_cmp_ps(nc, best_n, _CMP_LT_OQ);
        best_n = _mm256_min_ps(nc, best_n);
        best = _mm256_blendv_epi8(best, _mm256_set1_epi32(c), _mm256_castps_si256(lower));
    }
    avx2_store_codes(best, codes);
}

/// One block's choice at μ (`m`), its chosen n and p added to the running lane sums.
QUIVER_INLINE_AVX2 void avx2_choose_block(const float *n, const float *p, __m256 m, uint8_t *codes,
                                          __m256 *squared_sum, __m256 *parallel_sum) {
    __m256 best_n = _mm256_loadu_ps(n), best_p = _mm256_loadu_ps(p);
    __m256 best_value = _mm256_fmadd_ps(m, best_p, best_n);
    __m256i best = _mm256_setzero_si256();
    for (int c = 1; c < CENTERS; c++) {
        __m256 nc = _mm256_loadu_ps(n + c * LANES), pc = _mm256_loadu_ps(p + c * LANES);
        __m256 value = _mm256_fmadd_ps(m, pc, nc);
        __m256 lower = _mm256_cmp_ps(value, best_value, _CMP_LT_OQ);
        best_value = _mm256_min_ps(value, best_value);
        best_n = _mm256_blendv_ps(best_n, nc, lower);
        best_p = _mm256_blendv_ps(best_p, pc, lower);
        best = _mm256_blendv_epi8(best, _mm256_set1_epi32(c), _mm256_castps_si256(lower));
    }
    *squared_sum = _mm256_add_ps(*squared_sum, best_n);
    *parallel_sum = _mm256_add_ps(*parallel_sum, best_p);
    avx2_store_codes(best, codes);
}

QUIVER_TARGET_AVX2 static void avx2_choose(const float *norms, const float *projections, size_t blocks, float mu,
                                           uint8_t *codes, float *squared, float *parallel) {
    if (!projections) {
        for (size_t b = 0; b < blocks; b++) avx2_nearest_block(norms + b * CENTERS * LANES, codes + b * LANES);
        return;
    }
    __m256 m = _mm256_set1_ps(mu);
    __m256 squared_sum = _mm256_setzero_ps(), parallel_sum = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        avx2_choose_block(norms + b * CENTERS * LANES, projections + b * CENTERS * LANES, m, codes + b * LANES,
                          &squared_sum, &parallel_sum);
    }
    *squared = avx2_reduce8(squared_sum);
    *parallel = avx2_reduce8(parallel_sum);
}

QUIVER_TARGET_AVX2 static void avx2_encode(const float *residual, const float *direction, float eta, const float *book,
                                           size_t m, size_t dsub, int steps, uint8_t *codes, float *scratch) {
    encode_with(avx2_tables, avx2_choose, residual, direction, eta, book, m, dsub, steps, codes, scratch);
}

// ---------------------------------------------------------------------------------------------
// AVX-512: pairs of blocks, 16 subspaces per register. The tables hold pair q as
// `[(q · 16 + center) · 16 + lane]` (lanes 8–15 the pair's second block) and an odd last block as
// the AVX2 path does; the lane sums take the first block, then the second, as AVX2 adds them.
// ---------------------------------------------------------------------------------------------

/// Two 8-float rows as one register (`first` in lanes 0–7).
QUIVER_INLINE_AVX512 __m512 avx512_pair(const float *first, const float *second) {
    __m512d low = _mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(first)));
    return _mm512_castpd_ps(_mm512_insertf64x4(low, _mm256_castps_pd(_mm256_loadu_ps(second)), 1));
}

QUIVER_INLINE_AVX512 __m256 avx512_high(__m512 v) {
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

QUIVER_TARGET_AVX512 static void avx512_tables(const float *r, const float *x, const float *book, size_t blocks,
                                               size_t dsub, float *norms, float *projections) {
    size_t padded = blocks * LANES, pairs = blocks / 2, block_floats = CENTERS * dsub * LANES;
    for (size_t q = 0; q < pairs; q++) {
        size_t b = 2 * q;
        const float *first = book + b * block_floats, *second = first + block_floats;
        float *n = norms + q * CENTERS * 2 * LANES, *p = projections + q * CENTERS * 2 * LANES;
        for (size_t c = 0; c < CENTERS; c++) {
            __m512 norm = _mm512_setzero_ps(), projection = _mm512_setzero_ps();
            for (size_t j = 0; j < dsub; j++) {
                __m512 center = avx512_pair(first + (c * dsub + j) * LANES, second + (c * dsub + j) * LANES);
                __m512 diff = _mm512_sub_ps(_mm512_loadu_ps(r + j * padded + b * LANES), center);
                norm = _mm512_fmadd_ps(diff, diff, norm);
                if (x) projection = _mm512_fmadd_ps(diff, _mm512_loadu_ps(x + j * padded + b * LANES), projection);
            }
            _mm512_storeu_ps(n + c * 2 * LANES, norm);
            if (x) _mm512_storeu_ps(p + c * 2 * LANES, projection);
        }
    }
    if (blocks % 2) {
        size_t tail = pairs * CENTERS * 2 * LANES;
        avx2_tables_block(r, x, book, padded, blocks - 1, dsub, norms + tail, projections + tail);
    }
}

QUIVER_TARGET_AVX512 static void avx512_choose(const float *norms, const float *projections, size_t blocks, float mu,
                                               uint8_t *codes, float *squared, float *parallel) {
    size_t pairs = blocks / 2, tail = pairs * CENTERS * 2 * LANES;
    if (!projections) {
        for (size_t q = 0; q < pairs; q++) {
            const float *n = norms + q * CENTERS * 2 * LANES;
            __m512 best_n = _mm512_loadu_ps(n);
            __m512i best = _mm512_setzero_si512();
            for (int c = 1; c < CENTERS; c++) {
                __m512 nc = _mm512_loadu_ps(n + c * 2 * LANES);
                __mmask16 lower = _mm512_cmp_ps_mask(nc, best_n, _CMP_LT_OQ);
                best_n = _mm512_min_ps(nc, best_n);
                best = _mm512_mask_mov_epi32(best, lower, _mm512_set1_epi32(c));
            }
            _mm_storeu_si128((__m128i *)(codes + q * 2 * LANES), _mm512_cvtepi32_epi8(best));
        }
        if (blocks % 2) avx2_nearest_block(norms + tail, codes + pairs * 2 * LANES);
        return;
    }
    __m512 m = _mm512_set1_ps(mu);
    __m256 squared_sum = _mm256_setzero_ps(), parallel_sum = _mm256_setzero_ps();
    for (size_t q = 0; q < pairs; q++) {
        const float *n = norms + q * CENTERS * 2 * LANES, *p = projections + q * CENTERS * 2 * LANES;
        __m512 best_n = _mm512_loadu_ps(n), best_p = _mm512_loadu_ps(p);
        __m512 best_value = _mm512_fmadd_ps(m, best_p, best_n);
        __m512i best = _mm512_setzero_si512();
        for (int c = 1; c < CENTERS; c++) {
            __m512 nc = _mm512_loadu_ps(n + c * 2 * LANES), pc = _mm512_loadu_ps(p + c * 2 * LANES);
            __m512 value = _mm512_fmadd_ps(m, pc, nc);
            __mmask16 lower = _mm512_cmp_ps_mask(value, best_value, _CMP_LT_OQ);
            best_value = _mm512_min_ps(value, best_value);
            best_n = _mm512_mask_mov_ps(best_n, lower, nc);
            best_p = _mm512_mask_mov_ps(best_p, lower, pc);
            best = _mm512_mask_mov_epi32(best, lower, _mm512_set1_epi32(c));
        }
        squared_sum = _mm256_add_ps(_mm256_add_ps(squared_sum, _mm512_castps512_ps256(best_n)), avx512_high(best_n));
        parallel_sum = _mm256_add_ps(_mm256_add_ps(parallel_sum, _mm512_castps512_ps256(best_p)), avx512_high(best_p));
        _mm_storeu_si128((__m128i *)(codes + q * 2 * LANES), _mm512_cvtepi32_epi8(best));
    }
    if (blocks % 2) {
        avx2_choose_block(norms + tail, projections + tail, _mm256_set1_ps(mu), codes + pairs * 2 * LANES,
                          &squared_sum, &parallel_sum);
    }
    *squared = avx2_reduce8(squared_sum);
    *parallel = avx2_reduce8(parallel_sum);
}

QUIVER_TARGET_AVX512 static void avx512_encode(const float *residual, const float *direction, float eta, const float *book,
                                               size_t m, size_t dsub, int steps, uint8_t *codes, float *scratch) {
    encode_with(avx512_tables, avx512_choose, residual, direction, eta, book, m, dsub, steps, codes, scratch);
}

#endif

void quiver_pq4_encode_isa(quiver_isa isa, const float *residual, const float *direction, float eta, const float *book,
                           size_t m, size_t dsub, int steps, uint8_t *codes, float *scratch) {
#if QUIVER_X86
    // Nearest centers only (no direction): one pass, where assembling pairs of blocks costs
    // more than it saves (0.64 µs against AVX2's 0.54 µs at m = 192).
    int score_aware = direction && eta > 1 && steps > 0;
    if (quiver_runnable_isa(isa) == QUIVER_ISA_AVX512 && score_aware) {
        avx512_encode(residual, direction, eta, book, m, dsub, steps, codes, scratch);
        return;
    }
    if (quiver_isa_has_avx2(quiver_runnable_isa(isa))) {
        avx2_encode(residual, direction, eta, book, m, dsub, steps, codes, scratch);
        return;
    }
#endif
    scalar_encode(residual, direction, eta, book, m, dsub, steps, codes, scratch);
}

void quiver_pq4_encode(const float *residual, const float *direction, float eta, const float *book, size_t m,
                       size_t dsub, int steps, uint8_t *codes, float *scratch) {
    quiver_pq4_encode_isa(quiver_best_isa(), residual, direction, eta, book, m, dsub, steps, codes, scratch);
}
