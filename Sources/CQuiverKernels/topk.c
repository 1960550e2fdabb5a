#include "kernels_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if QUIVER_X86
#include <immintrin.h>
#endif

// With dedupe, an open-addressing index (linear probing, load ≤ 1/2) maps each held id to its
// heap slot, and every entry remembers its index position, so finding a held id, moving an
// entry and evicting one are O(1): a linear search of the heap on every push cost 5× at a
// capacity of 1,000 and 50× at 10,000.

int32_t quiver_topk_room(int32_t capacity) {
    return capacity >= QUIVER_TOPK_RESERVOIR_MIN && capacity <= INT32_MAX / 2 ? 2 * capacity : capacity;
}

size_t quiver_topk_index_size(int32_t room) {
    size_t size = 16;
    while (size < 2 * (size_t)(room > 0 ? room : 0)) size *= 2;
    return size;
}

static inline int is_reservoir(const quiver_topk *heap) { return heap->room > heap->capacity; }

void quiver_topk_init(quiver_topk *heap, int32_t capacity, int32_t room, float *distances, int64_t *ids,
                      int32_t *dedupe_index, int32_t *positions, const int64_t *tie_keys) {
    heap->distances = distances;
    heap->ids = ids;
    heap->size = 0;
    heap->capacity = capacity;
    heap->room = room > capacity ? room : capacity;
    heap->cut = INFINITY;
    heap->cut_tie = INT64_MAX;
    heap->index = dedupe_index;
    heap->positions = positions;
    heap->index_mask = dedupe_index ? (int32_t)quiver_topk_index_size(heap->room) - 1 : 0;
    heap->tie_keys = tie_keys;
    if (dedupe_index) {
        for (int32_t i = 0; i <= heap->index_mask; i++) dedupe_index[i] = -1;
    }
}

void quiver_topk_clear(quiver_topk *heap) {
    if (heap->index) {
        for (int32_t i = 0; i < heap->size; i++) heap->index[heap->positions[i]] = -1;
    }
    heap->size = 0;
    heap->cut = INFINITY;
    heap->cut_tie = INT64_MAX;
}

float quiver_topk_threshold(const quiver_topk *heap) {
    // A zero-capacity heap can never accept anything; -inf lets scans prune every vector.
    if (heap->capacity <= 0) return -INFINITY;
    if (is_reservoir(heap)) return heap->cut;
    if (heap->size < heap->capacity) return INFINITY;
    return heap->distances[0];
}

static inline int64_t tie_key(const quiver_topk *heap, int64_t id) {
    return heap->tie_keys ? heap->tie_keys[id] : id;
}

// (distance, tie key) order; entries never hold NaN, so plain comparisons are a total order.
// Ranking ties by id (or by the external id of a row) makes the kept set independent of the
// order candidates arrive in, so a sharded search that merges by id returns exactly what one
// heap over everything returns.
static inline int after(const quiver_topk *heap, float distance, int64_t id, int32_t slot) {
    if (distance != heap->distances[slot]) return distance > heap->distances[slot];
    return tie_key(heap, id) > tie_key(heap, heap->ids[slot]);
}

static inline uint32_t home(const quiver_topk *heap, int64_t id) {
    return (uint32_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 32) & (uint32_t)heap->index_mask;
}

/// The index position holding `id`, or (found = 0) the empty position where it would go.
static inline int32_t index_find(const quiver_topk *heap, int64_t id, int *found) {
    uint32_t mask = (uint32_t)heap->index_mask;
    for (uint32_t p = home(heap, id);; p = (p + 1) & mask) {
        int32_t slot = heap->index[p];
        if (slot < 0) {
            *found = 0;
            return (int32_t)p;
        }
        if (heap->ids[slot] == id) {
            *found = 1;
            return (int32_t)p;
        }
    }
}

/// Empties index position `hole`, shifting later entries of its probe run back so that every
/// lookup still finds them (no tombstones).
static void index_remove(quiver_topk *heap, int32_t hole) {
    uint32_t mask = (uint32_t)heap->index_mask;
    uint32_t empty = (uint32_t)hole;
    for (uint32_t p = (empty + 1) & mask;; p = (p + 1) & mask) {
        int32_t slot = heap->index[p];
        if (slot < 0) break;
        // The entry at p may fill the hole unless its home lies cyclically in (empty, p].
        uint32_t start = home(heap, heap->ids[slot]);
        if (((p - start) & mask) >= ((p - empty) & mask)) {
            heap->index[empty] = slot;
            heap->positions[slot] = (int32_t)empty;
            empty = p;
        }
    }
    heap->index[empty] = -1;
}

