/* One decoding step's host work for a batch of sequences, in one call that releases the GIL.
 *
 * For each logits row j in [lo, hi) (sequence slot slots[j]):
 *   1. the row's log-sum-exp (float32 differences, float64 sum), for the sample's log-probability
 *      under the raw logits (perplexity needs no second forward pass);
 *   2. the sampling order of the LOGOS reference pipeline, as engine/runtime/sampling.py's
 *      sample_batch does it in numpy: repetition penalty on the tokens the sequence has seen,
 *      temperature, top-k (ties at the k-th score kept), top-p, min-p, then one inverse-CDF draw;
 *   3. the draw's uniform number comes from the slot's PCG64 state (numpy's default generator:
 *      128-bit LCG, XSL-RR output, 53-bit doubles), so a job draws the same numbers here and in
 *      the numpy fallback (engine.runtime.sampling), which gives the same samples.
 *
 * No Python objects are touched while the GIL is released: all inputs are buffers held by the
 * caller for the duration of the call. Written for LOGOS Desktop; the algorithms (PCG64 from
 * O'Neill 2014, Cody-Waite range reduction for exp) are textbook. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include <windows.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

/* ------------------------------------------------------------------ PCG64 (numpy's layout) */
/* state words: [state_hi, state_lo, inc_hi, inc_lo] */
static const uint64_t PCG_MUL_HI = 0x2360ED051FC65DA4ULL;
static const uint64_t PCG_MUL_LO = 0x4385DF649FCCF645ULL;

static void mul_64x64(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo) {
    uint64_t a0 = a & 0xFFFFFFFFULL, a1 = a >> 32, b0 = b & 0xFFFFFFFFULL, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFULL) + (p10 & 0xFFFFFFFFULL);
    *lo = (mid << 32) | (p00 & 0xFFFFFFFFULL);
    *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

static void pcg_step(uint64_t *s);

static double pcg64_double(uint64_t *s) {
    pcg_step(s);
    uint64_t hi = s[0], nlo = s[1];
    uint64_t x = hi ^ nlo;
    unsigned rot = (unsigned)(hi >> 58);
    x = (x >> rot) | (x << ((64 - rot) & 63));
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

/* numpy.random.default_rng(seed)'s PCG64 state for a seed below 2^64, as numpy makes it: the
 * seed's 32-bit words mixed into a pool of four by SeedSequence (O'Neill's hash-based seed
 * sequence), four 64-bit words drawn from the pool, then PCG64's seeding (state 0, increment
 * from words 2-3, one step, add words 0-1, one step). Constants from numpy's SeedSequence. */
static uint32_t ss_hashmix(uint32_t value, uint32_t *hash_const) {
    value ^= *hash_const;
    *hash_const *= 0x931e8875u;
    value *= *hash_const;
    value ^= value >> 16;
    return value;
}

static uint32_t ss_mix(uint32_t x, uint32_t y) {
    uint32_t r = 0xca01f9ddu * x - 0x4973f715u * y;
    return r ^ (r >> 16);
}

static void pcg_step(uint64_t *s) {  /* state = state * MUL + inc (mod 2^128) */
    uint64_t hi, lo;
    mul_64x64(s[1], PCG_MUL_LO, &hi, &lo);
    hi += s[0] * PCG_MUL_LO + s[1] * PCG_MUL_HI;
    uint64_t nlo = lo + s[3];
    hi += s[2] + (nlo < lo);
    s[0] = hi;
    s[1] = nlo;
}

static void pcg64_seed_state(uint64_t seed, uint64_t *out) {
    uint32_t entropy[2];
    int n_entropy = 0;
    entropy[n_entropy++] = (uint32_t)seed;
    if (seed >> 32) entropy[n_entropy++] = (uint32_t)(seed >> 32);
    uint32_t pool[4], hc = 0x43b0d7e5u;
    for (int i = 0; i < 4; i++) pool[i] = ss_hashmix(i < n_entropy ? entropy[i] : 0u, &hc);
    for (int src = 0; src < 4; src++)
        for (int dst = 0; dst < 4; dst++)
            if (src != dst) pool[dst] = ss_mix(pool[dst], ss_hashmix(pool[src], &hc));
    uint32_t words[8], hb = 0x8b51f9ddu;
    for (int i = 0; i < 8; i++) {
        uint32_t v = pool[i % 4] ^ hb;
        hb *= 0x58f38dedu;
        v *= hb;
        words[i] = v ^ (v >> 16);
    }
    uint64_t w[4];
    for (int i = 0; i < 4; i++) w[i] = (uint64_t)words[2 * i] | ((uint64_t)words[2 * i + 1] << 32);
    /* initstate = w0:w1 (high:low), initseq = w2:w3; inc = initseq << 1 | 1 */
    out[0] = 0;
    out[1] = 0;
    out[2] = (w[2] << 1) | (w[3] >> 63);
    out[3] = (w[3] << 1) | 1u;
    pcg_step(out);
    uint64_t lo = out[1] + w[1];
    out[0] += w[0] + (lo < out[1]);
    out[1] = lo;
    pcg_step(out);
}

/* ------------------------------------------------------------------ log-sum-exp */
/* exp(x) for x <= 0 in float32: Cody-Waite reduction by ln 2 and a degree-6 polynomial (relative
 * error about 2e-7); no library call, so the loop vectorises. */
static inline float exp_neg(float x) {
    x = (x > -87.0f) ? x : -87.0f;  /* also NaN (a broken row), which must not reach the int conversion */
    float t = x * 1.44269504088896341f;
    float n = (float)(int)(t - 0.5f);  /* round to nearest for t <= 0 */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static float row_max(const float *x, Py_ssize_t n) {
    float mk[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) mk[k] = x[i + k] > mk[k] ? x[i + k] : mk[k];
    float m = -INFINITY;
    for (int k = 0; k < 8; k++) m = mk[k] > m ? mk[k] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static double row_sum_exp(const float *x, Py_ssize_t n, float m) {
    /* eight float partial sums per block, each block added in double: vectorisable, and the
     * float partials sum at most 64 terms <= 1 before they are moved to the double total */
    double total = 0.0;
    Py_ssize_t i = 0;
    while (i < n) {
        Py_ssize_t end = i + 512 < n ? i + 512 : n;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        Py_ssize_t j = i;
        for (; j + 8 <= end; j += 8)
            for (int k = 0; k < 8; k++) acc[k] += exp_neg(x[j + k] - m);
        for (; j < end; j++) acc[0] += exp_neg(x[j] - m);
        for (int k = 0; k < 8; k++) total += acc[k];
        i = end;
    }
    return total;
}

/* ------------------------------------------------------------------ AVX2 (x86-64, chosen at run time)
 * The same arithmetic eight lanes at a time: the same operations in the same order (no fused
 * multiply-add), so both paths give bit-identical sums, and a job gives the same log-probabilities
 * on every x86 machine. GCC does not vectorise row_sum_exp by itself with -mavx2. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define LOGOS_AVX2 1
#include <immintrin.h>

__attribute__((target("avx2"))) static float row_max_avx2(const float *x, Py_ssize_t n) {
    /* four running maxima (no chain of dependent max instructions; the maximum is the same) */
    __m256 mk = _mm256_set1_ps(-INFINITY), m1 = mk, m2 = mk, m3 = mk;
    Py_ssize_t i = 0;
    for (; i + 32 <= n; i += 32) {  /* x > m ? x : m */
        mk = _mm256_max_ps(_mm256_loadu_ps(x + i), mk);
        m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), m1);
        m2 = _mm256_max_ps(_mm256_loadu_ps(x + i + 16), m2);
        m3 = _mm256_max_ps(_mm256_loadu_ps(x + i + 24), m3);
    }
    for (; i + 8 <= n; i += 8) mk = _mm256_max_ps(_mm256_loadu_ps(x + i), mk);
    mk = _mm256_max_ps(_mm256_max_ps(m1, mk), _mm256_max_ps(m3, m2));
    float lanes[8];
    _mm256_storeu_ps(lanes, mk);
    float m = -INFINITY;
    for (int k = 0; k < 8; k++) m = lanes[k] > m ? lanes[k] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

__attribute__((target("avx2"))) static inline __m256 exp_neg8(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));  /* (x > -87) ? x : -87, NaN too */
    __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f));
    __m256i ni = _mm256_cvttps_epi32(_mm256_sub_ps(t, _mm256_set1_ps(0.5f)));
    __m256 n = _mm256_cvtepi32_ps(ni);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r), _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

__attribute__((target("avx2"))) static double row_sum_exp_avx2(const float *x, Py_ssize_t n, float m) {
    double total = 0.0;
    __m256 mv = _mm256_set1_ps(m);
    Py_ssize_t i = 0;
    while (i < n) {
        Py_ssize_t end = i + 512 < n ? i + 512 : n;
        __m256 acc = _mm256_setzero_ps();
        Py_ssize_t j = i;
        for (; j + 8 <= end; j += 8) acc = _mm256_add_ps(acc, exp_neg8(_mm256_sub_ps(_mm256_loadu_ps(x + j), mv)));
        float lanes[8];
        _mm256_storeu_ps(lanes, acc);
        for (; j < end; j++) lanes[0] += exp_neg(x[j] - m);
        for (int k = 0; k < 8; k++) total += lanes[k];
        i = end;
    }
    return total;
}

