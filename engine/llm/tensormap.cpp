// The weight tensors of a loaded model, reached through llama.cpp's
// internal tensor map. llama_internal_get_tensor_map is a C++ function of
// the pinned llama.cpp (src/llama-model.h), compiled into the ollama llama
// package; it is declared here with the same prototype (the header is not
// on this package's include path) and wrapped in C functions for cgo.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

struct ggml_tensor;
struct llama_model;

const std::vector<std::pair<std::string, ggml_tensor *>> & llama_internal_get_tensor_map(const llama_model * model);

extern "C" {

int64_t evm_tensor_count(const llama_model * model) {
    return (int64_t) llama_internal_get_tensor_map(model).size();
}

// evm_tensor_at returns entry i's tensor and sets *name to its name (valid
// while the model lives).
ggml_tensor * evm_tensor_at(const llama_model * model, int64_t i, const char ** name) {
    const auto & map = llama_internal_get_tensor_map(model);
    if (i < 0 || (size_t) i >= map.size()) {
        *name = nullptr;
        return nullptr;
    }
    *name = map[i].first.c_str();
    return map[i].second;
}

}
