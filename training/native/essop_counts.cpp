// ESSOP counts of a whole layer on the CPU: bit-packed bitstreams, AND + popcount.
//
// The same integers as the golden model (golden/array.py) and the PyTorch kernel (training/kernel.py); the
// semantics are docs/spec.md sections 2-5. Called from training/native.py through ctypes; built there with
// the machine's C++ compiler (-O3 -march=native), or with -DESSOP_SCALAR for the portable path that the tests
// compare against the vector path.
//
// The work of one layer and minibatch is a list of pairs (im2col columns) cut into segments: the pairs of a
// segment share the exponent sum E_x + E_d, so their counts add as integers (docs/training.md). For every
// segment the result is C[i][j] = sum over its pairs p and cycles t of sign * D_i(p, t) * X_j(p, t).
//
// How:
// - A chunk of pairs is processed by one thread. Each (pair, cycle) is a *lane*; 64 lanes form a 64-bit
//   word, so X_j becomes one word per (word, j) and D_i one per (word, i) (two for D: positive and negative
//   signs), and C[i][j] += popcount(Dpos & X) - popcount(Dneg & X) over the words.
// - shared: a lane (p, t) can count only if R_x(p, t) < max_j a_pj and R_d(p, t) < max_i b_pi; lanes that
//   fail either test are never formed (with block exponents most fail). Pairs without a surviving lane are
//   never gathered.
// - per_element: every lane is formed; generator k of a side is the side's cycle table read k's cycle
//   offset later (LFSR source), XORed with k's constant word (Sobol source: a digital shift per element).
// - rng_shift: every number of pair p is also XORed with the pair's word (one per side and pair), in shared
//   mode before the survivor test. The tables, offsets and words are essop.golden.random_sources', tabulated by
//   training/random_tables.py: R_k(p, t) = table[c(p, t) + offset_k] ^ word_k ^ pair_word(p).
// - The magnitudes a_pj (spec section 3) are computed from the FP16 patterns of the zero-padded input map
//   (a gather with one base address per pair and one offset per element: im2col without building it).
#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if !defined(ESSOP_SCALAR) && defined(__AVX512BW__) && defined(__AVX512VBMI__) && defined(__AVX512VPOPCNTDQ__)
#include <immintrin.h>
#define ESSOP_SIMD 1
#else
#define ESSOP_SIMD 0
#endif

#ifdef ESSOP_PROFILE
#include <atomic>
#include <chrono>
#include <cstdio>
static std::atomic<long long> g_ns[4];
struct Tick {
    int k; std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    explicit Tick(int kk) : k(kk) {}
    ~Tick() { g_ns[k] += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count(); }
};
#define PROFILE(k) Tick tick_##k(k)
extern "C" void essop_profile(long long* out) { for (int i = 0; i < 4; ++i) { out[i] = g_ns[i]; g_ns[i] = 0; } }
#else
#define PROFILE(k)
#endif

namespace {

constexpr int kLanes = 64;

struct Side {
    const uint16_t* map;    // FP16 bit patterns, signs included; every base + off below is a valid index
    int64_t map_len;
    const int64_t* base;    // [pairs] index of the pair's first element in map
    const int64_t* off;     // [len] offset of element k from the pair's base
    const int32_t* exp;     // [pairs] the pair's exponent E (spec section 2)
    const uint16_t* vmax;   // [pairs] FP16 pattern of the pair's largest |element|
    int64_t len;            // n (x side) or m (delta side)
    const int64_t* gen;     // per_element: [len] cycle offset of element k's generator; nullptr: shared
    const void* table;      // R of cycle c for c in [0, period + max(BL, 64)): uint8 if q <= 8, else uint16
    const uint16_t* gword;  // per_element: [len] constant XOR word of element k's generator; nullptr: none
    const uint16_t* pword;  // [pairs] XOR word of each pair (rng_shift); nullptr: none
};

struct Job {
    Side x, d;
    const int64_t* order;   // pairs to count, segment by segment
    const int64_t* seg;     // [n_seg + 1] segment s is order[seg[s] .. seg[s + 1])
    int64_t n_seg;
    int64_t start_pair;     // LFSR run-on position of pair 0 (spec section 4)
    int64_t period;         // 2**w - 1
    int32_t bl, q, restart, threads, chunk_pairs;
    int64_t* out;           // [n_seg][m][n]
    int32_t gather32;       // both maps have < 2**31 elements (32-bit gather indices)
    int32_t expected;       // sum (+-b)(+-a) over the pairs instead of counting bitstreams
};

// Spec section 3: a = min(floor(|v| * 2**(q - E)), 2**q - 1) from the FP16 pattern; non-finite -> 0.
inline uint32_t magnitude(uint16_t v, int E, int q) {
    uint32_t e = (v >> 10) & 31u, f = v & 1023u;
    if (e == 31u) return 0;
    uint32_t M = e ? (f | 1024u) : f;
    int sh = (e ? int(e) : 1) - 25 + q - E;
    // A nonzero M shifted left by q + 1 already exceeds 2**q - 1; M < 2**11 vanishes after 11 right shifts.
    uint32_t a = sh >= 0 ? (M << std::min(sh, q + 1)) : (M >> std::min(-sh, 15));
    uint32_t lim = (1u << q) - 1u;
    return a > lim ? lim : a;
}

inline int64_t cycle_base(const Job& J, int64_t p) {
    if (J.restart) return 0;
    // ((start + p) * BL) mod period without overflow for any realistic pair count.
    return (int64_t)(((unsigned __int128)(J.start_pair + p) * (unsigned)J.bl) % (unsigned __int128)J.period);
}

template <typename T>
struct Worker {
    const Job& J;
    int64_t n, m, n8, m4;
    int ppw, wpp;             // pairs per word (BL < 64), words per pair (BL > 64)
    bool per_element;
    const T* tx;
    const T* td;
    // per chunk
    std::vector<int64_t> act, cyc;            // active pairs (global ids) and their cycle bases
    std::vector<uint8_t> rel;                 // lanes: pair index relative to the word's first pair
    std::vector<T> lrx, lrd;                  // lanes: R_x, R_d (shared mode)
    std::vector<int64_t> wfirst;              // first active index of each word
    int64_t nw = 0, stride = 0;
    std::vector<T> at, bt;                    // magnitudes [len][stride], pairs along the fast axis
    std::vector<uint8_t> sxt, sdt;            // 0xFF where the element is negative
    std::vector<uint64_t> X, Xn, Dp, Dn;      // [nw][n8], [nw][n8], [nw][m4], [nw][m4]
    std::vector<int64_t> acc;                 // [m4][n8]
    bool signed_x = false;

