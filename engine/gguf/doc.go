// Package gguf reads and writes GGUF, the model file format of llama.cpp
// and ggml: a header (magic, version, metadata key/values, tensor infos)
// followed by the tensors' data, each tensor aligned.
//
// # Why our own reader and writer
//
// Merging rewrites models, and a merged model must differ from its sources
// only where the recipe says. The writer therefore reproduces a header
// exactly: metadata keys in their original order with their original value
// types (a u8 array stays a u8 array, a string value keeps bytes that are
// not UTF-8), tensors in their original order, padded the way llama.cpp
// and gguf-py pad them. A file read with Open and written back through a
// Writer is byte-identical to the original; the tests check this on a
// generated header holding every value type and a range of tensor types,
// and on the zoo's real models. ollama's writer (fs/ggml.WriteGGUF) does
// not round-trip: it sorts keys and tensors, prefixes keys with the
// architecture and rejects value types it does not list (8- and 16-bit
// integers, f64, nested arrays).
//
// # Lazy reading
//
// Open reads and validates the header only; tensor data stays on disk and
// is read on demand (File.ReadTensor into a caller's reusable buffer, or
// File.TensorReader), so opening a model of any size costs its header and
// a merge streams tensor by tensor. Writers stream the same way: NewWriter
// writes the header, WriteTensor each tensor's data in header order, and
// Create writes to a temporary file that Commit renames into place, so
// nothing half-written appears at the destination.
//
// # Hostile input
//
// Files come from anywhere (downloads, user paths), so the reader bounds
// everything a header could make it allocate or do: counts and lengths
// must fit in the bytes that remain, arrays nest at most 8 deep, the header
// is at most 512 MiB, every tensor must lie inside the file, aligned and
// disjoint from the others. Malformed input yields a *FormatError naming
// the path, byte offset and field, wrapping ErrNotGGUF, ErrTruncated or
// ErrUnsupported where one applies; the reader never panics on any input
// (FuzzRead, `make fuzz`).
//
// # Files
//
//	header.go      Header, the preamble (magic, version, counts), read
//	keyvalue.go    the metadata section: keys, values, arrays, alignment
//	tensorinfo.go  TensorInfo, the tensor info section, layout checks
//	decoder.go     little-endian primitives with offsets and limits
//	file.go        File: an open file, tensor data read on demand
//	metadata.go    Metadata and its typed accessors
//	types.go       ggml tensor types and their storage sizes
//	writer.go      Writer, Layout, Create (atomic files)
//	errors.go      FormatError and its sentinel causes
package gguf