static inline void move_entry(quiver_topk *heap, int32_t from, int32_t to) {
    heap->distances[to] = heap->distances[from];
    heap->ids[to] = heap->ids[from];
    if (heap->index) {
        int32_t position = heap->positions[from];
        heap->positions[to] = position;
        heap->index[position] = to;
    }
}

static inline void put_entry(quiver_topk *heap, int32_t slot, float distance, int64_t id, int32_t position) {
    heap->distances[slot] = distance;
    heap->ids[slot] = id;
    if (heap->index) {
        heap->positions[slot] = position;
        heap->index[position] = slot;
    }
}

/// Places (distance, id) at hole `i` or above it.
static void sift_up(quiver_topk *heap, int32_t i, float distance, int64_t id, int32_t position) {
    while (i > 0) {
        int32_t parent = (i - 1) / 2;
        if (!after(heap, distance, id, parent)) break;
        move_entry(heap, parent, i);
        i = parent;
    }
    put_entry(heap, i, distance, id, position);
}

/// Places (distance, id) at hole `i` or below it, in a heap of `size` slots.
static void sift_down(quiver_topk *heap, int32_t i, int32_t size, float distance, int64_t id, int32_t position) {
    for (;;) {
        int32_t child = 2 * i + 1;
        if (child >= size) break;
        int32_t right = child + 1;
        if (right < size) {
            int right_after = heap->distances[right] != heap->distances[child]
                ? heap->distances[right] > heap->distances[child]
                : tie_key(heap, heap->ids[right]) > tie_key(heap, heap->ids[child]);
            if (right_after) child = right;
        }
        // Stop when the entry being placed ranks after (or equal to) the larger child.
        if (heap->distances[child] != distance ? heap->distances[child] < distance
                                               : tie_key(heap, heap->ids[child]) <= tie_key(heap, id)) {
            break;
        }
        move_entry(heap, child, i);
        i = child;
    }
    put_entry(heap, i, distance, id, position);
}

// ---------------------------------------------------------------------------------------------
// Reservoir: entries that beat the cut are appended (with dedupe, a held id only lowers its
// distance, in place); when the storage is full the best `capacity` are selected, the rest
// dropped, and the cut moves to the worst kept. Everything dropped had `capacity` distinct
// entries ahead of it, and held entries only improve, so nothing dropped or refused can belong
// to the final set: the reservoir keeps what the heap keeps, at O(1) amortised per entry taken
// instead of a sift through log2(capacity) levels with unpredictable branches.
// ---------------------------------------------------------------------------------------------

typedef struct {
    int64_t key;
    int32_t slot;
} tied_entry;

static int compare_tied(const void *a, const void *b) {
    int64_t x = ((const tied_entry *)a)->key, y = ((const tied_entry *)b)->key;
    return (x > y) - (x < y);
}