/* the first block of 16 at or after i (a multiple of 16) whose largest score may reach thr,
 * as skip_blocks below */
__attribute__((target("avx2"))) static Py_ssize_t skip_blocks_avx2(const float *row, Py_ssize_t i, Py_ssize_t V,
                                                                   float thr, double rp, float rp_f) {
    for (; i + 16 <= V; i += 16) {
        __m256 m8 = _mm256_max_ps(_mm256_loadu_ps(row + i), _mm256_loadu_ps(row + i + 8));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
        float bm = _mm_cvtss_f32(m4);
        if (rp < 1.0) bm = bm > 0 ? bm / rp_f * 1.000001f : bm * rp_f * 0.999999f;
        if (!(bm < thr)) return i;
    }
    return i;
}

static int use_avx2 = 0;  /* set at import where the CPU has AVX2; _stepper.simd() reports and sets it */
#endif

static double row_lse(const float *x, Py_ssize_t n) {
#ifdef LOGOS_AVX2
    if (use_avx2) {
        float m = row_max_avx2(x, n);
        if (!isfinite(m)) return (double)m;
        return (double)m + log(row_sum_exp_avx2(x, n, m));
    }
#endif
    float m = row_max(x, n);
    if (!isfinite(m)) return (double)m;
    return (double)m + log(row_sum_exp(x, n, m));
}

/* ------------------------------------------------------------------ sampling */
typedef struct {
    float s;     /* score after penalty (and temperature, once chosen) */
    int32_t id;  /* token id */
} cand_t;

