/*
 * Fused CPU loops of the graph transformer's edge-modulated attention (float32), loaded by
 * sympe/diffusion/nn/cpu_kernel.py through ctypes. The math and the names are those of
 * sympe/diffusion/nn/edge_attention.py:
 *
 *   [M0 | A0] = E W^T                  (one GEMM, done by the caller; biases are added here)
 *   Mf_ijc = M0_ijc + b1p_c             (b1p = b1 + 1)
 *   S_ijc  = A0_ijc + b2_c + Q_ic K_jc Mf_ijc
 *   a_ijc  = softmax over the real keys j of S_ijc   (1/n for every key when the graph has no real node,
 *            as the PyTorch formulation's finite key bias gives)
 *   h_ic   = sum_j a_ijc V_jc
 *   F_ijc  = m_bc S_ijc                 (the caller's GEMM F W_out^T gives the new edge stream)
 *
 * Layout: B graphs, n nodes, d channels; Q, K, V, h (B, n, d); the pair tensors M0, A0, S, F, gF have one row
 * of d floats per pair (b, i, j), rows r = (b n + i) n + j, each with its own row stride in floats (so M0 and A0
 * can be the two halves of one GEMM output of width 2d, and S can be written over A0 or into its own buffer);
 * m (B, d); mask (B, n) bytes (1 = real node). Backward reads M0 and S (a is recomputed from S) and overwrites
 * them with dM and dA = dS. Every function handles the graphs [b0, b1), so that the caller can split a batch
 * over threads; outputs of different graphs never overlap.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* exp(x) for x <= 0 (here x = S - max_j S over the attended keys): Cody-Waite range reduction x = k ln2 + r,
 * |r| <= ln2/2, and the degree-6 minimax polynomial of Cephes' expf (relative error about 1e-7); 2^k is built in
 * the exponent bits. x is clamped to [-87, 0]: below, exp(-87) ~ 1.6e-38 replaces a smaller value; above (a
 * padded key scoring over the real maximum, whose weight is then multiplied by zero) it returns 1, so the result
 * is always finite and k stays in [-126, 0]. Written so that the compiler vectorizes it (no calls, no branches). */
static inline float exp_nonpos(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 0.0f ? 0.0f : x;
    float kf = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)kf + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static int any_real(const uint8_t *mask_b, int64_t n) {
    for (int64_t j = 0; j < n; ++j)
        if (mask_b[j]) return 1;
    return 0;
}

/* Softmax statistics over the keys of one query row: mx_c = max_j S_ijc, inv_c = 1 / sum_j exp(S_ijc - mx_c),
 * over the keys with use[j] != 0. S rows have stride `rs`. */
static void softmax_stats(const float *S, int64_t rs, int64_t n, int64_t d, const uint8_t *use,
                          float *mx, float *inv) {
    for (int64_t c = 0; c < d; ++c) { mx[c] = -3.4e38f; inv[c] = 0.0f; }
    for (int64_t j = 0; j < n; ++j) {
        if (!use[j]) continue;
        const float *s = S + j * rs;
        for (int64_t c = 0; c < d; ++c) mx[c] = s[c] > mx[c] ? s[c] : mx[c];
    }
    for (int64_t j = 0; j < n; ++j) {
        if (!use[j]) continue;
        const float *s = S + j * rs;
        for (int64_t c = 0; c < d; ++c) inv[c] += exp_nonpos(s[c] - mx[c]);
    }
    for (int64_t c = 0; c < d; ++c) inv[c] = 1.0f / inv[c];
}

/* Forward over graphs [b0, b1). Reads M0 (row stride rm) and A0 (stride ra); writes S (stride rs; may be A0
 * itself), F (if F != NULL; stride d) and h. Returns 0, or -1 when scratch memory could not be allocated. */
int sympe_edge_attention_forward(int64_t b0, int64_t b1, int64_t n, int64_t d,
                                 const float *Q, const float *K, const float *V,
                                 const float *M0, int64_t rm, const float *A0, int64_t ra, float *S, int64_t rs,
                                 const float *b1p, const float *b2, const float *m, const uint8_t *mask,
                                 float *F, float *h) {
    float *scratch = (float *)malloc(sizeof(float) * (size_t)(3 * d + 1));
    uint8_t *use = (uint8_t *)malloc((size_t)n + 1);
    if (!scratch || !use) { free(scratch); free(use); return -1; }
    float *mx = scratch, *sum = scratch + d, *acc = scratch + 2 * d;
    for (int64_t b = b0; b < b1; ++b) {
        const uint8_t *mb = mask + b * n;
        int all = !any_real(mb, n);
        for (int64_t j = 0; j < n; ++j) use[j] = all ? 1 : mb[j];
        const float *mvec = m + b * d;
        for (int64_t i = 0; i < n; ++i) {
            const float *q = Q + (b * n + i) * d;
            const int64_t r0 = (b * n + i) * n;
            for (int64_t c = 0; c < d; ++c) mx[c] = -3.4e38f;
            for (int64_t j = 0; j < n; ++j) {
                const float *k = K + (b * n + j) * d;
                const float *m0 = M0 + (r0 + j) * rm;
                const float *a0 = A0 + (r0 + j) * ra;
                float *s = S + (r0 + j) * rs;
                float *f = F ? F + (r0 + j) * d : NULL;
                for (int64_t c = 0; c < d; ++c) s[c] = a0[c] + b2[c] + q[c] * k[c] * (m0[c] + b1p[c]);
                if (f)
                    for (int64_t c = 0; c < d; ++c) f[c] = mvec[c] * s[c];
                if (use[j])
                    for (int64_t c = 0; c < d; ++c) mx[c] = s[c] > mx[c] ? s[c] : mx[c];
            }
            for (int64_t c = 0; c < d; ++c) { sum[c] = 0.0f; acc[c] = 0.0f; }
            for (int64_t j = 0; j < n; ++j) {
                if (!use[j]) continue;
                const float *s = S + (r0 + j) * rs;
                const float *v = V + (b * n + j) * d;
                for (int64_t c = 0; c < d; ++c) {
                    float e = all ? 1.0f : exp_nonpos(s[c] - mx[c]);
                    sum[c] += e;
                    acc[c] += e * v[c];
                }
            }
            float *hi = h + (b * n + i) * d;
            for (int64_t c = 0; c < d; ++c) hi[c] = acc[c] / sum[c];
        }
    }
    free(scratch);
    free(use);
    return 0;
}

