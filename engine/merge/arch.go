package merge

import "strings"

// What merging needs to know about architectures beyond tensor names and
// shapes. mergekit describes each architecture by the weights of a
// Hugging Face checkpoint: "pre" weights before the layers (the token
// embedding), the layers' weights, and "post" weights after them (the
// final norm, the output head). GGUF files name the same tensors
// differently and add a few that are not weights at all; this file maps
// one onto the other.

// tensorRole classifies the tensors outside the blocks.
type tensorRole int

const (
	// roleEmbedding: a "pre" weight, merged over the first slice's sources.
	roleEmbedding tensorRole = iota
	// roleOutput: a "post" weight, merged over the last slice's sources.
	roleOutput
	// roleFixed: not a trained weight but a constant derived from the
	// configuration (llama 3's rope_freqs, Phi-3's long/short rope
	// factors); no checkpoint holds it, so mergekit never merges it. It is
	// copied from the reference model.
	roleFixed
)

// nonBlockRole is the role of a tensor outside the blocks.
func nonBlockRole(name string) tensorRole {
	switch {
	case strings.HasPrefix(name, "rope_"):
		return roleFixed
	case strings.HasPrefix(name, "output"), strings.HasPrefix(name, "cls"):
		return roleOutput // output.weight/bias, output_norm.weight/bias, classifier heads
	}
	return roleEmbedding // token_embd, token_embd_norm, position and type embeddings
}

// normOffset is the constant a converter added to a tensor when it wrote
// the GGUF file, which the merge must take away before and add back after
// merging to compute what mergekit computes on the original checkpoint.
// Gemma's RMSNorm multiplies by (1 + w) and stores w; llama.cpp's norm
// multiplies by its weight, so convert_hf_to_gguf.py stores w + 1 for
// every Gemma norm weight (Gemma, Gemma 2, Gemma 3 and its embedding
// variant; Gemma 3n stores w as is). Merges of task vectors and affine
// merges whose weights sum to one are unaffected by the offset; slerp,
// nuslerp, multislerp and karcher without a base, linear with weights that
// do not sum to one, and scaled copies are not.
func normOffset(arch, name string) float32 {
	switch arch {
	case "gemma", "gemma2", "gemma3", "gemma-embedding":
		if strings.HasSuffix(name, "norm.weight") {
			return 1
		}
	}
	return 0
}