    explicit Worker(const Job& job) : J(job) {
        n = J.x.len;
        m = J.d.len;
        n8 = (n + 7) / 8 * 8;
        m4 = (m + 3) / 4 * 4;
        ppw = J.bl < kLanes ? kLanes / J.bl : 1;
        wpp = J.bl > kLanes ? J.bl / kLanes : 1;
        per_element = J.x.gen != nullptr;
        tx = static_cast<const T*>(J.x.table);
        td = static_cast<const T*>(J.d.table);
        acc.assign(m4 * n8, 0);
    }

    // ---- lanes ---------------------------------------------------------------------------------------
    void open_word(int64_t first) {
        wfirst.push_back(first);
        rel.insert(rel.end(), kLanes, 0);
        // Padding lanes never count: R = all ones is not below any magnitude (a <= 2**q - 1 <= R).
        lrx.insert(lrx.end(), kLanes, T(~T(0)));
        lrd.insert(lrd.end(), kLanes, T(~T(0)));
        ++nw;
    }

    void build_lanes(int64_t qb, int64_t qe) {
        act.clear(); cyc.clear(); rel.clear(); lrx.clear(); lrd.clear(); wfirst.clear(); nw = 0;
        const int q = J.q;
        if (per_element) {
            for (int64_t i = qb; i < qe; ++i) {
                int64_t p = J.order[i];
                if (!magnitude(J.x.vmax[p], J.x.exp[p], q) || !magnitude(J.d.vmax[p], J.d.exp[p], q)) continue;
                act.push_back(p);
                cyc.push_back(cycle_base(J, p));
            }
            int64_t na = (int64_t)act.size();
            nw = (na + ppw - 1) / ppw * wpp;
            return;
        }
        int fill = kLanes;
        for (int64_t i = qb; i < qe; ++i) {
            int64_t p = J.order[i];
            uint32_t A = magnitude(J.x.vmax[p], J.x.exp[p], q), B = magnitude(J.d.vmax[p], J.d.exp[p], q);
            if (!A || !B) continue;
            int64_t c0 = cycle_base(J, p);
            int64_t ai = -1;
            const T sx = J.x.pword ? (T)J.x.pword[p] : T(0), sd = J.d.pword ? (T)J.d.pword[p] : T(0);
            for (int t0 = 0; t0 < J.bl; t0 += kLanes) {
                uint64_t live = survivors(tx + c0 + t0, td + c0 + t0, std::min(kLanes, J.bl - t0), A, B, sx, sd);
                while (live) {
                    int t = __builtin_ctzll(live);
                    live &= live - 1;
                    if (ai < 0) {
                        ai = (int64_t)act.size();
                        act.push_back(p);
                        cyc.push_back(c0);
                    }
                    if (fill == kLanes || ai - wfirst.back() >= kLanes) {
                        open_word(ai);
                        fill = 0;
                    }
                    size_t l = (size_t)(nw - 1) * kLanes + fill++;
                    rel[l] = (uint8_t)(ai - wfirst.back());
                    lrx[l] = T(tx[c0 + t0 + t] ^ sx);
                    lrd[l] = T(td[c0 + t0 + t] ^ sd);
                }
            }
        }
    }

    // Bit t set where R_x(t) ^ sx < A and R_d(t) ^ sd < B, for the `len` (<= 64) cycles starting at rx, rd.
    static uint64_t survivors(const T* rx, const T* rd, int len, uint32_t A, uint32_t B, T sx, T sd) {
        uint64_t keep = 0;
#if ESSOP_SIMD
        if constexpr (sizeof(T) == 1) {
            __mmask64 valid = len == 64 ? ~(__mmask64)0 : (((__mmask64)1 << len) - 1);
            __m512i vx = _mm512_xor_si512(_mm512_maskz_loadu_epi8(valid, rx), _mm512_set1_epi8((char)sx));
            __m512i vd = _mm512_xor_si512(_mm512_maskz_loadu_epi8(valid, rd), _mm512_set1_epi8((char)sd));
            // A, B <= 255 here; R < A with A = 256 cannot occur because magnitudes are q <= 8 bits.
            keep = _mm512_mask_cmplt_epu8_mask(valid, vx, _mm512_set1_epi8((char)A)) &
                   _mm512_cmplt_epu8_mask(vd, _mm512_set1_epi8((char)B));
            return keep;
        }
#endif
        for (int t = 0; t < len; ++t) keep |= (uint64_t)(T(rx[t] ^ sx) < A && T(rd[t] ^ sd) < B) << t;
        return keep;
    }

