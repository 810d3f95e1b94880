// Package archtest holds evomerge's end-to-end checks on the model shapes
// users bring: generated models of real architectures (engine/gguf/synth)
// in the quantizations people download, merged by every method and
// technique, loaded and evaluated by llama.cpp through the evaluation
// worker pool, and evolved in a short tournament. It has no API; its
// tests are the evidence behind the README's table of supported
// architectures and input types.
package archtest
