// Package merge merges GGUF models by recipe: a Recipe (TOML with
// mergekit's key names, or a mergekit YAML config) is planned against the
// input files' headers, then executed tensor by tensor into a new GGUF
// file.
//
// # Semantics: mergekit's implemented behaviour
//
// Users arrive with mergekit configs and intuitions, so a recipe means here
// what it means there, following what mergekit's code does rather than
// what the papers describe: per-model weights are applied before TIES sign
// election; DARE and DELLA rescale the kept entries to the task vector's
// L1 norm (not by 1/density); a zero sign sum elects +; parameters resolve
// per-model, then slice, then top level, and a list of anchors is
// interpolated across a slice's layers (embedding, output and final norm
// use the first anchor); filters accept mergekit's Hugging Face names
// (self_attn, mlp, q_proj, …) as well as GGUF's (attn_*, ffn_*). Where
// evomerge deliberately differs, the function's comment says so: linear
// refuses weights that sum to zero (mergekit divides by it), breadcrumbs
// with no outliers to drop keeps them (mergekit zeroes the tensor), DELLA
// clamps keep probabilities outside [0, 1] (mergekit rejects them). The
// arithmetic is float32 on decoded values, in package kernels.
// Random sparsification is seeded per tensor from the recipe's seed and the
// tensor's name, so a recipe always produces the same file.
//
// # Planning
//
// NewPlan reads headers only and reports every problem of a recipe at once
// (unknown methods and parameters, out-of-range values, missing tensors,
// shape, architecture and tokenizer mismatches), before any tensor data is
// read. A Plan lists every output tensor with its operands, method and
// resolved parameters, and the output header, whose metadata comes from
// the reference model (the base, else the first model). A parameter-space
// recipe merges every tensor. A slices recipe stacks renumbered blocks and,
// as mergekit's planner does, merges the tensors outside the blocks with
// the recipe's method: the embedding side over the first slice's sources,
// the output side (final norm, output head) over the last slice's, with
// parameters read at gradient position 0 (a one-source slice copies them).
// A dfs layer path takes them from the reference. Tensors that are no
// trained weight (rope frequency factors) are always copied from the
// reference, and Gemma's norms, stored by the converter as weight + 1, are
// merged without that offset (arch.go). Models whose vocabularies differ
// are aligned by token text as the recipe's tokenizer_source says
// (vocab.go).
//
// # Streaming execution
//
// Execute never holds whole models: up to ExecOptions.Workers output
// tensors are computed at once and written in order, so peak memory is
// about Workers × (inputs + 1) × the largest tensor. Large tensors are
// decoded and encoded in row-aligned chunks on all cores (parallel.go).
// The output is written to a temporary file and renamed into place, so
// nothing appears at the destination unless the whole merge succeeds.
// ExecOptions.Cache lets the evolution's candidates share encoded output
// tensors whose inputs, method, parameters and type are identical.
//
// # Buffer recycling
//
// The float32 buffers of every input and of the result, and the raw bytes
// read and written, are recycled per Plan in pools keyed by exact length
// (scratch.go): allocating them per tensor costs page faults and zeroing,
// and a pool that reused any large-enough buffer kept embedding-sized ones
// alive. Methods must therefore overwrite every element of their output.
// Because little else is allocated during a merge, per-tensor garbage
// anywhere on the merge path piles up until the next collection; keep the
// path free of it.
//
// # Techniques
//
// registry.go is the one list of techniques; configuration validation, the
// evolution's genome, the forms, --help and docs/methods.md derive from
// it, so adding a technique is adding one file that registers it. A
// Method merges one tensor; the task-arithmetic family (task_arithmetic,
// ties, dare_*, breadcrumbs*, della*) shares one implementation configured
// per method (taskarith.go).
package merge