    // ---- magnitudes of the active pairs --------------------------------------------------------------
    void gather(const Side& s, std::vector<T>& dst, std::vector<uint8_t>& sign, bool& any_negative) {
        int64_t na = (int64_t)act.size();
        dst.assign((size_t)s.len * stride, 0);
        sign.assign((size_t)s.len * stride, 0);
        std::vector<int64_t> bases(na);
        std::vector<int32_t> exps(na);
        for (int64_t a = 0; a < na; ++a) {
            bases[a] = s.base[act[a]];
            exps[a] = s.exp[act[a]];
        }
        const int q = J.q;
        const uint32_t lim = (1u << q) - 1u;
        uint8_t neg_any = 0;
        const int64_t len = s.len;
#if ESSOP_SIMD
        // 16 pairs at a time: one gather per element k, the barrel shift in 32-bit lanes.
        int64_t a0 = 0;
        if (J.gather32) {
            const __m512i m1023 = _mm512_set1_epi32(1023), m1024 = _mm512_set1_epi32(1024);
            const __m512i m31 = _mm512_set1_epi32(31), one = _mm512_set1_epi32(1), zero = _mm512_setzero_si512();
            const __m512i vlim = _mm512_set1_epi32((int)lim), vq1 = _mm512_set1_epi32(q + 1);
            const __m512i v15 = _mm512_set1_epi32(15), mask16 = _mm512_set1_epi32(0xFFFF);
            const __m512i vlast = _mm512_set1_epi32((int)(s.map_len - 1));
            __m512i negacc = zero;
            for (; a0 + 16 <= na; a0 += 16) {
                __m512i vbase = _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_loadu_si512(bases.data() + a0))),
                    _mm512_cvtepi64_epi32(_mm512_loadu_si512(bases.data() + a0 + 8)), 1);
                __m512i vexp = _mm512_loadu_si512(exps.data() + a0);
                __m512i shift0 = _mm512_sub_epi32(_mm512_set1_epi32(q - 25), vexp);
                for (int64_t k = 0; k < len; ++k) {
                    __m512i idx = _mm512_add_epi32(vbase, _mm512_set1_epi32((int)s.off[k]));
                    // Each 16-bit element is read as the low half of a 32-bit word; the map's last element
                    // would read past its end, so those lanes are loaded one by one.
                    __mmask16 last = _mm512_cmpeq_epi32_mask(idx, vlast);
                    __m512i v = _mm512_and_si512(_mm512_mask_i32gather_epi32(zero, (__mmask16)~last, idx, s.map, 2), mask16);
                    if (last) {
                        alignas(64) int32_t tmp[16];
                        _mm512_store_si512(tmp, v);
                        for (int l = 0; l < 16; ++l)
                            if (last >> l & 1) tmp[l] = s.map[s.map_len - 1];
                        v = _mm512_load_si512(tmp);
                    }
                    __m512i e = _mm512_and_si512(_mm512_srli_epi32(v, 10), m31);
                    __m512i f = _mm512_and_si512(v, m1023);
                    __mmask16 normal = _mm512_cmpneq_epi32_mask(e, zero);
                    __mmask16 finite = _mm512_cmpneq_epi32_mask(e, m31);
                    __m512i M = _mm512_maskz_mov_epi32(finite, _mm512_mask_or_epi32(f, normal, f, m1024));
                    __m512i sh = _mm512_add_epi32(_mm512_max_epi32(e, one), shift0);
                    __m512i up = _mm512_sllv_epi32(M, _mm512_min_epi32(_mm512_max_epi32(sh, zero), vq1));
                    __m512i down = _mm512_srlv_epi32(M, _mm512_min_epi32(_mm512_max_epi32(_mm512_sub_epi32(zero, sh), zero), v15));
                    __m512i mag = _mm512_mask_mov_epi32(down, _mm512_cmpge_epi32_mask(sh, zero), up);
                    mag = _mm512_min_epu32(mag, vlim);
                    __mmask16 neg = _mm512_cmpneq_epi32_mask(_mm512_srli_epi32(v, 15), zero) &
                                    _mm512_cmpneq_epi32_mask(mag, zero);
                    __m512i sgn = _mm512_maskz_mov_epi32(neg, _mm512_set1_epi32(0xFF));
                    negacc = _mm512_or_si512(negacc, sgn);
                    if (sizeof(T) == 1)
                        _mm_storeu_si128((__m128i*)(dst.data() + (size_t)k * stride + a0), _mm512_cvtepi32_epi8(mag));
                    else
                        _mm256_storeu_si256((__m256i*)(dst.data() + (size_t)k * stride + a0), _mm512_cvtepi32_epi16(mag));
                    _mm_storeu_si128((__m128i*)(sign.data() + (size_t)k * stride + a0), _mm512_cvtepi32_epi8(sgn));
                }
            }
            neg_any |= (uint8_t)(_mm512_reduce_or_epi32(negacc) != 0);
        }
#else
        const int64_t a0 = 0;