/* (score descending, id ascending): the order of sample_batch's candidates */
static int cand_cmp(const void *a, const void *b) {
    const cand_t *x = (const cand_t *)a, *y = (const cand_t *)b;
    if (x->s > y->s) return -1;
    if (x->s < y->s) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* candidates in that order: insertion sort up to about a hundred (no comparator calls) */
static void sort_candidates(cand_t *c, Py_ssize_t m) {
    if (m > 96) {
        qsort(c, (size_t)m, sizeof(cand_t), cand_cmp);
        return;
    }
    for (Py_ssize_t i = 1; i < m; i++) {
        cand_t x = c[i];
        Py_ssize_t j = i;
        while (j > 0 && (c[j - 1].s < x.s || (c[j - 1].s == x.s && c[j - 1].id > x.id))) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = x;
    }
}

static inline float penalized(float x, int seen, double rp) {
    if (!seen) return x;
    return x < 0 ? (float)((double)x * rp) : (float)((double)x / rp);
}

static inline float block16_max(const float *x) {
    float m[4] = {x[0], x[1], x[2], x[3]};
    for (int b = 4; b < 16; b += 4)
        for (int k = 0; k < 4; k++) m[k] = x[b + k] > m[k] ? x[b + k] : m[k];
    float a = m[0] > m[1] ? m[0] : m[1], c = m[2] > m[3] ? m[2] : m[3];
    return a > c ? a : c;
}

/* From block start i (a multiple of 16), the first block of 16 whose largest possible score
 * (after a penalty below 1, which can raise a score) may reach thr; V rounded down to 16 when none.
 * A NaN in a block never enters the heap: skipping past it or not gives the same candidates. */
static Py_ssize_t skip_blocks(const float *row, Py_ssize_t i, Py_ssize_t V, float thr, double rp, float rp_f) {
#ifdef LOGOS_AVX2
    if (use_avx2) return skip_blocks_avx2(row, i, V, thr, rp, rp_f);
#endif
    for (; i + 16 <= V; i += 16) {
        float bm = block16_max(row + i);
        if (rp < 1.0) bm = bm > 0 ? bm / rp_f * 1.000001f : bm * rp_f * 0.999999f;
        if (!(bm < thr)) return i;
    }
    return i;
}

/* min-heap of k floats (the k largest seen so far; heap[0] is the smallest of them) */
static void heap_sift_down(float *h, Py_ssize_t k, Py_ssize_t i) {
    for (;;) {
        Py_ssize_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && h[l] < h[m]) m = l;
        if (r < k && h[r] < h[m]) m = r;
        if (m == i) return;
        float t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

typedef struct {
    double rp, temp, top_p, min_p;
    Py_ssize_t top_k;
} params_t;

/* float <-> a uint32 whose unsigned order is the float order (-0 taken as +0; no NaN) */
static inline uint32_t float_key(float f) {
    f += 0.0f;  /* -0 -> +0 */
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static inline float key_float(uint32_t k) {
    uint32_t u = (k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* k-th largest of a[0..n) (k from 1, n >= k), a byte of the key at a time (a radix select): per
 * byte, a count of the keys that share the bytes found so far, by the value of this byte; the
 * k-th largest's byte is where the counts from the top reach k. No branch depends on the data
 * inside the loops over a (quickselect mispredicted about every other comparison). No NaN in a;
 * a is left as it is. */
static float kth_largest(const float *a, Py_ssize_t n, Py_ssize_t k) {
    uint32_t prefix = 0, mask = 0;
    Py_ssize_t want = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        uint32_t count[256] = {0};
        for (Py_ssize_t i = 0; i < n; i++) {
            uint32_t key = float_key(a[i]);
            count[(key >> shift) & 255u] += (key & mask) == prefix;
        }
        int b = 255;
        for (; b > 0 && count[b] < (uint32_t)want; b--) want -= count[b];
        prefix |= (uint32_t)b << shift;
        mask |= 255u << shift;
        if (count[b] == 1 && shift > 0) {  /* one key has these bytes: it is the k-th largest */
            uint32_t found = 0;
            for (Py_ssize_t i = 0; i < n; i++) {
                uint32_t key = float_key(a[i]);
                found = ((key & mask) == prefix) ? key : found;
            }
            return key_float(found);
        }
    }
    return key_float(prefix);
}

/* The k-th largest penalized score of a row (before temperature), first way: a threshold from
 * every stride-th score (about 256 of them), set so that about 1.5 k scores of the row reach it;
 * one pass keeps those in `work` (the pool), and the k-th is selected among them. Exact whenever
 * the pool holds at least k scores (then the row's k-th largest is at or above the threshold);
 * returns 0 otherwise, or when the sample is too sparse for k, and the heap takes over. Used up to
 * 16k tokens: beyond, the heap's skipping of whole blocks is faster than a full second pass. */
static int kth_by_sample(const float *row, Py_ssize_t V, const uint8_t *seen, double rp, Py_ssize_t k,
                         cand_t *work, float *scratch, Py_ssize_t *pool_out, float *kth_out) {
    if (V > 16384) return 0;
    Py_ssize_t stride = V / 256 > 1 ? V / 256 : 1;
    Py_ssize_t S = V / stride;
    Py_ssize_t r = (3 * k * S + 2 * V - 1) / (2 * V);  /* ceil(1.5 k S / V) */
    if (r < 1) r = 1;
    if (r >= S || 4 * k > S * stride) return 0;
    for (Py_ssize_t t = 0; t < S; t++) {
        Py_ssize_t i = t * stride;
        float s = penalized(row[i], seen ? seen[i] : 0, rp);
        scratch[t] = s == s ? s : -INFINITY;
    }
    float tau = kth_largest(scratch, S, r);
    if (!(tau > -INFINITY)) return 0;
    Py_ssize_t pool = 0, cap = 8 * k + 64;
    for (Py_ssize_t i = 0; i < V; i++) {  /* written every time, kept when it reaches tau: no branch */
        float s = penalized(row[i], seen ? seen[i] : 0, rp);
        work[pool].s = s;
        work[pool].id = (int32_t)i;
        pool += s >= tau;
    }
    if (pool > cap) return 0;  /* far more than expected (many ties): the heap instead */
    if (pool < k) return 0;
    for (Py_ssize_t c = 0; c < pool; c++) scratch[c] = work[c].s;
    *kth_out = kth_largest(scratch, pool, k);
    *pool_out = pool;
    return 1;
}

/* The same with a min-heap of k scores over the whole row. Every score that enters the heap is
 * also kept in `work`: the heap's minimum only grows, so `work` holds every score at or above
 * the final k-th one (and some below). Returns 0 when fewer than k scores are usable (NaN). */
static int kth_by_heap(const float *row, Py_ssize_t V, const uint8_t *seen, double rp, Py_ssize_t k,
                       cand_t *work, float *heap, Py_ssize_t *pool_out, float *kth_out) {
    float rp_f = (float)rp;
    Py_ssize_t filled = 0, pool = 0, checked = -1;
    for (Py_ssize_t i = 0; i < V; i++) {
        if (filled == k && (i & 15) == 0 && i + 16 <= V && i != checked) {
            /* skip the blocks of 16 whose largest possible score cannot enter the heap */
            Py_ssize_t j = skip_blocks(row, i, V, heap[0], rp, rp_f);
            checked = j;  /* block j may hold a candidate: its elements are looked at one by one */
            if (j > i) { i = j - 1; continue; }
        }
        float s = penalized(row[i], seen ? seen[i] : 0, rp);
        if (filled < k) {
            if (s != s) continue;  /* NaN: never a candidate */
            Py_ssize_t c = filled++;
            heap[c] = s;
            while (c > 0) {
                Py_ssize_t up = (c - 1) / 2;
                if (heap[up] <= heap[c]) break;
                float t = heap[up]; heap[up] = heap[c]; heap[c] = t;
                c = up;
            }
        } else if (s >= heap[0]) {
            if (s > heap[0]) {
                heap[0] = s;
                heap_sift_down(heap, k, 0);
            }
        } else {
            continue;
        }
        work[pool].s = s;
        work[pool].id = (int32_t)i;
        pool++;
    }
    if (filled < k) return 0;
    *kth_out = heap[0];
    *pool_out = pool;
    return 1;
}

/* The sampler's work buffers for rows of V logits (freed by scratch_free, also half-made). */
typedef struct {
    cand_t *work;    /* V candidates */
    float *heap;     /* top_k scores */
    float *scratch;  /* V + 8 floats */
    double *probs;   /* V probabilities */
    float *pen;      /* V + 8 floats: the penalized row */
    float *pool_s;   /* V + 8 floats: the scores that reach the threshold (top-k's first cut) */
    int32_t *pool_id;  /* V + 8 ids, theirs */
    int32_t *cut_id;   /* V + 8 ids: the pool cut down to about k */
    int32_t *rank;     /* V: where each of those goes */
} scratch_t;

static int scratch_alloc(scratch_t *w, Py_ssize_t V, Py_ssize_t top_k) {
    Py_ssize_t hk = (top_k > 0 && top_k < V) ? top_k : 1;
    w->work = (cand_t *)malloc((size_t)V * sizeof(cand_t));
    w->heap = (float *)malloc((size_t)hk * sizeof(float));
    w->scratch = (float *)malloc((size_t)(V + 8) * sizeof(float));
    w->probs = (double *)malloc((size_t)V * sizeof(double));
    w->pen = (float *)malloc((size_t)(V + 8) * sizeof(float));
    w->pool_s = (float *)malloc((size_t)(V + 8) * sizeof(float));
    w->pool_id = (int32_t *)malloc((size_t)(V + 8) * sizeof(int32_t));
    w->cut_id = (int32_t *)malloc((size_t)(V + 8) * sizeof(int32_t));
    w->rank = (int32_t *)malloc((size_t)V * sizeof(int32_t));
    if (w->work && w->heap && w->scratch && w->probs && w->pen && w->pool_s && w->pool_id && w->cut_id && w->rank)
        return 1;
    PyErr_NoMemory();
    return 0;
}

static void scratch_free(scratch_t *w) {
    free(w->work);
    free(w->heap);
    free(w->scratch);
    free(w->probs);
    free(w->pen);
    free(w->pool_s);
    free(w->pool_id);
    free(w->cut_id);
    free(w->rank);
}

/* ------------------------------------------------------------------ top-k of a short row
 * The usual case (a vocabulary of up to 16k, top-k up to about 60) in four short passes, none
 * with a branch that depends on the scores: the penalized row; a threshold that about 1.5 k of
 * the row reach, by bisection on every stride-th score; the scores at or above it (the pool);
 * the pool sorted by counting, for each score, the scores ahead of it. Gives the candidates that
 * the general way below gives, in the same order (the tests compare both ways). */
#define TOPK_POOL_MAX 160  /* a larger pool takes the general way: the counting sort is quadratic */

/* the row with the repetition penalty applied: the row itself when nothing is penalized */
static const float *penalize_row(const float *row, Py_ssize_t V, const uint8_t *seen, double rp, float *out) {
    if (!seen || rp == 1.0) return row;
    Py_ssize_t i = 0;
    for (; i + 8 <= V; i += 8) {
        uint64_t any;
        memcpy(&any, seen + i, sizeof any);
        if (!any) {
            memcpy(out + i, row + i, 8 * sizeof(float));
            continue;
        }
        for (int b = 0; b < 8; b++) out[i + b] = penalized(row[i + b], seen[i + b], rp);
    }
    for (; i < V; i++) out[i] = penalized(row[i], seen[i], rp);
    return out;
}

static Py_ssize_t count_ge_portable(const float *a, Py_ssize_t n, float t) {
    Py_ssize_t c = 0;
    for (Py_ssize_t i = 0; i < n; i++) c += a[i] >= t;
    return c;
}

/* the scores a[i] >= t (NaN never) moved to out_s, their ids (id[i], or i where id is NULL) to
 * out_id, in order (both need n + 8 room); returns their number */
static Py_ssize_t compress_ge_portable(const float *a, const int32_t *id, Py_ssize_t n, float t, float *out_s,
                                       int32_t *out_id) {
    Py_ssize_t c = 0;
    for (Py_ssize_t i = 0; i < n; i++) {  /* written every time, kept when it reaches t */
        out_s[c] = a[i];
        out_id[c] = id ? id[i] : (int32_t)i;
        c += a[i] >= t;
    }
    return c;
}

/* where each of x[0..n) goes in the order (score descending, index ascending): the number of
 * scores above it plus the equal ones before it. x[n..n+8) must be NaN (never counted). */
static void rank_scatter_portable(const float *x, const int32_t *id, Py_ssize_t n, cand_t *out) {
    for (Py_ssize_t i = 0; i < n; i++) {
        float v = x[i];
        Py_ssize_t r = 0;
        for (Py_ssize_t j = 0; j < n; j++) r += (x[j] > v) + ((x[j] == v) & (j < i));
        out[r].s = v;
        out[r].id = id[i];
    }
}

#ifdef LOGOS_AVX2
static int32_t compress_lut[256][8];  /* for a mask of 8 lanes: the set lanes' numbers, in order */

static void compress_lut_init(void) {
    for (int m = 0; m < 256; m++) {
        int c = 0;
        for (int b = 0; b < 8; b++) if (m & (1 << b)) compress_lut[m][c++] = b;
        for (; c < 8; c++) compress_lut[m][c] = 0;
    }
}

__attribute__((target("avx2"))) static Py_ssize_t count_ge_avx2(const float *a, Py_ssize_t n, float t) {
    __m256 tv = _mm256_set1_ps(t);
    __m256i acc = _mm256_setzero_si256();
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_sub_epi32(acc, _mm256_castps_si256(_mm256_cmp_ps(_mm256_loadu_ps(a + i), tv, _CMP_GE_OQ)));
    int32_t lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, acc);
    Py_ssize_t c = 0;
    for (int b = 0; b < 8; b++) c += lanes[b];
    for (; i < n; i++) c += a[i] >= t;
    return c;
}

__attribute__((target("avx2,popcnt"))) static Py_ssize_t compress_ge_avx2(const float *a, const int32_t *id,
                                                                           Py_ssize_t n, float t, float *out_s,
                                                                           int32_t *out_id) {
    __m256 tv = _mm256_set1_ps(t);
    __m256i ids = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), eight = _mm256_set1_epi32(8);
    Py_ssize_t c = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(a + i);
        int mask = _mm256_movemask_ps(_mm256_cmp_ps(v, tv, _CMP_GE_OQ));
        __m256i perm = _mm256_loadu_si256((const __m256i *)compress_lut[mask]);
        _mm256_storeu_ps(out_s + c, _mm256_permutevar8x32_ps(v, perm));
        __m256i iv = id ? _mm256_loadu_si256((const __m256i *)(id + i)) : ids;
        _mm256_storeu_si256((__m256i *)(out_id + c), _mm256_permutevar8x32_epi32(iv, perm));
        c += __builtin_popcount((unsigned)mask);
        ids = _mm256_add_epi32(ids, eight);
    }
    for (; i < n; i++) {
        out_s[c] = a[i];
        out_id[c] = id ? id[i] : (int32_t)i;
        c += a[i] >= t;
    }
    return c;
}

/* as rank_scatter_portable; returns 0 (nothing written) where two scores are equal, which this
 * faster count of the scores above each one cannot order */
__attribute__((target("avx2"))) static int rank_scatter_avx2(const float *x, const int32_t *id, Py_ssize_t n,
                                                             cand_t *out, int32_t *rank) {
    Py_ssize_t nb = (n + 7) / 8;  /* x[n..n+8) is NaN: the last block's extra lanes count nowhere */
    int64_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        __m256 vv = _mm256_set1_ps(x[i]);
        __m256i gt = _mm256_setzero_si256();
        for (Py_ssize_t b = 0; b < nb; b++)
            gt = _mm256_sub_epi32(gt, _mm256_castps_si256(_mm256_cmp_ps(_mm256_loadu_ps(x + 8 * b), vv, _CMP_GT_OQ)));
        int32_t g[8];
        _mm256_storeu_si256((__m256i *)g, gt);
        rank[i] = g[0] + g[1] + g[2] + g[3] + g[4] + g[5] + g[6] + g[7];
        total += rank[i];
    }
    /* distinct scores rank 0 .. n-1; equal ones share a rank, and the ranks sum to less */
    if (total != (int64_t)n * (n - 1) / 2) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        out[rank[i]].s = x[i];
        out[rank[i]].id = id[i];
    }
    return 1;
}
#endif