/// Keeps the best `capacity` entries and cuts after the worst of them. The capacity-th smallest
/// distance comes from quiver_smallest (branch-free SIMD counting); entries below it stay, and
/// of those equal to it the ones with the smallest tie keys; the survivors move to the front in
/// slot order.
static void reservoir_compact(quiver_topk *heap) {
    int32_t n = heap->size, k = heap->capacity;
    if (n <= k) return;
    // Scratch on the stack for the sizes scans use, on the heap beyond.
    enum { STACK_ROOM = 1024 };
    int32_t stack_indices[STACK_ROOM];
    float stack_scratch[STACK_ROOM + 16];
    uint8_t stack_keep[STACK_ROOM];
    int large = n > STACK_ROOM;
    int32_t *indices = large ? malloc((size_t)k * sizeof(int32_t)) : stack_indices;
    float *scratch = large ? malloc(((size_t)n + 16) * sizeof(float)) : stack_scratch;
    uint8_t *keep = large ? malloc((size_t)n) : stack_keep;

    quiver_smallest(heap->distances, (size_t)n, (size_t)k, indices, scratch);
    float kth = heap->distances[indices[0]];
    for (int32_t j = 1; j < k; j++) {
        if (heap->distances[indices[j]] > kth) kth = heap->distances[indices[j]];
    }
    // Branch-free passes: which entries stay is as unpredictable as a coin.
    int32_t below = 0, equal = 0;
    for (int32_t i = 0; i < n; i++) {
        uint8_t under = heap->distances[i] < kth;
        keep[i] = under;
        below += under;
        equal += heap->distances[i] == kth;
    }
    int32_t need = k - below;
    int64_t cut_tie = INT64_MIN;
    if (equal <= need) {
        for (int32_t i = 0; i < n; i++) {
            if (heap->distances[i] == kth) {
                keep[i] = 1;
                int64_t key = tie_key(heap, heap->ids[i]);
                if (key > cut_tie) cut_tie = key;
            }
        }
    } else {
        // More entries at the k-th distance than places: the smallest tie keys win.
        tied_entry *ties = malloc((size_t)equal * sizeof(tied_entry));
        int32_t count = 0;
        for (int32_t i = 0; i < n; i++) {
            if (heap->distances[i] == kth) ties[count++] = (tied_entry){tie_key(heap, heap->ids[i]), i};
        }
        qsort(ties, (size_t)count, sizeof(tied_entry), compare_tied);
        for (int32_t j = 0; j < need; j++) keep[ties[j].slot] = 1;
        cut_tie = ties[need - 1].key;
        free(ties);
    }
    if (heap->index) {
        for (int32_t i = 0; i < n; i++) heap->index[heap->positions[i]] = -1;
    }
    int32_t kept = 0;
    for (int32_t i = 0; i < n; i++) {
        // Written whether it stays or not (kept ≤ i: only slots already read are overwritten).
        heap->distances[kept] = heap->distances[i];
        heap->ids[kept] = heap->ids[i];
        kept += keep[i];
    }
    if (heap->index) {
        for (int32_t i = 0; i < kept; i++) {
            int found;
            int32_t position = index_find(heap, heap->ids[i], &found);
            heap->positions[i] = position;
            heap->index[position] = i;
        }
    }
    heap->size = kept;
    heap->cut = kth;
    heap->cut_tie = cut_tie;
    if (large) {
        free(indices);
        free(scratch);
        free(keep);
    }
}

/// With dedupe, the slot holding `id` (−1 if none) and its index position (or where it would
/// go); without, −1 and position 0.
static inline int32_t held_slot(const quiver_topk *heap, int64_t id, int32_t *position) {
    *position = 0;
    if (!heap->index) return -1;
    int found;
    *position = index_find(heap, id, &found);
    return found ? heap->index[*position] : -1;
}

static int reservoir_push(quiver_topk *heap, float distance, int64_t id) {
    if (distance == heap->cut && tie_key(heap, id) >= heap->cut_tie) return 0;
    int32_t position;
    int32_t held = held_slot(heap, id, &position);
    if (held >= 0) {
        if (!(distance < heap->distances[held])) return 0;
        heap->distances[held] = distance;
        return 1;
    }
    put_entry(heap, heap->size++, distance, id, position);
    if (heap->size == heap->room) reservoir_compact(heap);
    return 1;
}

void quiver_topk_settle(quiver_topk *heap) {
    if (is_reservoir(heap)) reservoir_compact(heap);
}

int quiver_topk_push(quiver_topk *heap, float distance, int64_t id) {
    // Any change needs distance <= threshold: a held entry's distance is at most the threshold,
    // so improving it implies that too. This also keeps NaN out.
    if (heap->capacity <= 0 || !(distance <= quiver_topk_threshold(heap))) return 0;
    if (is_reservoir(heap)) return reservoir_push(heap, distance, id);
    int32_t position;
    int32_t held = held_slot(heap, id, &position);
    if (held >= 0) {
        if (!(distance < heap->distances[held])) return 0;
        // A smaller key only ever moves towards the leaves.
        sift_down(heap, held, heap->size, distance, id, position);
        return 1;
    }
    if (heap->size < heap->capacity) {
        heap->size++;
        sift_up(heap, heap->size - 1, distance, id, position);
        return 1;
    }
    // Full: enter only ahead of the worst entry in (distance, tie key) order.
    if (distance == heap->distances[0] && tie_key(heap, id) >= tie_key(heap, heap->ids[0])) return 0;
    if (heap->index) {
        index_remove(heap, heap->positions[0]);
        int found;
        position = index_find(heap, id, &found);
    }
    sift_down(heap, 0, heap->size, distance, id, position);
    return 1;
}