#endif
        // Pair by pair: a pair's elements sit in a few nearby rows of the map, and the 64 pairs that share
        // a cache line of `dst` keep its rows hot.
        for (int64_t a = a0; a < na; ++a) {
            const uint16_t* src = s.map + bases[a];
            // sh = e_eff + (q - E - 25): the barrel shift of spec section 3, one constant per pair.
            const int shift0 = q - exps[a] - 25;
            T* col = dst.data() + a;
            uint8_t* scol = sign.data() + a;
            for (int64_t k = 0; k < len; ++k) {
                uint32_t v = src[s.off[k]];
                uint32_t e = (v >> 10) & 31u, f = v & 1023u;
                uint32_t M = (e == 31u) ? 0u : (e ? (f | 1024u) : f);
                int sh = (e ? int(e) : 1) + shift0;
                uint32_t up = M << (sh > 0 ? std::min(sh, q + 1) : 0);
                uint32_t down = M >> (sh < 0 ? std::min(-sh, 15) : 0);
                uint32_t mag = sh >= 0 ? up : down;
                mag = mag > lim ? lim : mag;
                col[(size_t)k * stride] = (T)mag;
                uint8_t neg = (mag && (v >> 15)) ? 0xFF : 0;
                scol[(size_t)k * stride] = neg;
                neg_any |= neg;
            }
        }
        any_negative = neg_any != 0;
    }

    // ---- bit words -----------------------------------------------------------------------------------
    // per_element: the cycle of a word's first lane, and whether its 64 lanes are 64 consecutive cycles
    // (its pairs follow each other in the run-on numbering, or BL >= 64): then generator k's random
    // numbers of the word are one 64-entry slice of the cycle table.
    std::vector<int64_t> wcyc;
    std::vector<uint8_t> wrun;
    std::vector<T> lsx, lsd;                  // per_element with pair words: [nw][64] each lane's pair word

    void lane_pair_words(const uint16_t* pword, std::vector<T>& dst) {
        dst.clear();
        if (!pword) return;
        int64_t na = (int64_t)act.size();
        dst.assign((size_t)nw * kLanes, T(0));
        for (int64_t w = 0; w < nw; ++w)
            for (int l = 0; l < kLanes; ++l) {
                int64_t a = pe_first(w) + (J.bl >= kLanes ? 0 : l / J.bl);
                if (a < na) dst[(size_t)w * kLanes + l] = (T)pword[act[a]];
            }
    }

    void word_cycles() {
        int64_t na = (int64_t)act.size();
        lane_pair_words(J.x.pword, lsx);
        lane_pair_words(J.d.pword, lsd);
        wcyc.assign(nw, 0);
        wrun.assign(nw, 0);
        for (int64_t w = 0; w < nw; ++w) {
            if (J.bl >= kLanes) {
                int64_t a = w / wpp;
                // Reduced here, once per word, rather than in lane_randoms once per word and element.
                wcyc[w] = a < na ? (cyc[a] + (w % wpp) * kLanes) % J.period : 0;
                wrun[w] = a < na;
                continue;
            }
            int64_t a0 = w * ppw, a1 = std::min(na, a0 + ppw) - 1;
            wcyc[w] = cyc[a0];
            bool run = a1 - a0 == ppw - 1;
            for (int64_t a = a0 + 1; run && a <= a1; ++a) run = cyc[a] == cyc[a - 1] + J.bl;
            wrun[w] = run;
        }
    }

    // R of lane l of word w for generator offset g (per_element) into r[0..63].
    void lane_randoms(const T* table, int64_t g, int64_t w, T* r) const {
        if (wrun[w]) {
            std::memcpy(r, table + run_cycle(w, g), sizeof(T) * kLanes);
            return;
        }
        for (int j = 0; j < ppw; ++j)
            std::memcpy(r + j * J.bl, table + pair_cycle(w * ppw + j, g), sizeof(T) * J.bl);
    }

    // The table index of generator offset g at the first cycle of word w's run (wrun[w]), and of active pair a
    // (past the last active pair: 0, a padding lane's number, never counted).
    int64_t run_cycle(int64_t w, int64_t g) const {
        int64_t c = wcyc[w] + g;           // both < period
        return c >= J.period ? c - J.period : c;
    }
    int64_t pair_cycle(int64_t a, int64_t g) const {
        int64_t c = a < (int64_t)act.size() ? cyc[a] + g : 0;
        return c >= J.period ? c - J.period : c;
    }

    // Lane -> active pair index, and the first active index of word w (per_element layout).
    int64_t pe_first(int64_t w) const { return J.bl >= kLanes ? w / wpp : w * ppw; }

    void words_scalar(const std::vector<T>& mag, const std::vector<uint8_t>& sign, const T* table,
                      const int64_t* gen, const uint16_t* gword, const std::vector<T>& lsig, const T* lr,
                      int64_t len, int64_t width, std::vector<uint64_t>& pos, std::vector<uint64_t>& negw) {
        pos.assign((size_t)nw * width, 0);
        negw.assign((size_t)nw * width, 0);
        T r[kLanes], rbase[kLanes];
        uint8_t relp[kLanes];
        for (int64_t w = 0; w < nw; ++w) {
            int64_t base_gen = -1;        // the generator offset rbase holds (see words_simd)
            int64_t first;
            if (per_element) {
                first = pe_first(w);
                for (int l = 0; l < kLanes; ++l) relp[l] = J.bl >= kLanes ? 0 : (uint8_t)(l / J.bl);
            } else {
                first = wfirst[w];
                std::memcpy(relp, rel.data() + (size_t)w * kLanes, kLanes);
            }
            for (int64_t k = 0; k < len; ++k) {
                const T* rr;
                if (per_element) {
                    if (gen[k] != base_gen) {
                        lane_randoms(table, gen[k], w, rbase);
                        base_gen = gen[k];
                    }
                    const T gw = gword ? (T)gword[k] : T(0);
                    const T* sg = lsig.empty() ? nullptr : lsig.data() + (size_t)w * kLanes;
                    for (int l = 0; l < kLanes; ++l) r[l] = T(rbase[l] ^ gw ^ (sg ? sg[l] : T(0)));
                    rr = r;
                } else {
                    rr = lr + (size_t)w * kLanes;
                }
                const T* mrow = mag.data() + (size_t)k * stride + first;
                const uint8_t* srow = sign.data() + (size_t)k * stride + first;
                uint64_t bits = 0, nbits = 0;
                for (int l = 0; l < kLanes; ++l) {
                    uint64_t hit = rr[l] < mrow[relp[l]];
                    bits |= hit << l;
                    nbits |= (hit & (srow[relp[l]] >> 7)) << l;
                }
                pos[(size_t)w * width + k] = bits & ~nbits;
                negw[(size_t)w * width + k] = nbits;
            }
        }
    }