static Py_ssize_t count_ge(const float *a, Py_ssize_t n, float t) {
#ifdef LOGOS_AVX2
    if (use_avx2) return count_ge_avx2(a, n, t);
#endif
    return count_ge_portable(a, n, t);
}

static Py_ssize_t compress_ge(const float *a, const int32_t *id, Py_ssize_t n, float t, float *out_s,
                              int32_t *out_id) {
#ifdef LOGOS_AVX2
    if (use_avx2) return compress_ge_avx2(a, id, n, t, out_s, out_id);
#endif
    return compress_ge_portable(a, id, n, t, out_s, out_id);
}

static void rank_scatter(const float *x, const int32_t *id, Py_ssize_t n, cand_t *out, int32_t *rank) {
#ifdef LOGOS_AVX2
    if (use_avx2 && rank_scatter_avx2(x, id, n, out, rank)) return;
#else
    (void)rank;
#endif
    rank_scatter_portable(x, id, n, out);
}

/* Top-k (ties at the k-th kept) after penalty and temperature T, as sample_one's general way
 * keeps them: every token whose score after temperature is finite and reaches the k-th largest
 * score after temperature, sorted (score descending, id ascending), in w->work. Returns their
 * number, or -1 where this way does not apply (the general way then runs). */
static Py_ssize_t topk_short_row(const float *row, Py_ssize_t V, const uint8_t *seen, double rp, Py_ssize_t k,
                                 float T, scratch_t *w) {
    if (V > 16384 || 2 * k > TOPK_POOL_MAX || !(T > 0.0f) || !isfinite(T)) return -1;
    Py_ssize_t stride = V / 256 > 1 ? V / 256 : 1;
    Py_ssize_t S = V / stride;
    Py_ssize_t r = (3 * k * S + 2 * V - 1) / (2 * V);  /* ceil(1.5 k S / V): about 1.5 k of the row */
    if (r < 1) r = 1;
    if (r >= S || 4 * k > S * stride) return -1;
    Py_ssize_t r_hi = r + r / 4;
    const float *pen = penalize_row(row, V, seen, rp, w->pen);
    float *samp = w->scratch, top = -INFINITY;
    for (Py_ssize_t t = 0; t < S; t++) {
        float v = pen[t * stride];
        v = v == v ? v : -INFINITY;
        samp[t] = v;
        top = v > top ? v : top;
    }
    if (!isfinite(top)) return -1;
    /* the threshold: lo with at least r of the sample at or above it, hi with fewer */
    float lo = top, hi = top;
    Py_ssize_t c_lo = count_ge(samp, S, top);
    if (c_lo < r) {
        float span = 8.0f;
        for (;;) {
            lo = top - span;
            c_lo = count_ge(samp, S, lo);
            if (c_lo >= r) break;
            hi = lo;
            if ((span *= 4.0f) > 1e6f) return -1;
        }
        for (int it = 0; it < 24 && c_lo > r_hi; it++) {
            float mid = lo + 0.5f * (hi - lo);
            if (!(mid > lo && mid < hi)) break;
            Py_ssize_t c = count_ge(samp, S, mid);
            if (c >= r) { lo = mid; c_lo = c; } else hi = mid;
        }
    }
    float tau = lo;
    Py_ssize_t n = compress_ge(pen, NULL, V, tau, w->pool_s, w->pool_id);
    if (n < k || n > TOPK_POOL_MAX) return -1;  /* too few for k (then tau may be above the k-th) or too many */
    /* every score of the row at or above tau is in the pool, and at least k are: the k-th largest
     * of the row is in it. The same after temperature, which keeps the order. */
    float *st = w->pool_s;
    float lo2 = INFINITY, hi2 = -INFINITY;
    for (Py_ssize_t i = 0; i < n; i++) {
        st[i] = st[i] / T;
        lo2 = st[i] < lo2 ? st[i] : lo2;
        hi2 = st[i] > hi2 ? st[i] : hi2;
    }
    /* the pool cut to about k by a second bisection, after temperature (so that every score that
     * division merges with the k-th stays): the counting sort is quadratic */
    const int32_t *ids = w->pool_id;
    if (isfinite(lo2) && isfinite(hi2) && count_ge(st, n, hi2) < k) {
        Py_ssize_t c_lo2 = n;
        for (int it = 0; it < 24 && c_lo2 > k + 2; it++) {
            float mid = lo2 + 0.5f * (hi2 - lo2);
            if (!(mid > lo2 && mid < hi2)) break;
            Py_ssize_t c = count_ge(st, n, mid);
            if (c >= k) { lo2 = mid; c_lo2 = c; } else hi2 = mid;
        }
        if (c_lo2 < n) {
            n = compress_ge(st, w->pool_id, n, lo2, w->scratch, w->cut_id);
            st = w->scratch;
            ids = w->cut_id;
        }
    }
    for (int b = 0; b < 8; b++) st[n + b] = NAN;
    cand_t *out = w->work;
    rank_scatter(st, ids, n, out, w->rank);
    float kth_t = out[k - 1].s;
    Py_ssize_t m = k;
    while (m < n && out[m].s == kth_t) m++;
    /* scores under tau that division by T merges with the k-th (only when the float just
     * under tau still reaches it): from the row, then sorted in (rare) */
    if (nextafterf(tau, -INFINITY) / T >= kth_t) {
        Py_ssize_t m0 = m;
        for (Py_ssize_t i = 0; i < V; i++) {
            float s = pen[i];
            if (s < tau) {
                float q = s / T;
                if (q >= kth_t) { out[m].s = q; out[m].id = (int32_t)i; m++; }
            }
        }
        if (m > m0) sort_candidates(out, m);
    }
    /* only finite scores are candidates: +inf sorts first, -inf last */
    Py_ssize_t first = 0, last = m;
    while (first < last && out[first].s == INFINITY) first++;
    while (last > first && out[last - 1].s == -INFINITY) last--;
    if (first > 0) memmove(out, out + first, (size_t)(last - first) * sizeof(cand_t));
    return last - first;
}

/* What a row's draw needs once the sampling chain has run (row_dist): greedy rows and rows with
 * no finite candidate have their token (kind 0: no uniform drawn; kind 1: one drawn, unused);
 * the others (kind 2) their kept candidates, in order, and probabilities (in w's buffers). */
typedef struct {
    int kind;
    int32_t tok;
    Py_ssize_t keep;
    double total;   /* the kept probabilities' sum (the draw's scale) */
    double lse;     /* the raw row's log-sum-exp (log-probabilities) */
    const cand_t *cand;
    const double *probs;
} dist_t;

static void row_dist(const float *row, Py_ssize_t V, const uint8_t *seen, const params_t *p, scratch_t *w,
                     dist_t *d);

/* One draw from a row's distribution with the slot's PCG64 state: returns the token; *lp = its
 * log-probability under the raw logits. */
static int32_t draw_dist(const dist_t *d, const float *row, uint64_t *state, double *lp) {
    if (d->kind != 2) {
        if (d->kind == 1) (void)pcg64_double(state);
        *lp = (double)row[d->tok] - d->lse;
        return d->tok;
    }
    double u = pcg64_double(state);
    double cdf = 0.0;
    Py_ssize_t pos = 0;
    for (Py_ssize_t i = 0; i < d->keep; i++) {
        cdf += d->probs[i];
        if (cdf / d->total <= u) pos = i + 1; else break;
    }
    if (pos > d->keep - 1) pos = d->keep - 1;
    int32_t tok = d->cand[pos].id;
    *lp = (double)row[tok] - d->lse;
    return tok;
}

/* One row: returns the token; *lp = its log-probability under the raw logits. w: the buffers
 * (see scratch_t). */
static int32_t sample_one(const float *row, Py_ssize_t V, const uint8_t *seen, const params_t *p,
                          uint64_t *state, scratch_t *w, double *lp) {
    dist_t d;
    row_dist(row, V, seen, p, w, &d);
    return draw_dist(&d, row, state, lp);
}

/* The sampling chain on one row: penalty, temperature, top-k, top-p, min-p (its candidates and
 * probabilities in w->work and w->probs), as sample_batch does in numpy. */
