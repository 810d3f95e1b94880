// Package kernels is the arithmetic of merging: tensor codecs (F16, BF16,
// Q8_0 and the Codec interface), interpolation and weighted sums,
// sparsification of task vectors, TIES sign consensus, spherical means and
// model stock, all on flat float32 slices — and the one hot loop of
// scoring, log-softmax over a row of logits (softmax.go). Package merge
// decides what to compute; this package computes it, and nothing here does
// IO.
//
// # float32 math, reproducible everywhere
//
// Merging works in float32 on decoded values, whatever the storage type.
// Every element-wise product is rounded to float32 before
// it is added (an explicit float32(...) conversion, which the Go spec says
// prevents fusing into an FMA), so results are bit-identical on every GOARCH
// and GOAMD64 level. Reductions (dot products, norms, L1 sums) accumulate
// in float64 in a fixed order: deterministic, and accurate over tensors of
// 10^8 elements. Multi-input loops work in blocks of blockLen elements so a
// block of every input stays in L1 while it is used and each input is read
// from memory once. interpolate.go states these conventions in full.
//
// # Bit-exact codecs
//
// Native decodes and encodes F32, F16, BF16 and Q8_0 exactly as ggml does:
// f16 rounds to nearest even (F16C's conversion), bf16 rounds to nearest
// even and quiets NaNs, Q8_0 follows quantize_row_q8_0_ref (what
// llama-quantize writes). In these types a merged tensor is therefore the
// bytes llama.cpp would write for the same float32 values; the tests
// compare against ggml's reference formulas and, in engine/llm,
// against ggml's own encoder. These loops are owned here rather than taken
// from a library because they are the merge's hot path and their exact
// rounding is the point. engine/llm supplies a Codec for every other ggml
// type through llama.cpp.
//
// # Determinism of selection and randomness
//
// Magnitude sparsification ranks entries by |δ| with ties broken by
// position, a total order, so "the top k" is always exactly k entries.
// DARE and DELLA draw one uniform number per entry from math/rand/v2's PCG
// seeded with the caller's seed, so a mask depends only on the data and the
// seed (sparsify.go).
//
// # Tests
//
// The merge kernels are tested against float64 references written plainly
// from the formulas in their doc comments (ref_test.go), never by calling
// the code under test; benchmarks measure the hot loops.
package kernels