#if ESSOP_SIMD
    // lane_randoms into a register. A word whose pairs are not consecutive in the run-on numbering (with
    // per_pair scaling the pairs of a segment rarely are) takes one slice of BL numbers per pair: loaded
    // piece by piece into the register, not through memory, where the 64-byte load of the pieces' stores
    // would wait for them to retire.
    __m512i lane_randoms_simd(const T* table, int64_t g, int64_t w, uint8_t* scratch) const {
        auto cycle = [&](int64_t a) { return pair_cycle(a, g); };
        if (wrun[w]) return _mm512_loadu_si512(table + run_cycle(w, g));
        const int64_t a0 = w * ppw;
        switch (J.bl) {
        case 32:
            return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)(table + cycle(a0)))),
                                      _mm256_loadu_si256((const __m256i*)(table + cycle(a0 + 1))), 1);
        case 16: {
            __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i*)(table + cycle(a0))));
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i*)(table + cycle(a0 + 1))), 1);
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i*)(table + cycle(a0 + 2))), 2);
            return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i*)(table + cycle(a0 + 3))), 3);
        }
        case 8: {
            int64_t q[8];
            for (int j = 0; j < 8; ++j) std::memcpy(&q[j], table + cycle(a0 + j), 8);
            return _mm512_set_epi64(q[7], q[6], q[5], q[4], q[3], q[2], q[1], q[0]);
        }
        default:
            lane_randoms(table, g, w, reinterpret_cast<T*>(scratch));
            return _mm512_load_si512(scratch);
        }
    }

    // per_element: a tile of kTile consecutive words per element k. Generator k reads one 64-entry slice of
    // the cycle table per word, at k's own offset: word by word, those reads jump across the whole table for
    // every k; element by element over a tile, they walk kTile consecutive slices, and the magnitude rows'
    // reads are consecutive too. Generators that share a cycle offset (Sobol per_element and LFSR element
    // words: told apart by their XOR words only) read the table once per tile, not once per element.
    void words_simd_per_element(const std::vector<T>& mag, const std::vector<uint8_t>& sign, const T* table,
                                const int64_t* gen, const uint16_t* gword, const std::vector<T>& lsig,
                                int64_t len, int64_t width, bool want_sign, const uint8_t* pe_rel,
                                std::vector<uint64_t>& pos, std::vector<uint64_t>& negw) {
        constexpr int64_t kTile = 8;
        alignas(64) uint8_t r[kLanes];
        const __m512i relv = _mm512_load_si512(pe_rel);
        __m512i base[kTile];
        int64_t first[kTile];
        for (int64_t w0 = 0; w0 < nw; w0 += kTile) {
            const int64_t nt = std::min<int64_t>(kTile, nw - w0);
            for (int64_t t = 0; t < nt; ++t) first[t] = pe_first(w0 + t);
            int64_t base_gen = -1;
            for (int64_t k = 0; k < len; ++k) {
                if (gen[k] != base_gen) {
                    for (int64_t t = 0; t < nt; ++t) {
                        const int64_t w = w0 + t;
                        __m512i rv = lane_randoms_simd(table, gen[k], w, r);
                        if (!lsig.empty()) rv = _mm512_xor_si512(rv, _mm512_loadu_si512(lsig.data() + (size_t)w * kLanes));
                        base[t] = rv;
                    }
                    base_gen = gen[k];
                }
                const __m512i gv = _mm512_set1_epi8(gword ? (char)gword[k] : 0);
                const T* mrow = mag.data() + (size_t)k * stride;
                const uint8_t* srow = sign.data() + (size_t)k * stride;
                for (int64_t t = 0; t < nt; ++t) {
                    const size_t at = (size_t)(w0 + t) * width + k;
                    __m512i av = _mm512_loadu_si512(mrow + first[t]);
                    __mmask64 hit = _mm512_cmplt_epu8_mask(_mm512_xor_si512(base[t], gv),
                                                           _mm512_permutexvar_epi8(relv, av));
                    __mmask64 neg = 0;
                    if (want_sign) {
                        __m512i sv = _mm512_loadu_si512(srow + first[t]);
                        neg = hit & _mm512_movepi8_mask(_mm512_permutexvar_epi8(relv, sv));
                        negw[at] = (uint64_t)neg;
                    }
                    pos[at] = (uint64_t)(hit & ~neg);
                }
            }
        }
    }

    void words_simd(const std::vector<T>& mag, const std::vector<uint8_t>& sign, const T* table,
                    const int64_t* gen, const uint16_t* gword, const std::vector<T>& lsig, const T* lr,
                    int64_t len, int64_t width, bool want_sign, std::vector<uint64_t>& pos,
                    std::vector<uint64_t>& negw) {
        static_assert(sizeof(T) == 1, "the vector path handles q <= 8");
        pos.assign((size_t)nw * width, 0);
        if (want_sign) negw.assign((size_t)nw * width, 0);
        if (per_element) {
            alignas(64) uint8_t pe_rel[kLanes];
            for (int l = 0; l < kLanes; ++l) pe_rel[l] = J.bl >= kLanes ? 0 : (uint8_t)(l / J.bl);
            words_simd_per_element(mag, sign, table, gen, gword, lsig, len, width, want_sign, pe_rel, pos, negw);
            return;
        }
        // shared: one vector of random numbers per word (lr, pair words already applied), the same for every k.
        for (int64_t w = 0; w < nw; ++w) {
            const int64_t first = wfirst[w];
            const __m512i relv = _mm512_loadu_si512(rel.data() + (size_t)w * kLanes);
            const __m512i rv = _mm512_loadu_si512(lr + (size_t)w * kLanes);
            for (int64_t k = 0; k < len; ++k) {
                __m512i av = _mm512_loadu_si512(mag.data() + (size_t)k * stride + first);
                __mmask64 hit = _mm512_cmplt_epu8_mask(rv, _mm512_permutexvar_epi8(relv, av));
                __mmask64 neg = 0;
                if (want_sign) {
                    __m512i sv = _mm512_loadu_si512(sign.data() + (size_t)k * stride + first);
                    neg = hit & _mm512_movepi8_mask(_mm512_permutexvar_epi8(relv, sv));
                }
                pos[(size_t)w * width + k] = (uint64_t)(hit & ~neg);
                if (want_sign) negw[(size_t)w * width + k] = (uint64_t)neg;
            }
        }
    }