static void row_dist(const float *row, Py_ssize_t V, const uint8_t *seen, const params_t *p, scratch_t *w,
                     dist_t *d) {
    cand_t *work = w->work;
    float *heap = w->heap, *scratch = w->scratch;
    double *probs = w->probs;
    double lse = row_lse(row, V);
    d->lse = lse;
    d->cand = work;
    d->probs = probs;
    if (p->temp == 0.0) {  /* greedy: first index of the largest penalized score */
        float best = -INFINITY;
        int32_t tok = 0;
        int any = 0;
        for (Py_ssize_t i = 0; i < V; i++) {
            float s = penalized(row[i], seen ? seen[i] : 0, p->rp);
            if (!any || s > best) { best = s; tok = (int32_t)i; any = 1; }
        }
        d->kind = 0;
        d->tok = tok;
        return;
    }
    float T = (float)p->temp;
    Py_ssize_t k = (p->top_k > 0 && p->top_k < V) ? p->top_k : V;
    Py_ssize_t m = 0;
    int sorted = 0;
    if (k < V && (m = topk_short_row(row, V, seen, p->rp, k, T, w)) >= 0) {
        sorted = 1;
    } else if (k < V) {
        m = 0;
        Py_ssize_t pool = 0;
        float kth = 0.0f;
        int found = kth_by_sample(row, V, seen, p->rp, k, work, scratch, &pool, &kth);
        if (!found) found = kth_by_heap(row, V, seen, p->rp, k, work, heap, &pool, &kth);
        if (!found) {
            k = V;  /* fewer usable scores than k: all of them are candidates */
        } else {
            /* Keep every token whose score AFTER temperature reaches the k-th score after
             * temperature (as numpy does). Dividing by a positive temperature keeps the order but
             * can merge scores a few ulps apart: those just below the k-th raw score count too. */
            float kth_t = kth / T;
            for (Py_ssize_t c = 0; c < pool; c++) {  /* compacted in place without a branch (m <= c) */
                cand_t w = work[c];
                float st = w.s / T;
                int keep = (w.s >= kth) & (isfinite(st) != 0);
                work[m].s = st;
                work[m].id = w.id;
                m += keep;
            }
            /* scores under the k-th that division merges with it (only when the next float
             * below the k-th does). Division by T > 0 is monotonic, so all of them are at or
             * above `low`, the smallest float whose quotient is still kth_t: the scan of the row
             * skips every block whose largest score is under it (none where a few dozen floats
             * below the k-th still merge, an extreme temperature). */
            if (nextafterf(kth, -INFINITY) / T == kth_t) {
                float low = nextafterf(kth, -INFINITY);
                int steps = 0;
                for (float below = nextafterf(low, -INFINITY); below / T == kth_t; below = nextafterf(below, -INFINITY)) {
                    low = below;
                    if (++steps == 64) { low = -INFINITY; break; }
                }
                float rp_f = (float)p->rp;
                Py_ssize_t checked = -1;
                for (Py_ssize_t i = 0; i < V; i++) {
                    if ((i & 15) == 0 && i + 16 <= V && i != checked) {
                        Py_ssize_t j = skip_blocks(row, i, V, low, p->rp, rp_f);
                        checked = j;
                        if (j > i) { i = j - 1; continue; }
                    }
                    float s = penalized(row[i], seen ? seen[i] : 0, p->rp);
                    if (s < kth) {
                        float st = s / T;
                        if (st >= kth_t && isfinite(st)) { work[m].s = st; work[m].id = (int32_t)i; m++; }
                    }
                }
            }
        }
    }
    if (k >= V) {
        m = 0;
        for (Py_ssize_t i = 0; i < V; i++) {
            float st = penalized(row[i], seen ? seen[i] : 0, p->rp) / T;
            if (isfinite(st)) { work[m].s = st; work[m].id = (int32_t)i; m++; }
        }
    }
    if (m == 0) {  /* nothing finite: the raw argmax, as the numpy fallback does */
        Py_ssize_t best = 0;
        for (Py_ssize_t i = 1; i < V; i++) if (row[i] > row[best]) best = i;
        d->kind = 1;
        d->tok = (int32_t)best;
        return;
    }
    if (!sorted) sort_candidates(work, m);
    double top = (double)work[0].s, sum = 0.0;
    for (Py_ssize_t i = 0; i < m; i++) { probs[i] = exp((double)work[i].s - top); sum += probs[i]; }
    for (Py_ssize_t i = 0; i < m; i++) probs[i] /= sum;
    Py_ssize_t keep = m;
    if (p->top_p < 1.0) {
        double cum = 0.0;
        Py_ssize_t first = m;
        for (Py_ssize_t i = 0; i < m; i++) {
            cum += probs[i];
            if (cum >= p->top_p) { first = i + 1; break; }
        }
        keep = first < 1 ? 1 : first;
        sum = 0.0;
        for (Py_ssize_t i = 0; i < keep; i++) sum += probs[i];
        for (Py_ssize_t i = 0; i < keep; i++) probs[i] /= sum;
    }
    if (p->min_p > 0.0) {
        double floor_p = p->min_p * probs[0];
        Py_ssize_t kept = 0;
        sum = 0.0;
        for (Py_ssize_t i = 0; i < keep; i++) {
            if (probs[i] >= floor_p) { kept = i + 1; sum += probs[i]; } else break;
        }
        keep = kept < 1 ? 1 : kept;
        for (Py_ssize_t i = 0; i < keep; i++) probs[i] /= sum;
    }
    double total = 0.0;
    for (Py_ssize_t i = 0; i < keep; i++) total += probs[i];
    d->kind = 2;
    d->keep = keep;
    d->total = total;
}

/* ------------------------------------------------------------------ Python entry points */
static int need(Py_buffer *b, Py_ssize_t bytes, const char *what) {
    if (b->len < bytes) {
        PyErr_Format(PyExc_ValueError, "%s: buffer of %zd bytes, need %zd", what, b->len, bytes);
        return 0;
    }
    return 1;
}

static void release_buffers(Py_buffer *const *b, size_t n) {
    for (size_t i = 0; i < n; i++) PyBuffer_Release(b[i]);
}