/// Unsigned order of these keys is float order (−0 made +0 first); no NaN is ever held.
static inline uint32_t unsigned_order_key(float value) {
    value += 0.0f;
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

/// Sorts `keys[0..n)` ascending with `spare` of n: insertion-sorted runs of 8, then branch-free
/// bottom-up merges (the comparisons of a top-k's final sort are unpredictable, which is what
/// made heapsort's sift-downs slow).
static void sort_keys(uint64_t *keys, uint64_t *spare, int32_t n) {
    for (int32_t start = 0; start < n; start += 8) {
        int32_t end = start + 8 < n ? start + 8 : n;
        for (int32_t i = start + 1; i < end; i++) {
            uint64_t key = keys[i];
            int32_t j = i;
            for (; j > start && keys[j - 1] > key; j--) keys[j] = keys[j - 1];
            keys[j] = key;
        }
    }
    uint64_t *from = keys, *to = spare;
    for (int32_t width = 8; width < n; width *= 2) {
        for (int32_t low = 0; low < n; low += 2 * width) {
            int32_t middle = low + width < n ? low + width : n;
            int32_t high = low + 2 * width < n ? low + 2 * width : n;
            int32_t i = low, j = middle, out = low;
            while (i < middle && j < high) {
                uint64_t left = from[i], right = from[j];
                int take_right = right < left;
                to[out++] = take_right ? right : left;
                j += take_right;
                i += !take_right;
            }
            while (i < middle) to[out++] = from[i++];
            while (j < high) to[out++] = from[j++];
        }
        uint64_t *swap = from;
        from = to;
        to = swap;
    }
    if (from != keys) memcpy(keys, from, (size_t)n * sizeof *keys);
}

/// The largest reservoir sorted by keys on the stack (16 bytes an entry); larger ones heapsort.
#define QUIVER_TOPK_KEY_SORT_MAX 2048

/// Sorts a settled reservoir by (distance, tie key): (order key, slot) pairs sorted as integers,
/// runs of equal distance put in tie-key order, then the entries moved to their ranks through
/// the reservoir's free upper half (a settled reservoir holds at most half its room).
static void reservoir_sort(quiver_topk *heap) {
    int32_t n = heap->size;
    uint64_t keys[QUIVER_TOPK_KEY_SORT_MAX], spare[QUIVER_TOPK_KEY_SORT_MAX];
    for (int32_t i = 0; i < n; i++) keys[i] = (uint64_t)unsigned_order_key(heap->distances[i]) << 32 | (uint32_t)i;
    sort_keys(keys, spare, n);
    for (int32_t start = 0; start < n;) {
        int32_t end = start + 1;
        while (end < n && (keys[end] >> 32) == (keys[start] >> 32)) end++;
        for (int32_t i = start + 1; i < end; i++) {
            uint64_t key = keys[i];
            int64_t tie = tie_key(heap, heap->ids[(uint32_t)key]);
            int32_t j = i;
            for (; j > start && tie_key(heap, heap->ids[(uint32_t)keys[j - 1]]) > tie; j--) keys[j] = keys[j - 1];
            keys[j] = key;
        }
        start = end;
    }
    float *old_distances = heap->distances + n;
    int64_t *old_ids = heap->ids + n;
    memcpy(old_distances, heap->distances, (size_t)n * sizeof *old_distances);
    memcpy(old_ids, heap->ids, (size_t)n * sizeof *old_ids);
    int32_t *old_positions = heap->index ? heap->positions + n : NULL;
    if (old_positions) memcpy(old_positions, heap->positions, (size_t)n * sizeof *old_positions);
    for (int32_t rank = 0; rank < n; rank++) {
        uint32_t slot = (uint32_t)keys[rank];
        put_entry(heap, rank, old_distances[slot], old_ids[slot], old_positions ? old_positions[slot] : 0);
    }
}

void quiver_topk_sort(quiver_topk *heap) {
    // A reservoir first settles to its kept set, then sorts by integer keys. A heap (or a huge
    // reservoir) heapsorts in place, no allocation. The rebuild is linear and makes sorting an
    // already sorted (no longer heap-ordered) array safe. Entries keep their index positions,
    // so a sorted top-k can still be cleared in O(size).
    quiver_topk_settle(heap);
    int32_t n = heap->size;
    if (is_reservoir(heap) && n <= QUIVER_TOPK_KEY_SORT_MAX && 2 * n <= heap->room) {
        reservoir_sort(heap);
        return;
    }
    for (int32_t i = n / 2 - 1; i >= 0; i--) {
        sift_down(heap, i, n, heap->distances[i], heap->ids[i], heap->index ? heap->positions[i] : 0);
    }
    for (int32_t end = n - 1; end > 0; end--) {
        float distance = heap->distances[end];
        int64_t id = heap->ids[end];
        int32_t position = heap->index ? heap->positions[end] : 0;
        move_entry(heap, 0, end);
        sift_down(heap, 0, end, distance, id, position);
    }
}

// ---------------------------------------------------------------------------------------------
// Selecting the k smallest of a row at once (candidate lists when assigning vectors)
// ---------------------------------------------------------------------------------------------

/// The value of rank `k` (0-based) among `values[0..n)`, found by quickselect; `values` is permuted.
static float select_rank(float *values, size_t n, size_t k) {
    size_t low = 0, high = n - 1;
    while (low < high) {
        float pivot = values[low + (high - low) / 2];
        size_t i = low, j = high;
        while (i <= j) {
            while (values[i] < pivot) i++;
            while (values[j] > pivot) j--;
            if (i <= j) {
                float t = values[i];
                values[i] = values[j];
                values[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) {
            high = j;
        } else if (k >= i) {
            low = i;
        } else {
            return values[k];
        }
    }
    return values[k];
}

/// Writes, in ascending index order, every index whose value is below `kth` and then — still in
/// index order, merged — the first `k - below` whose value equals it. Shared by every path.
static size_t collect_scalar(const float *values, size_t n, size_t k, float kth, int32_t *indices) {
    size_t below = 0;
    for (size_t i = 0; i < n; i++) below += values[i] < kth;
    size_t equal_quota = k - below, count = 0;
    for (size_t i = 0; i < n; i++) {
        if (values[i] < kth || (values[i] == kth && equal_quota > 0 && (equal_quota--, 1))) {
            indices[count++] = (int32_t)i;
        }
    }
    return count;
}

static size_t scalar_smallest(const float *values, size_t n, size_t k, int32_t *indices, float *scratch) {
    for (size_t i = 0; i < n; i++) scratch[i] = values[i];
    return collect_scalar(values, n, k, select_rank(scratch, n, k - 1), indices);
}

#if QUIVER_X86

// The SIMD paths find the k-th smallest by bisection on order-preserving integer keys — a
// float's bits, flipped so that signed integer order is float order (−0 is made +0 first, so
// equal floats have equal keys) — counting the keys at or below a bound with vector compares:
// branch-free passes over the row instead of quickselect's unpredictable branches. A bound with
// exactly k keys at or below it ends the search early: the k-th is then the largest of them.


/// The smallest key with at least k keys at or below it (the k-th smallest), given the range.
#define BISECT_KTH(count_at_most, largest_at_most)                                                \
    while (low < high) {                                                                        \
        int32_t middle = (int32_t)(((int64_t)low + (int64_t)high) >> 1);                         \
        size_t at_most = count_at_most(keys, n, middle);                                        \
        if (at_most == k) return largest_at_most(keys, n, middle);                              \
        if (at_most > k) high = middle; else low = middle + 1;                                  \
    }                                                                                           \
    return low;

QUIVER_TARGET_AVX2 static inline __m256i avx2_order_keys(__m256 v) {
    __m256i bits = _mm256_castps_si256(_mm256_add_ps(v, _mm256_setzero_ps()));
    return _mm256_xor_si256(bits, _mm256_and_si256(_mm256_srai_epi32(bits, 31), _mm256_set1_epi32(0x7FFFFFFF)));
}

QUIVER_TARGET_AVX2 static size_t avx2_count_at_most(const int32_t *keys, size_t n, int32_t bound) {
    __m256i b = _mm256_set1_epi32(bound);
    size_t count = 0;
    for (size_t i = 0; i < n; i += 8) {  // n is padded to a multiple of 8 with INT32_MAX
        __m256i above = _mm256_cmpgt_epi32(_mm256_loadu_si256((const __m256i *)(keys + i)), b);
        count += 8 - (size_t)__builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(above)));
    }
    return count;
}

QUIVER_TARGET_AVX2 static int32_t avx2_largest_at_most(const int32_t *keys, size_t n, int32_t bound) {
    __m256i b = _mm256_set1_epi32(bound), best = _mm256_set1_epi32(INT32_MIN);
    for (size_t i = 0; i < n; i += 8) {
        __m256i key = _mm256_loadu_si256((const __m256i *)(keys + i));
        best = _mm256_max_epi32(best, _mm256_blendv_epi8(key, best, _mm256_cmpgt_epi32(key, b)));
    }
    int32_t lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, best);
    int32_t largest = lanes[0];
    for (int i = 1; i < 8; i++) largest = lanes[i] > largest ? lanes[i] : largest;
    return largest;
}