#endif

    void words(const std::vector<T>& mag, const std::vector<uint8_t>& sign, const T* table, const Side& s,
               const std::vector<T>& lsig, const T* lr, int64_t len, int64_t width, bool want_sign,
               std::vector<uint64_t>& pos, std::vector<uint64_t>& negw) {
#if ESSOP_SIMD
        if constexpr (sizeof(T) == 1) {
            words_simd(mag, sign, table, s.gen, s.gword, lsig, lr, len, width, want_sign, pos, negw);
            return;
        }
#endif
        (void)want_sign;
        words_scalar(mag, sign, table, s.gen, s.gword, lsig, lr, len, width, pos, negw);
    }

    // ---- popcount contraction ------------------------------------------------------------------------
    void contract_scalar() {
        for (int64_t w = 0; w < nw; ++w) {
            const uint64_t* x = X.data() + (size_t)w * n8;
            const uint64_t* xn = Xn.data() + (size_t)w * n8;
            for (int64_t i = 0; i < m; ++i) {
                uint64_t dp = Dp[(size_t)w * m4 + i], dn = Dn[(size_t)w * m4 + i];
                if (!(dp | dn)) continue;
                int64_t* a = acc.data() + (size_t)i * n8;
                for (int64_t j = 0; j < n; ++j) {
                    uint64_t xp = x[j], xm = xn[j];
                    a[j] += __builtin_popcountll((dp & xp) | (dn & xm)) -
                            (int64_t)__builtin_popcountll((dp & xm) | (dn & xp));
                }
            }
        }
    }

#if ESSOP_SIMD
    template <int NV, bool SX>
    void block(int64_t ib, int64_t jb) {
        __m512i A[4][NV];
        for (int ii = 0; ii < 4; ++ii)
            for (int v = 0; v < NV; ++v) A[ii][v] = _mm512_setzero_si512();
        for (int64_t w = 0; w < nw; ++w) {
            const uint64_t* dp = Dp.data() + (size_t)w * m4 + ib;
            const uint64_t* dn = Dn.data() + (size_t)w * m4 + ib;
            if (!(dp[0] | dp[1] | dp[2] | dp[3] | dn[0] | dn[1] | dn[2] | dn[3])) continue;
            __m512i xp[NV], xm[NV];
            for (int v = 0; v < NV; ++v) {
                xp[v] = _mm512_loadu_si512(X.data() + (size_t)w * n8 + jb + 8 * v);
                if (SX) xm[v] = _mm512_loadu_si512(Xn.data() + (size_t)w * n8 + jb + 8 * v);
            }
            for (int ii = 0; ii < 4; ++ii) {
                __m512i bp = _mm512_set1_epi64((long long)dp[ii]), bn = _mm512_set1_epi64((long long)dn[ii]);
                for (int v = 0; v < NV; ++v) {
                    if (SX) {
                        __m512i pos = _mm512_or_si512(_mm512_and_si512(bp, xp[v]), _mm512_and_si512(bn, xm[v]));
                        __m512i neg = _mm512_or_si512(_mm512_and_si512(bp, xm[v]), _mm512_and_si512(bn, xp[v]));
                        A[ii][v] = _mm512_add_epi64(A[ii][v], _mm512_sub_epi64(_mm512_popcnt_epi64(pos),
                                                                               _mm512_popcnt_epi64(neg)));
                    } else {
                        A[ii][v] = _mm512_add_epi64(
                            A[ii][v], _mm512_sub_epi64(_mm512_popcnt_epi64(_mm512_and_si512(bp, xp[v])),
                                                       _mm512_popcnt_epi64(_mm512_and_si512(bn, xp[v]))));
                    }
                }
            }
        }
        for (int ii = 0; ii < 4; ++ii)
            for (int v = 0; v < NV; ++v) {
                int64_t* a = acc.data() + (size_t)(ib + ii) * n8 + jb + 8 * v;
                _mm512_storeu_si512(a, _mm512_add_epi64(_mm512_loadu_si512(a), A[ii][v]));
            }
    }

    template <bool SX>
    void contract_simd() {
        for (int64_t ib = 0; ib < m4; ib += 4) {
            int64_t jb = 0;
            for (; jb + 32 <= n8; jb += 32) block<4, SX>(ib, jb);
            switch ((n8 - jb) / 8) {
                case 3: block<3, SX>(ib, jb); break;
                case 2: block<2, SX>(ib, jb); break;
                case 1: block<1, SX>(ib, jb); break;
                default: break;
            }
        }
    }