static int params_ok(double rp, double temp, double top_p, double min_p) {
    if (!(temp >= 0.0) || !(top_p > 0.0 && top_p <= 1.0) || !(min_p >= 0.0 && min_p < 1.0) || !(rp > 0.0)) {
        PyErr_SetString(PyExc_ValueError, "bad sampling parameters");
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(sample_rows_doc,
"sample_rows(logits, n_vocab, row_stride, lo, hi, seen, slots, penalty, temperature, top_k,\n"
"            top_p, min_p, states, out_tok, out_lp)\n\n"
"Sample one token for each logits row j in [lo, hi). logits: float32, row j starts at\n"
"j * row_stride (0: every row is the first). seen: uint8 (slots x n_vocab), 1 = the slot's\n"
"sequence has seen the token (empty: no penalty). slots: int64, the slot of each row.\n"
"states: uint64 (slots x 4) PCG64 states, advanced in place. out_tok: int64, out_lp: float64\n"
"(log-probability of the token under the raw logits), written at rows [lo, hi).");

static PyObject *sample_rows(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer logits = {0}, seen = {0}, slots = {0}, states = {0}, out_tok = {0}, out_lp = {0};
    Py_ssize_t V, stride, lo, hi, top_k;
    double rp, temp, top_p, min_p;
    if (!PyArg_ParseTuple(args, "y*nnnny*y*ddnddw*w*w*", &logits, &V, &stride, &lo, &hi, &seen, &slots,
                          &rp, &temp, &top_k, &top_p, &min_p, &states, &out_tok, &out_lp))
        return NULL;
    PyObject *result = NULL;
    scratch_t w = {0};
    const Py_ssize_t LIMIT = (Py_ssize_t)1 << 31;  /* token ids are 32-bit; keeps the sizes below from overflowing */
    if (V <= 0 || V >= LIMIT || lo < 0 || hi < lo || hi >= LIMIT || stride < 0 || stride > V) {
        PyErr_SetString(PyExc_ValueError, "bad n_vocab, row range or stride");
        goto done;
    }
    if (hi > lo) {
        Py_ssize_t n_slots = states.len / (Py_ssize_t)(4 * sizeof(uint64_t));
        if (!need(&logits, ((hi - 1) * stride + V) * (Py_ssize_t)sizeof(float), "logits")) goto done;
        if (!need(&slots, hi * (Py_ssize_t)sizeof(int64_t), "slots")) goto done;
        if (!need(&out_tok, hi * (Py_ssize_t)sizeof(int64_t), "out_tok")) goto done;
        if (!need(&out_lp, hi * (Py_ssize_t)sizeof(double), "out_lp")) goto done;
        const int64_t *sl = (const int64_t *)slots.buf;
        for (Py_ssize_t j = lo; j < hi; j++) {
            if (sl[j] < 0 || sl[j] >= n_slots) {
                PyErr_Format(PyExc_ValueError, "slot %lld of row %zd outside the %zd states",
                             (long long)sl[j], j, n_slots);
                goto done;
            }
        }
        if (seen.len && !need(&seen, n_slots * V, "seen")) goto done;
        if (!params_ok(rp, temp, top_p, min_p) || !scratch_alloc(&w, V, top_k)) goto done;
        params_t p = {rp, temp, top_p, min_p, top_k};
        const float *L = (const float *)logits.buf;
        const uint8_t *S = seen.len ? (const uint8_t *)seen.buf : NULL;
        uint64_t *st = (uint64_t *)states.buf;
        int64_t *ot = (int64_t *)out_tok.buf;
        double *ol = (double *)out_lp.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = lo; j < hi; j++) {
            int64_t s = sl[j];
            ot[j] = sample_one(L + j * stride, V, S ? S + s * V : NULL, &p, st + 4 * s, &w, &ol[j]);
        }
        Py_END_ALLOW_THREADS
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    scratch_free(&w);
    {
        Py_buffer *const held[] = {&logits, &seen, &slots, &states, &out_tok, &out_lp};
        release_buffers(held, sizeof held / sizeof held[0]);
    }
    return result;
}

PyDoc_STRVAR(lse_rows_doc,
"lse_rows(logits, n_vocab, n_rows, out)\n\n"
"log-sum-exp of each of n_rows float32 rows into out (float64).");

static PyObject *lse_rows(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer logits = {0}, out = {0};
    Py_ssize_t V, n;
    if (!PyArg_ParseTuple(args, "y*nnw*", &logits, &V, &n, &out)) return NULL;
    PyObject *result = NULL;
    if (V <= 0 || n < 0 || V >= ((Py_ssize_t)1 << 31) || n >= ((Py_ssize_t)1 << 31)) {
        PyErr_SetString(PyExc_ValueError, "bad n_vocab or n_rows");
        goto done;
    }
    if (!need(&logits, n * V * (Py_ssize_t)sizeof(float), "logits")) goto done;
    if (!need(&out, n * (Py_ssize_t)sizeof(double), "out")) goto done;
    {
        const float *L = (const float *)logits.buf;
        double *o = (double *)out.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < n; j++) o[j] = row_lse(L + j * V, V);
        Py_END_ALLOW_THREADS
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&logits);
    PyBuffer_Release(&out);
    return result;
}

/* ------------------------------------------------------------------ steps in one call */
/* llama.cpp's batch, as llama.h lays it out (the caller checks the ctypes structure's offsets
 * against these before passing one in) and the two functions a step calls. */
typedef struct {
    int32_t n_tokens;
    int32_t *token;
    float *embd;
    int32_t *pos;
    int32_t *n_seq_id;
    int32_t **seq_id;
    int8_t *logits;
} ll_batch_t;
typedef int32_t (*decode_fn_t)(void *ctx, ll_batch_t batch);
typedef float *(*logits_fn_t)(void *ctx);
typedef bool (*seq_rm_fn_t)(void *mem, int32_t seq, int32_t p0, int32_t p1);

static double now_s(void) {
#ifdef _WIN32
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

PyDoc_STRVAR(run_steps_doc,
"run_steps(handles, logits, n_vocab, n_rows, seen, slots, penalty, temperature, top_k, top_p, min_p,\n"
"          states, out_tok, out_lp, length, toks, lps, cap, npos, seqs, ends, max_new, index,\n"
"          prompt_row, prompt_seen, next_states, first_index, may_drop, done, done_toks, done_lps,\n"
"          free_left, started, max_steps, max_seconds, threads=1, start=b'')\n"
"    -> (steps, decode_seconds, rc, n_live, n_done, n_tokens, n_started, n_free_left)\n\n"
"The steps of one job's samples in C. Per step: draw one token for each live row j (slot slots[j],\n"
"as sample_rows does; the first step's rows are logits, the next ones llama.cpp's), record it\n"
"(seen, length, toks, lps) and close the samples it ends (ends[token]: 1 closing tag, 2\n"
"end-of-generation; 3: max_new tokens): each closed sample is copied to done (int64 rows: index,\n"
"length, reason) and done_toks / done_lps (rows of cap). A closed sample's slot takes the next\n"
"prepared sample (next_states: its PCG64 state; index first_index, first_index + 1, ...): the\n"
"slot's cells after the prompt are removed, its seen row reset to prompt_seen, its first token\n"
"drawn from prompt_row in the same step (closed at once if it ends), and the slot is written to\n"
"started. Then the going slots' tokens are decoded in one llama_decode, in slot order.\n"
"A slot closed with no prepared sample left goes to free_left; the call returns after that step\n"
"unless may_drop (the job has no other sample to start). It also returns when no sample is\n"
"going, when done could not hold the next step's closes, after max_steps decodes or max_seconds,\n"
"when the abort word is 0 or the wake word is not, or when llama_decode fails (rc != 0; NULL\n"
"logits give -100). On return slots[:n_live] are the going slots in slot order and out_tok /\n"
"out_lp their last tokens, recorded and not yet decoded (all rc != 0: decoded, failed).\n"
"handles: uint64 [llama_decode, llama_get_logits, context, batch struct, abort word (int64, 0 =\n"
"abort; 0: none), wake word (int64, non-zero = return; 0: none), llama_memory_seq_rm, memory].\n"
"length/npos/index: int64 per slot; toks (int64) and lps (float64): slots x cap; seqs: int32 per\n"
"slot, its KV sequence; slots: int64 with room for every slot, written. threads: the threads a\n"
"step's draws are spread over (where built with OpenMP). start: int64 slots that take prepared\n"
"samples before the first step's draws, as closed ones do (a job's first samples; n_rows may\n"
"then be 0).");

/* What one run_steps call works on (the caller's buffers) and its counters. */
typedef struct {
    Py_ssize_t V, cap, max_new;
    const params_t *p;
    scratch_t *w;
    uint8_t *S;              /* seen, slots x V, or NULL */
    uint64_t *st;            /* PCG64 states per slot */
    int64_t *len, *tk, *idx; /* tokens so far, tokens (slots x cap), sample index per slot */
    double *lq;              /* log-probabilities (slots x cap) */
    const uint8_t *E;        /* end codes per token */
    int64_t *dn, *dt;        /* done: (index, length, reason) rows and their tokens */
    double *dl;
    Py_ssize_t n_done, n_tokens;
    int64_t *queue;          /* slots freed in this step, in order */
    Py_ssize_t nq;
    uint8_t *going;          /* per slot: decoded in this step */
    int64_t *last_tok;
    double *last_lp;
} run_t;

static void record_slot(run_t *r, int64_t s, int64_t tok, double lp);

#define MAX_PAR 64  /* threads that share a step's draws, at most */

/* The draws of rows [0, n) (row j: slot sl[j]) into tok/lp, on n_par threads where the build has
 * OpenMP: the same team as llama.cpp's CPU backend (libgomp keeps one per calling thread), whose
 * threads wait between two decodes. wx: the buffers of threads 1 .. n_par-1. */
static void draw_rows(run_t *r, const int64_t *sl, const float *L, Py_ssize_t n, Py_ssize_t n_par, scratch_t *wx,
                      int64_t *tok, double *lp) {
    Py_ssize_t V = r->V;
#ifdef _OPENMP
    if (n_par > 1 && n >= 2 * n_par) {
#pragma omp parallel num_threads((int)n_par)
        {
            int t = omp_get_thread_num();
            scratch_t *w = t == 0 ? r->w : &wx[t - 1];
#pragma omp for schedule(static)
            for (Py_ssize_t j = 0; j < n; j++) {
                int64_t s = sl[j];
                tok[j] = sample_one(L + j * V, V, r->S ? r->S + s * V : NULL, r->p, r->st + 4 * s, w, &lp[j]);
            }
        }
        return;
    }
#else
    (void)n_par;
    (void)wx;
#endif
    for (Py_ssize_t j = 0; j < n; j++) {
        int64_t s = sl[j];
        tok[j] = sample_one(L + j * V, V, r->S ? r->S + s * V : NULL, r->p, r->st + 4 * s, r->w, &lp[j]);
    }
}

/* Slot s's first token (a sample just started there), drawn from the prompt's row and recorded.
 * The row's distribution is the same for every sample a call starts (their seen rows reset to
 * the prompt's): made once (in wp's buffers), then one uniform number per sample. */
static void start_slot(run_t *r, int64_t s, const float *prow, dist_t *pd, int *pd_ready, scratch_t *wp) {
    if (!*pd_ready) {  /* the prompt's row, after the prompt's tokens: the same for every sample started */
        row_dist(prow, r->V, r->S ? r->S + s * r->V : NULL, r->p, wp, pd);
        *pd_ready = 1;
    }
    double lp;
    int64_t tok = draw_dist(pd, prow, r->st + 4 * s, &lp);
    record_slot(r, s, tok, lp);
}

/* Slot s's token drawn: recorded, and the sample closed when it ends, else the slot goes on. */
static void record_slot(run_t *r, int64_t s, int64_t tok, double lp) {
    Py_ssize_t V = r->V, cap = r->cap;
    int64_t t = r->len[s]++;
    if (r->S) r->S[s * V + tok] = 1;
    r->tk[s * cap + t] = tok;
    r->lq[s * cap + t] = lp;
    r->n_tokens++;
    int64_t why = r->E[tok] == 1 ? 1 : r->E[tok] == 2 ? 2 : (t + 1 >= r->max_new ? 3 : 0);
    if (why) {
        Py_ssize_t d = r->n_done++;
        r->dn[3 * d] = r->idx[s];
        r->dn[3 * d + 1] = t + 1;
        r->dn[3 * d + 2] = why;
        memcpy(r->dt + d * cap, r->tk + s * cap, (size_t)(t + 1) * sizeof(int64_t));
        memcpy(r->dl + d * cap, r->lq + s * cap, (size_t)(t + 1) * sizeof(double));
        r->queue[r->nq++] = s;
    } else {
        r->going[s] = 1;
        r->last_tok[s] = tok;
        r->last_lp[s] = lp;
    }
}

static PyObject *run_steps(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer handles = {0}, logits = {0}, seen = {0}, slots = {0}, states = {0}, out_tok = {0}, out_lp = {0};
    Py_buffer length = {0}, toks = {0}, lps = {0}, npos = {0}, seqs = {0}, ends = {0}, index = {0};
    Py_buffer prow = {0}, pseen = {0}, nstates = {0}, done = {0}, done_toks = {0}, done_lps = {0};
    Py_buffer free_left = {0}, started = {0}, start = {0};
    Py_ssize_t V, n, top_k, cap, max_new, max_steps, first_index, n_par = 1;
    int may_drop;
    double rp, temp, top_p, min_p, max_seconds;
    if (!PyArg_ParseTuple(args, "y*y*nny*w*ddnddw*w*w*w*w*w*ny*y*y*nw*y*y*y*npw*w*w*w*w*nd|ny*", &handles, &logits,
                          &V, &n, &seen, &slots, &rp, &temp, &top_k, &top_p, &min_p, &states, &out_tok, &out_lp,
                          &length, &toks, &lps, &cap, &npos, &seqs, &ends, &max_new, &index, &prow, &pseen, &nstates,
                          &first_index, &may_drop, &done, &done_toks, &done_lps, &free_left, &started, &max_steps,
                          &max_seconds, &n_par, &start))
        return NULL;
    PyObject *result = NULL;
    scratch_t w = {0}, wp = {0}, wx[MAX_PAR - 1];  /* the sampler's buffers: this thread's, the prompt row's, the other threads' */
    memset(wx, 0, sizeof wx);
    int64_t *queue = NULL, *last_tok = NULL, *row_tok = NULL;
    double *last_lp = NULL, *row_lp = NULL;
    uint8_t *going = NULL;
    const Py_ssize_t LIMIT = (Py_ssize_t)1 << 31;
    Py_ssize_t steps = 0, n_done = 0, n_tokens = 0, used = 0, n_left = 0;
    double dec_s = 0.0;
    int32_t rc = 0;
    Py_ssize_t n_start = start.buf ? start.len / (Py_ssize_t)sizeof(int64_t) : 0;
    if (V <= 0 || V >= LIMIT || n < 0 || (n == 0 && n_start == 0) || n >= LIMIT || cap <= 0 || cap >= LIMIT || max_new <= 0 || max_new > cap
        || max_steps < 0 || first_index < 0 || n_par < 1) {
        PyErr_SetString(PyExc_ValueError, "bad n_vocab, rows, cap, max_new, max_steps, first_index or threads");
        goto done;
    }
    if (!need(&handles, 8 * (Py_ssize_t)sizeof(uint64_t), "handles")) goto done;
    const uint64_t *h = (const uint64_t *)handles.buf;
    Py_ssize_t K = nstates.len / (Py_ssize_t)(4 * sizeof(uint64_t));  /* samples prepared */
    if (!h[0] || !h[1] || !h[2] || !h[3] || (K && (!h[6] || !h[7]))) {
        PyErr_SetString(PyExc_ValueError, "a null llama.cpp handle");
        goto done;
    }
    Py_ssize_t W = states.len / (Py_ssize_t)(4 * sizeof(uint64_t));
    Py_ssize_t R = done.len / (Py_ssize_t)(3 * sizeof(int64_t));
    Py_ssize_t P = pseen.len / (Py_ssize_t)sizeof(int64_t);
    ll_batch_t *batch = (ll_batch_t *)(uintptr_t)h[3];
    if (!need(&logits, n * V * (Py_ssize_t)sizeof(float), "logits")) goto done;
    if (!need(&slots, W * (Py_ssize_t)sizeof(int64_t), "slots")) goto done;
    if (!need(&out_tok, W * (Py_ssize_t)sizeof(int64_t), "out_tok")) goto done;
    if (!need(&out_lp, W * (Py_ssize_t)sizeof(double), "out_lp")) goto done;
    if (!need(&length, W * (Py_ssize_t)sizeof(int64_t), "length")) goto done;
    if (!need(&npos, W * (Py_ssize_t)sizeof(int64_t), "npos")) goto done;
    if (!need(&index, W * (Py_ssize_t)sizeof(int64_t), "index")) goto done;
    if (!need(&seqs, W * (Py_ssize_t)sizeof(int32_t), "seqs")) goto done;
    if (!need(&toks, W * cap * (Py_ssize_t)sizeof(int64_t), "toks")) goto done;
    if (!need(&lps, W * cap * (Py_ssize_t)sizeof(double), "lps")) goto done;
    if (!need(&ends, V, "ends")) goto done;
    if (!need(&prow, V * (Py_ssize_t)sizeof(float), "prompt_row")) goto done;
    if (!need(&done_toks, R * cap * (Py_ssize_t)sizeof(int64_t), "done_toks")) goto done;
    if (!need(&done_lps, R * cap * (Py_ssize_t)sizeof(double), "done_lps")) goto done;
    if (!need(&free_left, W * (Py_ssize_t)sizeof(int64_t), "free_left")) goto done;
    if (!need(&started, K * (Py_ssize_t)sizeof(int64_t), "started")) goto done;
    if (seen.len && !need(&seen, W * V, "seen")) goto done;
    if (R < n + K) {  /* a step closes at most its rows and, at their first token, the samples it starts */
        PyErr_Format(PyExc_ValueError, "done: room for %zd samples, need %zd", R, n + K);
        goto done;
    }
    int64_t *sl = (int64_t *)slots.buf;
    int64_t *len_ = (int64_t *)length.buf;
    for (Py_ssize_t j = 0; j < n; j++) {
        if (sl[j] < 0 || sl[j] >= W || (j && sl[j] <= sl[j - 1])) {
            PyErr_Format(PyExc_ValueError, "slot %lld of row %zd: slots must be in [0, %zd), ascending",
                         (long long)sl[j], j, W);
            goto done;
        }
        if (len_[sl[j]] < 0 || len_[sl[j]] >= max_new) {
            PyErr_Format(PyExc_ValueError, "slot %lld has %lld tokens (max_new %zd)", (long long)sl[j],
                         (long long)len_[sl[j]], max_new);
            goto done;
        }
    }
    const int64_t *st0 = (const int64_t *)start.buf;
    for (Py_ssize_t i = 0; i < n_start; i++) {  /* free slots: ascending, none of the rows' */
        int taken = 0;
        for (Py_ssize_t j = 0; j < n; j++) taken |= sl[j] == st0[i];
        if (st0[i] < 0 || st0[i] >= W || (i && st0[i] <= st0[i - 1]) || taken) {
            PyErr_Format(PyExc_ValueError, "start slot %lld: slots to start must be in [0, %zd), ascending, "
                         "and not a row's", (long long)st0[i], W);
            goto done;
        }
    }
    const int64_t *ps = (const int64_t *)pseen.buf;
    for (Py_ssize_t i = 0; i < P; i++) {
        if (ps[i] < 0 || ps[i] >= V) {
            PyErr_SetString(PyExc_ValueError, "prompt_seen: a token outside the vocabulary");
            goto done;
        }
    }
    if (!params_ok(rp, temp, top_p, min_p) || !scratch_alloc(&w, V, top_k)) goto done;
#ifdef _OPENMP
    if (n_par > MAX_PAR) n_par = MAX_PAR;
#else
    n_par = 1;  /* built without OpenMP: the rows in this thread */
#endif
    for (Py_ssize_t t = 1; t < n_par; t++)
        if (!scratch_alloc(&wx[t - 1], V, top_k)) goto done;
    if (K && !scratch_alloc(&wp, V, top_k)) goto done;
    {
        params_t p = {rp, temp, top_p, min_p, top_k};
        queue = (int64_t *)malloc((size_t)(W + K + 1) * sizeof(int64_t));
        last_tok = (int64_t *)malloc((size_t)W * sizeof(int64_t));
        last_lp = (double *)malloc((size_t)W * sizeof(double));
        row_tok = (int64_t *)malloc((size_t)W * sizeof(int64_t));
        row_lp = (double *)malloc((size_t)W * sizeof(double));
        going = (uint8_t *)calloc((size_t)W, 1);
        if (!queue || !last_tok || !last_lp || !row_tok || !row_lp || !going) {
            PyErr_NoMemory();
            goto done;
        }
        decode_fn_t decode = (decode_fn_t)(uintptr_t)h[0];
        logits_fn_t get_logits = (logits_fn_t)(uintptr_t)h[1];
        void *ctx = (void *)(uintptr_t)h[2];
        volatile const int64_t *abort_word = (volatile const int64_t *)(uintptr_t)h[4];
        volatile const int64_t *wake_word = (volatile const int64_t *)(uintptr_t)h[5];
        seq_rm_fn_t seq_rm = (seq_rm_fn_t)(uintptr_t)h[6];
        void *mem = (void *)(uintptr_t)h[7];
        const float *L = (const float *)logits.buf;
        const float *PR = (const float *)prow.buf;
        uint8_t *S = seen.len ? (uint8_t *)seen.buf : NULL;
        uint64_t *st = (uint64_t *)states.buf;
        const uint64_t *nst = (const uint64_t *)nstates.buf;
        int64_t *ot = (int64_t *)out_tok.buf;
        double *ol = (double *)out_lp.buf;
        int64_t *tk = (int64_t *)toks.buf;
        double *lq = (double *)lps.buf;
        int64_t *idx = (int64_t *)index.buf;
        int64_t *dn = (int64_t *)done.buf;
        int64_t *dt = (int64_t *)done_toks.buf;
        double *dl = (double *)done_lps.buf;
        int64_t *fl = (int64_t *)free_left.buf;
        int64_t *sd = (int64_t *)started.buf;
        const int64_t *np_ = (const int64_t *)npos.buf;
        const int32_t *sq = (const int32_t *)seqs.buf;
        const uint8_t *E = (const uint8_t *)ends.buf;
        Py_BEGIN_ALLOW_THREADS
        double t_start = now_s();
        int started_given = 0, pd_ready = 0;
        dist_t pd;  /* the prompt row's distribution, made at the first sample started */
        run_t r = {V, cap, max_new, &p, &w, S, st, len_, tk, idx, lq, E, dn, dt, dl, 0, 0, queue, 0, going,
                   last_tok, last_lp};
        for (;;) {
            Py_ssize_t left_now = 0;
            r.nq = 0;
            if (!started_given) {  /* the slots to start go first, as if closed before the step */
                for (Py_ssize_t i = 0; i < n_start; i++) queue[r.nq++] = st0[i];
                started_given = 1;
            }
            /* row j: slot sl[j]. The draws first (on several threads where asked: each row reads and
             * advances its own slot's state only), then recorded in row order */
            draw_rows(&r, sl, L, n, n_par, wx, row_tok, row_lp);
            for (Py_ssize_t j = 0; j < n; j++) record_slot(&r, sl[j], row_tok[j], row_lp[j]);
            /* the freed slots take the prepared samples, in the order they closed; a sample that
             * ends at its first token frees its slot again, behind the others */
            for (Py_ssize_t q = 0; q < r.nq; q++) {
                int64_t s = queue[q];
                if (used >= K) {
                    fl[n_left++] = s;
                    left_now++;
                    continue;
                }
                idx[s] = first_index + used;
                memcpy(st + 4 * s, nst + 4 * used, 4 * sizeof(uint64_t));
                sd[used++] = s;
                len_[s] = 0;
                seq_rm(mem, sq[s], (int32_t)np_[s], -1);
                if (S) {
                    memset(S + s * V, 0, (size_t)V);
                    for (Py_ssize_t i = 0; i < P; i++) S[s * V + ps[i]] = 1;
                }
                start_slot(&r, s, PR, &pd, &pd_ready, &wp);
            }
            /* the batch: the going slots in slot order */
            n = 0;
            for (Py_ssize_t s = 0; s < W; s++) {
                if (!going[s]) continue;
                going[s] = 0;
                sl[n] = s;
                ot[n] = last_tok[s];
                ol[n] = last_lp[s];
                n++;
            }
            if (n == 0 || (left_now && !may_drop) || r.n_done + n + (K - used) > R || steps >= max_steps
                || (abort_word && *abort_word == 0) || (wake_word && *wake_word != 0)
                || now_s() - t_start >= max_seconds)
                break;
            for (Py_ssize_t j = 0; j < n; j++) {
                int64_t s = sl[j];
                batch->token[j] = (int32_t)ot[j];
                batch->pos[j] = (int32_t)(np_[s] + len_[s] - 1);  /* the prompt at 0..npos-1, then the sample */
                batch->n_seq_id[j] = 1;
                batch->seq_id[j][0] = sq[s];
                batch->logits[j] = 1;
            }
            batch->n_tokens = (int32_t)n;
            double t0 = now_s();
            rc = decode(ctx, *batch);
            dec_s += now_s() - t0;
            steps++;
            if (rc != 0) break;
            L = get_logits(ctx);
            if (!L) { rc = -100; break; }
        }
        n_done = r.n_done;
        n_tokens = r.n_tokens;
        Py_END_ALLOW_THREADS
    }
    result = Py_BuildValue("ndinnnnn", steps, dec_s, (int)rc, n, n_done, n_tokens, used, n_left);
done:
    scratch_free(&w);
    scratch_free(&wp);
    for (Py_ssize_t t = 0; t < MAX_PAR - 1; t++) scratch_free(&wx[t]);
    free(queue);
    free(last_tok);
    free(last_lp);
    free(row_tok);
    free(row_lp);
    free(going);
    {
        Py_buffer *const held[] = {&handles, &logits, &seen, &slots, &states, &out_tok, &out_lp, &length,
                                   &toks, &lps, &npos, &seqs, &ends, &index, &prow, &pseen, &nstates, &done,
                                   &done_toks, &done_lps, &free_left, &started, &start};
        release_buffers(held, sizeof held / sizeof held[0]);
    }
    return result;
}

PyDoc_STRVAR(seed_states_doc,
"seed_states(seeds, out)\n\n"
"For each seed (uint64) the PCG64 state of numpy.random.default_rng(seed), written to out (uint64,\n"
"seeds x 4: state_hi, state_lo, inc_hi, inc_lo), as engine.runtime.draw.pcg64_states makes it\n"
"with numpy, about 200 times faster.");

static PyObject *seed_states(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer seeds = {0}, out = {0};
    if (!PyArg_ParseTuple(args, "y*w*", &seeds, &out)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = seeds.len / (Py_ssize_t)sizeof(uint64_t);
    if (need(&out, n * 4 * (Py_ssize_t)sizeof(uint64_t), "out")) {
        const uint64_t *sd = (const uint64_t *)seeds.buf;
        uint64_t *o = (uint64_t *)out.buf;
        for (Py_ssize_t i = 0; i < n; i++) pcg64_seed_state(sd[i], o + 4 * i);
        Py_INCREF(Py_None);
        result = Py_None;
    }
    PyBuffer_Release(&seeds);
    PyBuffer_Release(&out);
    return result;
}

PyDoc_STRVAR(simd_doc,
"simd(enable=None) -> str\n\n"
"The vector code in use: 'avx2' or 'portable'. enable=False switches to the portable code, True\n"
"back to AVX2 where the CPU has it (both give bit-identical results; the tests compare them).");

static PyObject *simd(PyObject *self, PyObject *args) {
    (void)self;
    int enable = -1;
    if (!PyArg_ParseTuple(args, "|p", &enable)) return NULL;
#ifdef LOGOS_AVX2
    if (enable == 0) use_avx2 = 0;
    else if (enable == 1) use_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    return PyUnicode_FromString(use_avx2 ? "avx2" : "portable");
#else
    return PyUnicode_FromString("portable");
#endif
}

PyDoc_STRVAR(openmp_doc,
"openmp() -> bool\n\n"
"Whether run_steps can spread a step's draws over threads (built with OpenMP).");

static PyObject *openmp(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
#ifdef _OPENMP
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"simd", simd, METH_VARARGS, simd_doc},
    {"openmp", openmp, METH_NOARGS, openmp_doc},
    {"sample_rows", sample_rows, METH_VARARGS, sample_rows_doc},
    {"lse_rows", lse_rows, METH_VARARGS, lse_rows_doc},
    {"run_steps", run_steps, METH_VARARGS, run_steps_doc},
    {"seed_states", seed_states, METH_VARARGS, seed_states_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_stepper",
    "A decoding step's host work (log-sum-exp, penalty, top-k/top-p/min-p sampling, PCG64 draws) in C.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__stepper(void) {
#ifdef LOGOS_AVX2
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    compress_lut_init();
#endif
    return PyModule_Create(&module);
}
