// Coefficient gradients (gradient.go): the forward pass of a llama model
// whose weights are task-arithmetic merges, W = base + Σ_s c[idx_s]·Δ_s,
// built from ggml ops inside one graph with the coefficient vector c as
// its only parameter, and ggml's automatic differentiation for dL/dc.
// ggml is declared by hand (see ggmldecl.h).

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ggmldecl.h"
#include "gradient.h"

size_t                ggml_used_mem(const struct ggml_context * ctx);
struct ggml_tensor *  ggml_new_tensor_1d(struct ggml_context * ctx, int type, int64_t ne0);
struct ggml_tensor *  ggml_new_tensor_2d(struct ggml_context * ctx, int type, int64_t ne0, int64_t ne1);
void *                ggml_get_data(const struct ggml_tensor * tensor);
size_t                ggml_nbytes(const struct ggml_tensor * tensor);
void                  ggml_set_param(struct ggml_tensor * tensor);
void                  ggml_set_loss(struct ggml_tensor * tensor);
struct ggml_tensor *  ggml_mul_mat(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor *  ggml_get_rows(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor *  ggml_rms_norm(struct ggml_context * ctx, struct ggml_tensor * a, float eps);
struct ggml_tensor *  ggml_silu(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor *  ggml_reshape_3d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0, int64_t ne1, int64_t ne2);
struct ggml_tensor *  ggml_permute(struct ggml_context * ctx, struct ggml_tensor * a, int axis0, int axis1, int axis2, int axis3);
struct ggml_tensor *  ggml_cont(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor *  ggml_cont_2d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0, int64_t ne1);
struct ggml_tensor *  ggml_view_1d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0, size_t offset);
struct ggml_tensor *  ggml_view_2d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0, int64_t ne1, size_t nb1, size_t offset);
struct ggml_tensor *  ggml_rope_ext(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b, struct ggml_tensor * c,
                                   int n_dims, int mode, int n_ctx_orig, float freq_base, float freq_scale, float ext_factor,
                                   float attn_factor, float beta_fast, float beta_slow);