#endif

    void contract() {
#if ESSOP_SIMD
        if (signed_x) contract_simd<true>(); else contract_simd<false>();
#else
        contract_scalar();
#endif
    }

    // ---- expected mode: sum over pairs of (+-b_pi)(+-a_pj) ---------------------------------------------
    std::vector<int16_t> sa16, sb16;

    void signed16(const std::vector<T>& mag, const std::vector<uint8_t>& sign, int64_t len, int64_t K,
                  std::vector<int16_t>& dst) {
        int64_t na = (int64_t)act.size();
        dst.assign((size_t)len * K, 0);
        for (int64_t k = 0; k < len; ++k)
            for (int64_t a = 0; a < na; ++a) {
                int16_t v = (int16_t)mag[(size_t)k * stride + a];
                dst[(size_t)k * K + a] = sign[(size_t)k * stride + a] ? (int16_t)-v : v;
            }
    }

    void products() {
        int64_t na = (int64_t)act.size();
#if ESSOP_SIMD && defined(__AVX512VNNI__)
        if constexpr (sizeof(T) == 1) {
            // int16 dot products along the pairs; each int32 lane sums at most chunk_pairs / 16 products
            // below 2**16, far from overflow.
            const int64_t K = (na + 31) / 32 * 32;
            signed16(at, sxt, n, K, sa16);
            signed16(bt, sdt, m, K, sb16);
            const __m512i zero = _mm512_setzero_si512();
            for (int64_t ib = 0; ib < m; ib += 4)
                for (int64_t jb = 0; jb < n; jb += 4) {
                    __m512i A[4][4];
                    for (int ii = 0; ii < 4; ++ii)
                        for (int jj = 0; jj < 4; ++jj) A[ii][jj] = zero;
                    for (int64_t a = 0; a < K; a += 32) {
                        __m512i xv[4], dv[4];
                        for (int jj = 0; jj < 4; ++jj)
                            xv[jj] = jb + jj < n ? _mm512_loadu_si512(sa16.data() + (size_t)(jb + jj) * K + a) : zero;
                        for (int ii = 0; ii < 4; ++ii)
                            dv[ii] = ib + ii < m ? _mm512_loadu_si512(sb16.data() + (size_t)(ib + ii) * K + a) : zero;
                        for (int ii = 0; ii < 4; ++ii)
                            for (int jj = 0; jj < 4; ++jj) A[ii][jj] = _mm512_dpwssd_epi32(A[ii][jj], dv[ii], xv[jj]);
                    }
                    for (int ii = 0; ii < 4 && ib + ii < m; ++ii)
                        for (int jj = 0; jj < 4 && jb + jj < n; ++jj)
                            acc[(size_t)(ib + ii) * n8 + jb + jj] += _mm512_reduce_add_epi32(A[ii][jj]);
                }
            return;
        }
#endif
        for (int64_t i = 0; i < m; ++i)
            for (int64_t a = 0; a < na; ++a) {
                int64_t b = bt[(size_t)i * stride + a];
                if (!b) continue;
                if (sdt[(size_t)i * stride + a]) b = -b;
                for (int64_t j = 0; j < n; ++j) {
                    int64_t x = at[(size_t)j * stride + a];
                    acc[(size_t)i * n8 + j] += sxt[(size_t)j * stride + a] ? -b * x : b * x;
                }
            }
    }

    void products_chunk(int64_t qb, int64_t qe) {
        act.clear();
        for (int64_t i = qb; i < qe; ++i) {
            int64_t p = J.order[i];
            if (magnitude(J.x.vmax[p], J.x.exp[p], J.q) && magnitude(J.d.vmax[p], J.d.exp[p], J.q)) act.push_back(p);
        }
        if (act.empty()) return;
        stride = (int64_t)act.size() + kLanes;
        bool neg_d = false;
        gather(J.x, at, sxt, signed_x);
        gather(J.d, bt, sdt, neg_d);
        products();
    }

    // ---- one chunk: order[qb .. qe) of one segment ---------------------------------------------------
    void chunk(int64_t qb, int64_t qe) {
        { PROFILE(0); build_lanes(qb, qe); }
        if (act.empty() || nw == 0) return;
        int64_t na = (int64_t)act.size();
        stride = (na + ppw) / ppw * ppw + kLanes;   // room for the 64-byte loads past the last pair
        if (per_element) word_cycles();
        bool neg_d = false;
        { PROFILE(1); gather(J.x, at, sxt, signed_x); gather(J.d, bt, sdt, neg_d); }
        { PROFILE(2);
        words(at, sxt, tx, J.x, lsx, lrx.data(), n, n8, signed_x, X, Xn);
        words(bt, sdt, td, J.d, lsd, lrd.data(), m, m4, true, Dp, Dn); }
        { PROFILE(3); contract(); }
    }
};

template <typename T>
void run(const Job& J) {
    // Chunks never straddle segments; threads take them in turn and add their integer sums under a lock.
    struct Piece { int64_t s, qb, qe; };
    std::vector<Piece> pieces;
    for (int64_t s = 0; s < J.n_seg; ++s)
        for (int64_t qb = J.seg[s]; qb < J.seg[s + 1]; qb += J.chunk_pairs)
            pieces.push_back({s, qb, std::min(J.seg[s + 1], qb + (int64_t)J.chunk_pairs)});
    const int64_t n = J.x.len, m = J.d.len;
    std::memset(J.out, 0, sizeof(int64_t) * (size_t)J.n_seg * m * n);
    // OpenMP: built with -fopenmp against the libgomp.so.1 PyTorch has already loaded, so these threads are
    // PyTorch's own pool (separate threads would compete with its spinning workers for the cores).
    const int threads = std::max(1, std::min<int>(J.threads, (int)pieces.size()));
#pragma omp parallel num_threads(threads)
    {
        Worker<T> wk(J);
        int64_t current = -1;    // the segment whose sums wk.acc holds; flushed when the next piece differs
        auto flush = [&]() {
            if (current < 0) return;
#pragma omp critical(essop_out)
            {
                int64_t* o = J.out + (size_t)current * m * n;
                for (int64_t r = 0; r < m; ++r)
                    for (int64_t c = 0; c < n; ++c) o[r * n + c] += wk.acc[(size_t)r * wk.n8 + c];
            }
            std::fill(wk.acc.begin(), wk.acc.end(), 0);
        };
#pragma omp for schedule(dynamic, 1) nowait
        for (size_t i = 0; i < pieces.size(); ++i) {
            const Piece& pc = pieces[i];
            if (pc.s != current) {
                flush();
                current = pc.s;
            }
            if (J.expected) wk.products_chunk(pc.qb, pc.qe); else wk.chunk(pc.qb, pc.qe);
        }
        flush();
    }
}

// IEEE binary16 of a float, round to nearest even (the cast the array's FP16 input sees).
inline uint16_t to_fp16(float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu, e = a >> 23;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);
    if (e >= 143) return (uint16_t)(sign | 0x7C00u);           // |x| >= 2**16 (or Inf)
    if (e < 113) {                                              // below 2**-14: subnormal or zero
        if (e < 102) return (uint16_t)sign;                     // below 2**-25: rounds to zero
        uint32_t mant = (a & 0x7FFFFFu) | 0x800000u;
        int shift = 126 - (int)e;                               // 14 .. 24 bits below the 2**-24 unit
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1u), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (h & 1u))) ++h;         // may carry into the smallest normal
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((e - 112) << 10) | ((a >> 13) & 0x3FFu), rem = a & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;     // a carry may reach Inf: correct
    return (uint16_t)(sign | h);
}

}  // namespace

