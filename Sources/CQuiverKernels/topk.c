#include "kernels_internal.h"

#include <math.h>

// With dedupe, an open-addressing index (linear probing, load ≤ 1/2) maps each held id to its
// heap slot, and every entry remembers its index position, so finding a held id, moving an
// entry and evicting one are O(1): a linear search of the heap on every push cost 5× at a
// capacity of 1,000 and 50× at 10,000.

size_t quiver_topk_index_size(int32_t capacity) {
    size_t size = 16;
    while (size < 2 * (size_t)(capacity > 0 ? capacity : 0)) size *= 2;
    return size;
}

void quiver_topk_init(quiver_topk *heap, int32_t capacity, float *distances, int64_t *ids,
                      int32_t *dedupe_index, int32_t *positions, const int64_t *tie_keys) {
    heap->distances = distances;
    heap->ids = ids;
    heap->size = 0;
    heap->capacity = capacity;
    heap->index = dedupe_index;
    heap->positions = positions;
    heap->index_mask = dedupe_index ? (int32_t)quiver_topk_index_size(capacity) - 1 : 0;
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
}

float quiver_topk_threshold(const quiver_topk *heap) {
    if (heap->size < heap->capacity) return INFINITY;
    // A zero-capacity heap can never accept anything; -inf lets scans prune every vector.
    if (heap->capacity <= 0) return -INFINITY;
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

int quiver_topk_push(quiver_topk *heap, float distance, int64_t id) {
    // Any change needs distance <= threshold: a held entry's distance is at most the threshold,
    // so improving it implies that too. This also keeps NaN out.
    if (heap->capacity <= 0 || !(distance <= quiver_topk_threshold(heap))) return 0;
    int32_t position = 0;
    if (heap->index) {
        int found;
        position = index_find(heap, id, &found);
        if (found) {
            int32_t slot = heap->index[position];
            if (!(distance < heap->distances[slot])) return 0;
            // A smaller key only ever moves towards the leaves.
            sift_down(heap, slot, heap->size, distance, id, position);
            return 1;
        }
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

void quiver_topk_sort(quiver_topk *heap) {
    // Heapsort in place, no allocation. The rebuild is linear and makes sorting an already
    // sorted (no longer heap-ordered) array safe. Entries keep their index positions, so a
    // sorted heap can still be cleared in O(size).
    int32_t n = heap->size;
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

static inline int pair_before(const float *values, int32_t a, int32_t b) {
    return values[a] != values[b] ? values[a] < values[b] : a < b;
}

size_t quiver_smallest(const float *values, size_t n, size_t k, int32_t *indices, float *scratch) {
    if (k > n) k = n;
    if (k == 0) return 0;
    size_t count = 0;
    if (k == n) {
        for (size_t i = 0; i < n; i++) indices[count++] = (int32_t)i;
    } else {
        for (size_t i = 0; i < n; i++) scratch[i] = values[i];
        float kth = select_rank(scratch, n, k - 1);
        for (size_t i = 0; i < n; i++) {
            if (values[i] < kth) indices[count++] = (int32_t)i;
        }
        for (size_t i = 0; i < n && count < k; i++) {
            if (values[i] == kth) indices[count++] = (int32_t)i;
        }
    }
    // Insertion sort: k is small (tens) where this is used.
    for (size_t i = 1; i < count; i++) {
        int32_t moving = indices[i];
        size_t j = i;
        while (j > 0 && pair_before(values, moving, indices[j - 1])) {
            indices[j] = indices[j - 1];
            j--;
        }
        indices[j] = moving;
    }
    return count;
}