/* One (query i, key j) pair of the backward, over the d channels (restrict and no branches, so that it
 * vectorizes). `uniform` is 1 for a graph without real nodes (a = inv), else 0 (a = exp(S - mx) inv); a missing
 * gF or a key that is not attended is passed as a zero vector. */
static inline void backward_pair(int64_t d, float uniform,
                                 const float *restrict q, const float *restrict k, const float *restrict v,
                                 const float *restrict hi, const float *restrict ghi, const float *restrict gf,
                                 const float *restrict mvec, const float *restrict b1p,
                                 const float *restrict mx, const float *restrict inv,
                                 float *restrict m0, float *restrict s, float *restrict f,
                                 float *restrict gq, float *restrict gk, float *restrict gv,
                                 float *restrict gmb, float *restrict gbM, float *restrict gbA) {
    for (int64_t c = 0; c < d; ++c) {
        float sv = s[c];
        f[c] = mvec[c] * sv;
        gmb[c] += gf[c] * sv;
        float a = (uniform + (1.0f - uniform) * exp_nonpos(sv - mx[c])) * inv[c];
        float aw = a * ghi[c];
        gv[c] += aw;
        float ds = mvec[c] * gf[c] + aw * (v[c] - hi[c]);
        float mf = m0[c] + b1p[c];
        gq[c] += ds * mf * k[c];
        gk[c] += ds * mf * q[c];
        float dm = ds * q[c] * k[c];
        m0[c] = dm;
        s[c] = ds;
        gbM[c] += dm;
        gbA[c] += ds;
    }
}

/* Backward over graphs [b0, b1). Inputs: M0 (row stride rm) and S (stride rs), overwritten with dM and dA = dS;
 * the incoming
 * gradients gF = dE_out W_out (B, n, n, d; may be NULL) and gh (B, n, d; may be NULL). Outputs (zeroed by the
 * caller, accumulated here): gQ, gK, gV (B, n, d), gm (B, d) = sum_ij gF_ij * S_ij, gb (B, 2d) per-graph column
 * sums of [dM | dA]; F (if not NULL) receives m * S before S is overwritten. With ds the gradient of S:
 *   ds_ijc = m_bc gF_ijc + a_ijc gh_ic (V_jc - h_ic)
 *   gV_jc += a_ijc gh_ic,  gQ_ic += ds Mf K_jc,  gK_jc += ds Mf Q_ic,  dM = ds Q_ic K_jc,  dA = ds.
 * Returns 0, or -1 when scratch memory could not be allocated. */
int sympe_edge_attention_backward(int64_t b0, int64_t b1, int64_t n, int64_t d,
                                  const float *Q, const float *K, const float *V, const float *h,
                                  float *M0, int64_t rm, float *S, int64_t rs,
                                  const float *b1p, const float *m, const uint8_t *mask,
                                  const float *gF, const float *gh, float *F,
                                  float *gQ, float *gK, float *gV, float *gm, float *gb) {
    /* mx, inv, a zero vector (missing gF / gh, keys not attended) and a sink for F when it is not wanted */
    float *scratch = (float *)calloc((size_t)(4 * d + 1), sizeof(float));
    uint8_t *use = (uint8_t *)malloc((size_t)n + 1);
    if (!scratch || !use) { free(scratch); free(use); return -1; }
    float *mx = scratch, *inv = scratch + d, *zero = scratch + 2 * d, *sink = scratch + 3 * d;
    for (int64_t b = b0; b < b1; ++b) {
        const uint8_t *mb = mask + b * n;
        int all = !any_real(mb, n);
        for (int64_t j = 0; j < n; ++j) use[j] = all ? 1 : mb[j];
        const float *mvec = m + b * d;
        float *gmb = gm + b * d;
        float *gbM = gb + b * 2 * d, *gbA = gb + b * 2 * d + d;
        for (int64_t i = 0; i < n; ++i) {
            const float *q = Q + (b * n + i) * d;
            const float *hi = h + (b * n + i) * d;
            const float *ghi = gh ? gh + (b * n + i) * d : zero;
            float *gq = gQ + (b * n + i) * d;
            const int64_t r0 = (b * n + i) * n;
            if (all)
                for (int64_t c = 0; c < d; ++c) { mx[c] = 0.0f; inv[c] = 1.0f / (float)n; }
            else
                softmax_stats(S + r0 * rs, rs, n, d, use, mx, inv);
            for (int64_t j = 0; j < n; ++j) {
                const float *gf = gF ? gF + (r0 + j) * d : zero;
                float *f = F ? F + (r0 + j) * d : sink;
                backward_pair(d, all ? 1.0f : 0.0f, q, K + (b * n + j) * d, V + (b * n + j) * d, hi,
                              use[j] ? ghi : zero, gf, mvec, b1p, mx, inv, M0 + (r0 + j) * rm, S + (r0 + j) * rs, f, gq,
                              gK + (b * n + j) * d, gV + (b * n + j) * d, gmb, gbM, gbA);
            }
        }
    }
    free(scratch);
    free(use);
    return 0;
}