struct ggml_tensor *  ggml_soft_max_ext(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * mask, float scale, float max_bias);
struct ggml_tensor *  ggml_cross_entropy_loss(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_cgraph *  ggml_new_graph_custom(struct ggml_context * ctx, size_t size, bool grads);
void                  ggml_build_backward_expand(struct ggml_context * ctx, struct ggml_cgraph * cgraph, struct ggml_tensor ** grad_accs);
void                  ggml_graph_reset(struct ggml_cgraph * cgraph);
struct ggml_tensor *  ggml_graph_get_grad(const struct ggml_cgraph * cgraph, const struct ggml_tensor * node);
int                   ggml_graph_compute_with_ctx(struct ggml_context * ctx, struct ggml_cgraph * cgraph, int n_threads);

enum { EVM_GF32 = 0, EVM_GI32 = 26, EVM_ROPE_NORM = 0 };

struct evm_grad {
    struct ggml_context * ctx;
    struct ggml_cgraph *  graph;
    struct ggml_tensor *  coef, * tokens, * labels, * loss, * grad;
    int n, from, vocab, ncoef, threads;
};

static struct ggml_tensor * new_like(struct ggml_context * ctx, const struct evm_grad_tensor * t) {
    return t->ne1 > 1 ? ggml_new_tensor_2d(ctx, EVM_GF32, t->ne0, t->ne1) : ggml_new_tensor_1d(ctx, EVM_GF32, t->ne0);
}

// merged is t's weight in the graph: its base, plus each source's delta
// times its coefficient (a one-element view of coef, broadcast).
static struct ggml_tensor * merged(struct ggml_context * ctx, const struct evm_grad_tensor * t, struct ggml_tensor * coef) {
    struct ggml_tensor * w = new_like(ctx, t);
    memcpy(ggml_get_data(w), t->base, ggml_nbytes(w));
    for (int s = 0; s < t->nsrc; s++) {
        struct ggml_tensor * d = new_like(ctx, t);
        memcpy(ggml_get_data(d), t->delta[s], ggml_nbytes(d));
        w = ggml_add(ctx, w, ggml_mul(ctx, d, ggml_view_1d(ctx, coef, 1, (size_t) t->idx[s] * sizeof(float))));
    }
    return w;
}

struct evm_grad * evm_grad_new(const struct evm_grad_model * m, int n, int from, int threads, size_t mem) {
    struct ggml_init_params ip = { mem, NULL, false };
    struct ggml_context * ctx = ggml_init(ip);
    if (!ctx) {
        return NULL;
    }
    struct evm_grad * g = calloc(1, sizeof *g);
    g->ctx = ctx, g->n = n, g->from = from, g->vocab = m->vocab, g->ncoef = m->ncoef, g->threads = threads;

    g->coef = ggml_new_tensor_1d(ctx, EVM_GF32, m->ncoef);
    ggml_set_param(g->coef);
    g->tokens = ggml_new_tensor_1d(ctx, EVM_GI32, n);
    struct ggml_tensor * pos = ggml_new_tensor_1d(ctx, EVM_GI32, n);
    struct ggml_tensor * mask = ggml_new_tensor_2d(ctx, EVM_GF32, n, n);
    int32_t * p = ggml_get_data(pos);
    float * mk = ggml_get_data(mask);
    for (int q = 0; q < n; q++) {
        p[q] = q;
        for (int k = 0; k < n; k++) {
            mk[q * n + k] = k <= q ? 0.0f : -INFINITY; // causal
        }
    }
    const int hd = m->embd / m->heads;
    struct ggml_tensor * freqs = NULL; // rope frequency factors: the base's, constant
    if (m->tensors[EVM_GRAD_ROPE_FREQS].ne0 > 0) {
        freqs = new_like(ctx, &m->tensors[EVM_GRAD_ROPE_FREQS]);
        memcpy(ggml_get_data(freqs), m->tensors[EVM_GRAD_ROPE_FREQS].base, ggml_nbytes(freqs));
    }
    struct ggml_tensor * emb = merged(ctx, &m->tensors[EVM_GRAD_EMBD], g->coef);
    struct ggml_tensor * x = ggml_get_rows(ctx, emb, g->tokens);
    for (int l = 0; l < m->layers; l++) {
        const struct evm_grad_tensor * L = &m->tensors[EVM_GRAD_FIRST + EVM_GRAD_PER_LAYER * l];
        struct ggml_tensor * w[EVM_GRAD_PER_LAYER];
        for (int i = 0; i < EVM_GRAD_PER_LAYER; i++) {
            w[i] = merged(ctx, &L[i], g->coef);
        }
        // attention: RMS norm, Q K V, RoPE (llama's normal mode), causal softmax, output projection
        struct ggml_tensor * h = ggml_mul(ctx, ggml_rms_norm(ctx, x, m->eps), w[0]);
        struct ggml_tensor * q = ggml_reshape_3d(ctx, ggml_mul_mat(ctx, w[1], h), hd, m->heads, n);
        struct ggml_tensor * k = ggml_reshape_3d(ctx, ggml_mul_mat(ctx, w[2], h), hd, m->kv_heads, n);
        struct ggml_tensor * v = ggml_reshape_3d(ctx, ggml_mul_mat(ctx, w[3], h), hd, m->kv_heads, n);
        q = ggml_rope_ext(ctx, q, pos, freqs, hd, EVM_ROPE_NORM, m->ctx_train, m->rope_base, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f);
        k = ggml_rope_ext(ctx, k, pos, freqs, hd, EVM_ROPE_NORM, m->ctx_train, m->rope_base, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f);
        // Grouped-query attention: ggml_mul_mat broadcasts the kv_heads
        // key and value heads over the query heads (query head i reads
        // head i / (heads / kv_heads), as llama.cpp's attention), and its
        // backward pass sums the broadcast gradients back.
        struct ggml_tensor * kq = ggml_mul_mat(ctx, ggml_cont(ctx, ggml_permute(ctx, k, 0, 2, 1, 3)), ggml_permute(ctx, q, 0, 2, 1, 3));
        kq = ggml_soft_max_ext(ctx, kq, mask, 1.0f / sqrtf((float) hd), 0.0f);              // [n_k, n_q, heads]
        struct ggml_tensor * vt = ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3));         // [n_k, hd, kv_heads]
        struct ggml_tensor * att = ggml_permute(ctx, ggml_mul_mat(ctx, vt, kq), 0, 2, 1, 3); // [hd, heads, n_q]
        x = ggml_add(ctx, x, ggml_mul_mat(ctx, w[4], ggml_cont_2d(ctx, att, m->embd, n)));
        // MLP: RMS norm, SwiGLU
        h = ggml_mul(ctx, ggml_rms_norm(ctx, x, m->eps), w[5]);
        struct ggml_tensor * ff = ggml_mul(ctx, ggml_silu(ctx, ggml_mul_mat(ctx, w[6], h)), ggml_mul_mat(ctx, w[7], h));
        x = ggml_add(ctx, x, ggml_mul_mat(ctx, w[8], ff));
    }
    x = ggml_mul(ctx, ggml_rms_norm(ctx, x, m->eps), merged(ctx, &m->tensors[EVM_GRAD_OUTPUT_NORM], g->coef));
    // logits only where scored: positions from … n−2 predict the next token
    const int ns = n - 1 - from;
    struct ggml_tensor * xs = ggml_cont(ctx, ggml_view_2d(ctx, x, m->embd, ns, (size_t) m->embd * sizeof(float), (size_t) from * m->embd * sizeof(float)));
    struct ggml_tensor * out = m->tensors[EVM_GRAD_OUTPUT].ne0 > 0 ? merged(ctx, &m->tensors[EVM_GRAD_OUTPUT], g->coef) : emb;
    g->labels = ggml_new_tensor_2d(ctx, EVM_GF32, m->vocab, ns);
    g->loss = ggml_cross_entropy_loss(ctx, ggml_mul_mat(ctx, out, xs), g->labels);
    ggml_set_loss(g->loss);
    g->graph = ggml_new_graph_custom(ctx, 16384, true);
    ggml_build_forward_expand(g->graph, g->loss);
    ggml_build_backward_expand(ctx, g->graph, NULL);
    g->grad = ggml_graph_get_grad(g->graph, g->coef);
    return g;
}

