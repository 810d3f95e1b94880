// The merge as a ggml graph (graph.go), with ggml declared by hand (see
// ggmldecl.h).

#include "ggmldecl.h"

struct ggml_backend;
struct ggml_backend_buffer;
struct ggml_backend_buffer_type;
struct ggml_backend_device;
struct ggml_backend_reg;
struct ggml_gallocr;

size_t                ggml_tensor_overhead(void);
size_t                ggml_graph_overhead(void);
struct ggml_tensor *  ggml_new_tensor(struct ggml_context * ctx, int type, int n_dims, const int64_t * ne);
bool                  ggml_are_same_shape(const struct ggml_tensor * a, const struct ggml_tensor * b);
struct ggml_tensor *  ggml_cast(struct ggml_context * ctx, struct ggml_tensor * a, int type);
struct ggml_tensor *  ggml_scale(struct ggml_context * ctx, struct ggml_tensor * a, float s);
struct ggml_tensor *  ggml_sub(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor *  ggml_cpy(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor *  ggml_div(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor *  ggml_abs(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor *  ggml_neg(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor *  ggml_step(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor *  ggml_relu(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor *  ggml_scale_bias(struct ggml_context * ctx, struct ggml_tensor * a, float s, float b);
struct ggml_cgraph *  ggml_new_graph(struct ggml_context * ctx);
int                   ggml_graph_n_nodes(struct ggml_cgraph * cgraph);
struct ggml_tensor *  ggml_graph_node(struct ggml_cgraph * cgraph, int i);
bool                  ggml_backend_supports_op(struct ggml_backend * backend, const struct ggml_tensor * op);

struct ggml_backend_buffer *      ggml_backend_alloc_ctx_tensors(struct ggml_context * ctx, struct ggml_backend * backend);
void                              ggml_backend_buffer_free(struct ggml_backend_buffer * buffer);
struct ggml_backend_buffer_type * ggml_backend_buffer_get_type(struct ggml_backend_buffer * buffer);
struct ggml_backend_device *      ggml_backend_buft_get_device(struct ggml_backend_buffer_type * buft);
struct ggml_backend *             ggml_backend_dev_init(struct ggml_backend_device * device, const char * params);
struct ggml_backend_device *      ggml_backend_dev_by_type(int type);
bool                              ggml_backend_buft_is_host(struct ggml_backend_buffer_type * buft);
struct ggml_backend_reg *         ggml_backend_dev_backend_reg(struct ggml_backend_device * device);
void *                            ggml_backend_reg_get_proc_address(struct ggml_backend_reg * reg, const char * name);
void                              ggml_backend_free(struct ggml_backend * backend);
struct ggml_backend_buffer_type * ggml_backend_get_default_buffer_type(struct ggml_backend * backend);
int                               ggml_backend_graph_compute(struct ggml_backend * backend, struct ggml_cgraph * cgraph);
void                              ggml_backend_synchronize(struct ggml_backend * backend);
void                              ggml_backend_tensor_set(struct ggml_tensor * tensor, const void * data, size_t offset, size_t size);

struct ggml_gallocr * ggml_gallocr_new(struct ggml_backend_buffer_type * buft);
void                  ggml_gallocr_free(struct ggml_gallocr * galloc);
bool                  ggml_gallocr_alloc_graph(struct ggml_gallocr * galloc, struct ggml_cgraph * graph);

enum { EVM_F32 = 0 };

// The leading fields of struct ggml_tensor (as in weights.go).
struct evm_graph_head {
    int32_t                      type;
    struct ggml_backend_buffer * buffer;
};

// evm_graph_backend starts a backend on the device holding weight (the
// CPU for host memory) and returns it, with *buft its default buffer
// type; NULL when the weight's buffer type belongs to no device.
struct ggml_backend * evm_graph_backend(const struct ggml_tensor * weight, int threads, struct ggml_backend_buffer_type ** buft) {
    const struct evm_graph_head * h = (const struct evm_graph_head *) weight;
    if (h->buffer == NULL) {
        return NULL;
    }
    struct ggml_backend_buffer_type * wbuft = ggml_backend_buffer_get_type(h->buffer);
    struct ggml_backend_device * dev = ggml_backend_buft_get_device(wbuft);
    if (dev == NULL && ggml_backend_buft_is_host(wbuft)) {
        dev = ggml_backend_dev_by_type(0); // the CPU's buffer type names no device
    }
    if (dev == NULL) {
        return NULL;
    }
    struct ggml_backend * be = ggml_backend_dev_init(dev, NULL);
    if (be == NULL) {
        return NULL;
    }
    struct ggml_backend_reg * reg = ggml_backend_dev_backend_reg(dev);
    if (reg != NULL && threads > 0) {
        void (*set_threads)(struct ggml_backend *, int) =
            (void (*)(struct ggml_backend *, int)) ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads");
        if (set_threads != NULL) {
            set_threads(be, threads);
        }
    }
    *buft = ggml_backend_get_default_buffer_type(be);
    return be;
}

struct ggml_backend_buffer_type * evm_graph_weight_buft(const struct ggml_tensor * weight) {
    const struct evm_graph_head * h = (const struct evm_graph_head *) weight;
    return h->buffer == NULL ? NULL : ggml_backend_buffer_get_type(h->buffer);
}

// evm_graph_upload allocates a tensor of type and shape ne on the backend,
// in a buffer of its own, and copies data (its GGUF bytes) into it. It
// returns the tensor and sets *ctx and *buf, which own it.
struct ggml_tensor * evm_graph_upload(struct ggml_backend * be, int type, const int64_t * ne, const void * data, size_t size,
                                      struct ggml_context ** ctx, struct ggml_backend_buffer ** buf) {
    struct ggml_init_params p = { ggml_tensor_overhead() * 2, NULL, true };
    *ctx = ggml_init(p);
    *buf = NULL;
    if (*ctx == NULL) {
        return NULL;
    }
    struct ggml_tensor * t = ggml_new_tensor(*ctx, type, 4, ne);
    *buf = ggml_backend_alloc_ctx_tensors(*ctx, be);
    if (*buf == NULL) {
        ggml_free(*ctx);
        *ctx = NULL;
        return NULL;
    }
    ggml_backend_tensor_set(t, data, 0, size);
    return t;
}

void evm_graph_release(struct ggml_context * ctx, struct ggml_backend_buffer * buf) {
    if (buf != NULL) {
        ggml_backend_buffer_free(buf);
    }
    if (ctx != NULL) {
        ggml_free(ctx);
    }
}

static struct ggml_tensor * evm_f32(struct ggml_context * ctx, struct ggml_tensor * t) {
    return ((const struct evm_graph_head *) t)->type == EVM_F32 ? t : ggml_cast(ctx, t, EVM_F32);
}

// evm_graph_merge computes, in one graph on the backend,
//   acc = Σ coef_i·x_i                  (base NULL)
//   acc = base + Σ coef_i·(x_i − base)  (task arithmetic)
// in F32, in the order of the terms, acc ×= scale when scale != 1, and
// copies acc into dst (converted to dst's type). A coefficient of 1 and a
// single term without base skip the multiplication. Every node is checked
// with ggml_backend_supports_op first (an unsupported op would abort the
// process inside ggml). Returns 0, or -1 when the shapes differ, -2 when
// the graph cannot be allocated, -3 when the computation fails, -4 when
// the backend does not support one of the operations.
//
// With consensus (TIES without sparsification; base required, coefs the
// weights w_i) acc is base + lambda·TIES, with Δ_i = w_i·(x_i − base):
//   S = Σ Δ_i in order; σ = +1 where S ≥ 0, −1 where S < 0
//   member_i = Δ_i·σ > 0; M = σ·Σ relu(Δ_i·σ) (= Σ of the members' Δ_i,
//   exactly: negation is exact and rounding symmetric; +0 without any)
//   Q = Σ member_i·w_i, 1 where Q = 0; M /= Q when normalize
// which is kernels.SignConsensus element for element, except where S is
// NaN (it elects −1, this +1) or a non-member Δ_i is infinite.
int evm_graph_merge(struct ggml_backend * be, struct ggml_gallocr * galloc, struct ggml_tensor * dst,
                    struct ggml_tensor * base, struct ggml_tensor ** xs, const float * coefs, int n, float scale,
                    bool consensus, bool normalize, float lambda) {
    if (n < 1) {
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!ggml_are_same_shape(xs[i], dst)) {
            return -1;
        }
    }
    if (base != NULL && !ggml_are_same_shape(base, dst)) {
        return -1;
    }
    struct ggml_init_params p = { ggml_tensor_overhead() * (size_t) (8 * n + 16) + ggml_graph_overhead(), NULL, true };
    struct ggml_context * ctx = ggml_init(p);
    if (ctx == NULL) {
        return -2;
    }
    struct ggml_tensor * acc;
    if (consensus) {
        if (base == NULL) {
            ggml_free(ctx);
            return -1;
        }
        struct ggml_tensor * b = evm_f32(ctx, base);
        struct ggml_tensor * d[64];
        if (n > 64) {
            ggml_free(ctx);
            return -4;
        }
        struct ggml_tensor * s = NULL;
        for (int i = 0; i < n; i++) {
            d[i] = ggml_scale(ctx, ggml_sub(ctx, evm_f32(ctx, xs[i]), b), coefs[i]);
            s = s == NULL ? d[i] : ggml_add(ctx, s, d[i]);
        }
        struct ggml_tensor * sigma = ggml_scale_bias(ctx, ggml_step(ctx, ggml_neg(ctx, s)), -2.0f, 1.0f);
        struct ggml_tensor * m = NULL, * q = NULL;
        for (int i = 0; i < n; i++) {
            struct ggml_tensor * agree = ggml_mul(ctx, d[i], sigma);
            struct ggml_tensor * r = ggml_relu(ctx, agree);
            m = m == NULL ? r : ggml_add(ctx, m, r);
            if (normalize) {
                struct ggml_tensor * wq = ggml_scale(ctx, ggml_step(ctx, agree), coefs[i]);
                q = q == NULL ? wq : ggml_add(ctx, q, wq);
            }
        }
        m = ggml_mul(ctx, m, sigma);
        if (normalize) {
            struct ggml_tensor * zero = ggml_scale_bias(ctx, ggml_step(ctx, ggml_abs(ctx, q)), -1.0f, 1.0f);
            m = ggml_div(ctx, m, ggml_add(ctx, q, zero));
        }
        acc = ggml_add(ctx, b, ggml_scale(ctx, m, lambda));
    } else if (base == NULL && n == 1 && coefs[0] == 1.0f && scale == 1.0f) {
        // A copy: bytes when the types agree, else through F32 (ggml
        // converts quantized types to F32 only).
        acc = ((const struct evm_graph_head *) xs[0])->type == ((const struct evm_graph_head *) dst)->type ? xs[0] : evm_f32(ctx, xs[0]);
    } else if (base == NULL) {
        acc = NULL;
        for (int i = 0; i < n; i++) {
            struct ggml_tensor * x = evm_f32(ctx, xs[i]);
            struct ggml_tensor * term = coefs[i] == 1.0f && acc != NULL ? x : ggml_scale(ctx, x, coefs[i]);
            acc = acc == NULL ? term : ggml_add(ctx, acc, term);
        }
    } else {
        struct ggml_tensor * b = evm_f32(ctx, base);
        acc = b;
        for (int i = 0; i < n; i++) {
            struct ggml_tensor * d = ggml_sub(ctx, evm_f32(ctx, xs[i]), b);
            acc = ggml_add(ctx, acc, coefs[i] == 1.0f ? d : ggml_scale(ctx, d, coefs[i]));
        }
    }
    if (scale != 1.0f) {
        acc = ggml_scale(ctx, evm_f32(ctx, acc), scale);
    }
    struct ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, ggml_cpy(ctx, acc, dst));
    for (int i = 0; i < ggml_graph_n_nodes(gf); i++) {
        if (!ggml_backend_supports_op(be, ggml_graph_node(gf, i))) {
            ggml_free(ctx);
            return -4;
        }
    }
    if (!ggml_gallocr_alloc_graph(galloc, gf)) {
        ggml_free(ctx);
        return -2;
    }
    int status = ggml_backend_graph_compute(be, gf);
    ggml_backend_synchronize(be);
    ggml_free(ctx);
    return status == 0 ? 0 : -3;
}