QUIVER_TARGET_AVX2 static int32_t avx2_kth_key(const float *values, size_t n, size_t k, int32_t *keys) {
    __m256i lows_v = _mm256_set1_epi32(INT32_MAX), highs_v = _mm256_set1_epi32(INT32_MIN);
    size_t padded = (n + 7) & ~(size_t)7;
    for (size_t i = 0; i < padded; i += 8) {
        __m256 v;
        if (i + 8 <= n) {
            v = _mm256_loadu_ps(values + i);
        } else {
            float tail[8];
            for (size_t j = 0; j < 8; j++) tail[j] = values[i + j < n ? i + j : n - 1];
            v = _mm256_loadu_ps(tail);
        }
        __m256i key = avx2_order_keys(v);
        _mm256_storeu_si256((__m256i *)(keys + i), key);
        lows_v = _mm256_min_epi32(lows_v, key);
        highs_v = _mm256_max_epi32(highs_v, key);
    }
    int32_t lows[8], highs[8];
    _mm256_storeu_si256((__m256i *)lows, lows_v);
    _mm256_storeu_si256((__m256i *)highs, highs_v);
    int32_t lo = lows[0], hi = highs[0];
    for (int i = 1; i < 8; i++) {
        lo = lows[i] < lo ? lows[i] : lo;
        hi = highs[i] > hi ? highs[i] : hi;
    }
    // The padding holds INT32_MAX, above every bound the search tries (no float's key is that).
    for (size_t i = n; i < padded; i++) keys[i] = INT32_MAX;
    int32_t low = lo, high = hi;
    n = padded;
    BISECT_KTH(avx2_count_at_most, avx2_largest_at_most)
}

