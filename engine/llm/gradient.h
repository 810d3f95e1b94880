// Coefficient gradients: the C side (gradient.c), shared with cgo.
#include <stddef.h>
#include <stdint.h>

// One weight: its base and the sources' deltas (F32, ne0 × ne1), and the
// coefficient of each source. ne0 = 0: the model has no such tensor.
struct evm_grad_tensor {
    const float * base;
    const float * delta[8];
    int           idx[8];
    int           nsrc;
    int64_t       ne0, ne1;
};

// The order of tensors: embeddings, output norm, output (ne0 = 0 when
// tied to the embeddings), rope frequency factors (ne0 = 0 when absent;
// the merge copies the base's, so their deltas are ignored), then per
// layer attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
// ffn_gate, ffn_up, ffn_down.
enum { EVM_GRAD_EMBD = 0, EVM_GRAD_OUTPUT_NORM = 1, EVM_GRAD_OUTPUT = 2, EVM_GRAD_ROPE_FREQS = 3, EVM_GRAD_FIRST = 4, EVM_GRAD_PER_LAYER = 9 };

struct evm_grad_model {
    const struct evm_grad_tensor * tensors;
    int   layers, embd, heads, kv_heads, vocab, ncoef, ctx_train;
    float eps, rope_base;
};

struct evm_grad;
struct evm_grad * evm_grad_new(const struct evm_grad_model * m, int n, int from, int threads, size_t mem);
size_t            evm_grad_used(const struct evm_grad * g);
int               evm_grad_window(struct evm_grad * g, const float * coef, const int32_t * tokens, double * loss, float * grad);
void              evm_grad_free(struct evm_grad * g);