extern "C" {

// FP16 patterns of map * 2**s into a zero-padded map, and the largest |pattern| over the channels of every
// padded pixel into chmax [B][H + 2ph][W + 2pw]. map: finite float32 [B][C][H][W] (channels_last = 0) or
// [B][H][W][C] (channels_last = 1), contiguous; out has the same layout with H, W padded. 2**s is applied as
// two exact power-of-two products (s may exceed FP32's exponent range).
void essop_prepare(const float* map, int64_t B, int64_t C, int64_t H, int64_t W, int32_t s, int32_t ph, int32_t pw,
                   int32_t channels_last, uint16_t* out, uint16_t* chmax, int32_t threads) {
    const int64_t Hp = H + 2 * ph, Wp = W + 2 * pw;
    int s1 = s > 100 ? 100 : (s < -100 ? -100 : s), s2 = s - s1;
    float f1, f2;
    {
        uint32_t b1 = (uint32_t)(127 + s1) << 23, b2 = (uint32_t)(127 + s2) << 23;
        std::memcpy(&f1, &b1, 4);
        std::memcpy(&f2, &b2, 4);
    }
    // n values from src to FP16 patterns at dst; returns the largest |pattern| among them.
    auto convert = [&](const float* src, uint16_t* dst, int64_t cnt) -> uint16_t {
        uint16_t best = 0;
        int64_t i = 0;
#if ESSOP_SIMD
        const __m512 v1 = _mm512_set1_ps(f1), v2 = _mm512_set1_ps(f2);
        __m256i vbest = _mm256_setzero_si256();
        for (; i + 16 <= cnt; i += 16) {
            __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(src + i), v1), v2);
            __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_storeu_si256((__m256i*)(dst + i), h);
            vbest = _mm256_max_epu16(vbest, _mm256_and_si256(h, _mm256_set1_epi16(0x7FFF)));
        }
        alignas(32) uint16_t lanes[16];
        _mm256_store_si256((__m256i*)lanes, vbest);
        for (int l = 0; l < 16; ++l) best = lanes[l] > best ? lanes[l] : best;
#endif
        for (; i < cnt; ++i) {
            uint16_t h = to_fp16(src[i] * f1 * f2);
            dst[i] = h;
            uint16_t mag = h & 0x7FFF;
            best = mag > best ? mag : best;
        }
        return best;
    };
    const int nt = std::max(1, std::min<int>(threads, (int)B));
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
        uint16_t* cm = chmax + b * Hp * Wp;
        std::memset(cm, 0, sizeof(uint16_t) * Hp * Wp);
        if (channels_last) {
            uint16_t* o = out + b * Hp * Wp * C;
            std::memset(o, 0, sizeof(uint16_t) * Hp * Wp * C);
            for (int64_t y = 0; y < H; ++y)
                for (int64_t x = 0; x < W; ++x)
                    cm[(y + ph) * Wp + x + pw] = convert(map + ((b * H + y) * W + x) * C,
                                                         o + ((y + ph) * Wp + x + pw) * C, C);
            continue;
        }
        for (int64_t c = 0; c < C; ++c) {
            uint16_t* o = out + (b * C + c) * Hp * Wp;
            const float* src = map + (b * C + c) * H * W;
            std::memset(o, 0, sizeof(uint16_t) * ph * Wp);
            std::memset(o + (ph + H) * Wp, 0, sizeof(uint16_t) * ph * Wp);
            for (int64_t y = 0; y < H; ++y) {
                uint16_t* row = o + (y + ph) * Wp;
                uint16_t* crow = cm + (y + ph) * Wp + pw;
                for (int i = 0; i < pw; ++i) row[i] = row[pw + W + i] = 0;
                convert(src + y * W, row + pw, W);
                for (int64_t x = 0; x < W; ++x) {
                    uint16_t mag = row[pw + x] & 0x7FFF;
                    crow[x] = mag > crow[x] ? mag : crow[x];
                }
            }
        }
    }
}

// Largest |v| of a float32 array (NaN if any element is NaN): the layer maxima that choose the pre-scales.
float essop_absmax(const float* v, int64_t count, int32_t threads) {
    float best = 0.0f;
    int nan = 0;
#pragma omp parallel for num_threads(std::max(1, threads)) reduction(max : best) reduction(| : nan) schedule(static)
    for (int64_t i = 0; i < count; ++i) {
        float a = std::fabs(v[i]);
        nan |= a != a;
        best = a > best ? a : best;
    }
    return nan ? std::numeric_limits<float>::quiet_NaN() : best;
}

// 1 when this build uses the AVX-512 path (for the q <= 8 case), else 0.
int essop_simd(void) { return ESSOP_SIMD; }

// Counts (or, with `expected`, sums of signed magnitude products) of every segment; returns 0, or a
// negative code for arguments this build cannot take.
int essop_segment_counts(
    const uint16_t* x_map, int64_t x_len, const int64_t* x_base, const int64_t* x_off, const int32_t* x_exp,
    const uint16_t* x_vmax, int64_t n, const int64_t* x_gen, const void* x_table, const uint16_t* x_gword,
    const uint16_t* x_pword,
    const uint16_t* d_map, int64_t d_len, const int64_t* d_base, const int64_t* d_off, const int32_t* d_exp,
    const uint16_t* d_vmax, int64_t m, const int64_t* d_gen, const void* d_table, const uint16_t* d_gword,
    const uint16_t* d_pword,
    const int64_t* order, const int64_t* seg, int64_t n_seg, int64_t start_pair, int64_t period,
    int32_t bl, int32_t q, int32_t restart, int32_t threads, int32_t chunk_pairs, int64_t* out,
    int32_t gather32, int32_t expected) {
    if (n < 1 || m < 1 || n_seg < 0 || bl < 2 || (bl & (bl - 1)) || q < 1 || q > 16 || chunk_pairs < 1 ||
        period < 1 || ((x_gen == nullptr) != (d_gen == nullptr)) || ((x_pword == nullptr) != (d_pword == nullptr)) ||
        (x_gword && !x_gen) || (d_gword && !d_gen))
        return -1;
    Job J{{x_map, x_len, x_base, x_off, x_exp, x_vmax, n, x_gen, x_table, x_gword, x_pword},
          {d_map, d_len, d_base, d_off, d_exp, d_vmax, m, d_gen, d_table, d_gword, d_pword},
          order, seg, n_seg, start_pair, period, bl, q, restart, threads, chunk_pairs, out, gather32, expected};
    if (q <= 8) run<uint8_t>(J); else run<uint16_t>(J);
    return 0;
}

}  // extern "C"