QUIVER_TARGET_AVX512 static inline __m512i avx512_order_keys(__m512 v) {
    __m512i bits = _mm512_castps_si512(_mm512_add_ps(v, _mm512_setzero_ps()));
    return _mm512_xor_si512(bits, _mm512_and_si512(_mm512_srai_epi32(bits, 31), _mm512_set1_epi32(0x7FFFFFFF)));
}

QUIVER_TARGET_AVX512 static size_t avx512_count_at_most(const int32_t *keys, size_t n, int32_t bound) {
    __m512i b = _mm512_set1_epi32(bound);
    size_t count = 0;
    for (size_t i = 0; i < n; i += 16) {  // n is padded to a multiple of 16 with INT32_MAX
        count += (size_t)__builtin_popcount((unsigned)_mm512_cmple_epi32_mask(_mm512_loadu_si512(keys + i), b));
    }
    return count;
}

QUIVER_TARGET_AVX512 static int32_t avx512_largest_at_most(const int32_t *keys, size_t n, int32_t bound) {
    __m512i b = _mm512_set1_epi32(bound), best = _mm512_set1_epi32(INT32_MIN);
    for (size_t i = 0; i < n; i += 16) {
        __m512i key = _mm512_loadu_si512(keys + i);
        best = _mm512_mask_max_epi32(best, _mm512_cmple_epi32_mask(key, b), best, key);
    }
    return _mm512_reduce_max_epi32(best);
}

