// ggml declarations shared by the package's C files (graphmerge.c,
// gradient.c). ggml's headers are not on this package's include path, so
// what the files use is declared with the prototypes of the pinned ggml
// (ml/backend/ggml/ggml/include in the ollama module); enums are passed
// as int, which is their C ABI. Each file declares the rest of what it
// uses itself.
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ggml_context;
struct ggml_tensor;
struct ggml_cgraph;

struct ggml_init_params {
    size_t mem_size;
    void * mem_buffer;
    bool   no_alloc;
};

struct ggml_context * ggml_init(struct ggml_init_params params);
void                  ggml_free(struct ggml_context * ctx);
struct ggml_tensor *  ggml_add(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor *  ggml_mul(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
void                  ggml_build_forward_expand(struct ggml_cgraph * cgraph, struct ggml_tensor * tensor);