size_t evm_grad_used(const struct evm_grad * g) { return ggml_used_mem(g->ctx); }

int evm_grad_window(struct evm_grad * g, const float * coef, const int32_t * tokens, double * loss, float * grad) {
    memcpy(ggml_get_data(g->coef), coef, sizeof(float) * g->ncoef);
    memcpy(ggml_get_data(g->tokens), tokens, sizeof(int32_t) * g->n);
    const int ns = g->n - 1 - g->from;
    float * lb = ggml_get_data(g->labels);
    memset(lb, 0, ggml_nbytes(g->labels));
    for (int j = 0; j < ns; j++) {
        lb[(size_t) j * g->vocab + tokens[g->from + j + 1]] = 1.0f; // one-hot next token
    }
    ggml_graph_reset(g->graph);
    int status = ggml_graph_compute_with_ctx(g->ctx, g->graph, g->threads);
    if (status != 0) {
        return status;
    }
    *loss = *(const float *) ggml_get_data(g->loss);
    if (g->grad) {
        memcpy(grad, ggml_get_data(g->grad), sizeof(float) * g->ncoef);
    } else {
        memset(grad, 0, sizeof(float) * g->ncoef);
    }
    return 0;
}

void evm_grad_free(struct evm_grad * g) {
    ggml_free(g->ctx);
    free(g);
}