QUIVER_TARGET_AVX512 static int32_t avx512_kth_key(const float *values, size_t n, size_t k, int32_t *keys) {
    __m512i lows = _mm512_set1_epi32(INT32_MAX), highs = _mm512_set1_epi32(INT32_MIN);
    size_t padded = (n + 15) & ~(size_t)15;
    for (size_t i = 0; i < padded; i += 16) {
        __mmask16 live = i + 16 <= n ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512i key = avx512_order_keys(_mm512_maskz_loadu_ps(live, values + i));
        lows = _mm512_mask_min_epi32(lows, live, lows, key);
        highs = _mm512_mask_max_epi32(highs, live, highs, key);
        // The padding holds INT32_MAX, above every bound the search tries (no float's key is that).
        _mm512_storeu_si512(keys + i, _mm512_mask_blend_epi32(live, _mm512_set1_epi32(INT32_MAX), key));
    }
    int32_t low = _mm512_reduce_min_epi32(lows), high = _mm512_reduce_max_epi32(highs);
    n = padded;
    BISECT_KTH(avx512_count_at_most, avx512_largest_at_most)
}

/// collect_scalar over the keys, with vector compares and a walk over the set bits of each mask.
#define COLLECT_KEYS(lanes, below_mask, equal_mask)                                             \
    size_t below = 0;                                                                           \
    for (size_t i = 0; i < padded; i += lanes) below += (size_t)__builtin_popcount(below_mask(i)); \
    size_t equal_quota = k - below, count = 0;                                                  \
    for (size_t i = 0; i < padded; i += lanes) {                                                \
        unsigned take = below_mask(i), equal = equal_quota > 0 ? equal_mask(i) : 0;             \
        while (equal && equal_quota > 0) {                                                      \
            take |= equal & (0u - equal);                                                       \
            equal &= equal - 1;                                                                 \
            equal_quota--;                                                                      \
        }                                                                                       \
        while (take) {                                                                          \
            indices[count++] = (int32_t)(i + (size_t)__builtin_ctz(take));                      \
            take &= take - 1;                                                                   \
        }                                                                                       \
    }                                                                                           \
    return count;

QUIVER_TARGET_AVX2 static size_t avx2_smallest(const float *values, size_t n, size_t k, int32_t *indices, int32_t *keys) {
    size_t padded = (n + 7) & ~(size_t)7;
    __m256i kth = _mm256_set1_epi32(avx2_kth_key(values, n, k, keys));
#define AVX2_KEYS(i) _mm256_loadu_si256((const __m256i *)(keys + (i)))
#define AVX2_BELOW(i) (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(kth, AVX2_KEYS(i))))
#define AVX2_EQUAL(i) (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(kth, AVX2_KEYS(i))))
    COLLECT_KEYS(8, AVX2_BELOW, AVX2_EQUAL)
#undef AVX2_KEYS
#undef AVX2_BELOW
#undef AVX2_EQUAL
}

QUIVER_TARGET_AVX512 static size_t avx512_smallest(const float *values, size_t n, size_t k, int32_t *indices, int32_t *keys) {
    size_t padded = (n + 15) & ~(size_t)15;
    __m512i kth = _mm512_set1_epi32(avx512_kth_key(values, n, k, keys));
#define AVX512_BELOW(i) (unsigned)_mm512_cmplt_epi32_mask(_mm512_loadu_si512(keys + (i)), kth)
#define AVX512_EQUAL(i) (unsigned)_mm512_cmpeq_epi32_mask(_mm512_loadu_si512(keys + (i)), kth)
    COLLECT_KEYS(16, AVX512_BELOW, AVX512_EQUAL)
#undef AVX512_BELOW
#undef AVX512_EQUAL
}

#undef COLLECT_KEYS
#undef BISECT_KTH

#endif

size_t quiver_smallest_isa(quiver_isa isa, const float *values, size_t n, size_t k, int32_t *indices, float *scratch) {
    if (k > n) k = n;
    if (k == 0) return 0;
    if (k == n) {
        for (size_t i = 0; i < n; i++) indices[i] = (int32_t)i;
        return n;
    }
    switch (quiver_runnable_isa(isa)) {
#if QUIVER_X86
    case QUIVER_ISA_AVX512: return avx512_smallest(values, n, k, indices, (int32_t *)scratch);
    case QUIVER_ISA_AVX2: return avx2_smallest(values, n, k, indices, (int32_t *)scratch);
#endif
    default: return scalar_smallest(values, n, k, indices, scratch);
    }
}

size_t quiver_smallest(const float *values, size_t n, size_t k, int32_t *indices, float *scratch) {
    return quiver_smallest_isa(quiver_best_isa(), values, n, k, indices, scratch);
}
