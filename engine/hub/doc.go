// Package hub resolves model references to local GGUF files, downloading
// from the Hugging Face hub when needed.
//
// Everywhere evomerge accepts a model it accepts either a local path or a
// hub reference; [Resolver.Resolve] turns both into a path that
// gguf.Open can read. The package is pure Go (no cgo), so it links into
// every binary and runs in tests without llama.cpp.
//
// # References
//
// A hub reference names a repository and optionally a revision and a file:
//
//	org/name                     default file choice (see below)
//	org/name:Q4_K_M              quantization tag, matched case-insensitively
//	org/name:sub/file.gguf       explicit file (':' form)
//	org/name/sub/file.gguf       explicit file ('/' form)
//	org/name@rev[:selector]      a branch, tag or commit instead of "main"
//	gpt2, gpt2:Q8_0              a legacy id without an organisation; the hub
//	                             redirects it to its current org/name
//	hf://…, hf:…                 force the hub reading of an ambiguous string
//	hf.co/…, huggingface.co/…    the same, as Ollama and the web pages write it
//	https://huggingface.co/org/name[/tree/REV | /blob/REV/FILE | /resolve/REV/FILE]
//
// Links are read for their repository, revision and file only; the files
// come from the resolver's endpoint (HF_ENDPOINT) like every other form,
// and a link to that endpoint itself is read like a huggingface.co link.
//
// [IsLocalPath] decides which strings are local: anything starting with
// "./", "../", "/" or "~", an absolute path, any path that exists, a name
// ending in ".gguf" with at most one '/' (no hub form has that shape), and
// a longer ".gguf" path whose first directory exists. Everything else that
// parses is a hub reference ([IsHubRef]), so "gpt2" is looked up on the
// hub and "gpt2.gguf" is a missing file ([ErrNoSuchFile]). When a string
// that does not mark itself as a reference ([IsExplicit]) is neither a
// local file nor found on the hub, the error says both.
//
// # Which file
//
// A quantization tag matches a file when it occurs in the file's path
// delimited by non-alphanumeric characters and not followed by '_' ("Q4_K"
// does not match "Q4_K_M", "F16" does not match "BF16"). Without a selector
// the resolver prefers Q8_0, then Q4_K_M, then F16, then the smallest
// single-file GGUF. Vision projectors (mmproj*) and importance matrices
// (*imatrix*) are never chosen implicitly. Split GGUFs
// (name-00001-of-00003.gguf) are reported as unsupported ([ErrSplitGGUF]):
// the GGUF reader and merger work on single files.
//
// A repository without GGUF files but with safetensors, config.json and a
// tokenizer is converted with ollama's pure-Go convert package (F16, or BF16
// for BF16 sources). The small JSON and tokenizer files are fetched first so
// an unsupported architecture fails before any weights are downloaded. The
// converted GGUF is cached under ConvertDir by repository and commit and
// reused from then on, online or offline.
//
// # Cache
//
// Downloads go into the huggingface_hub cache, in its layout, so files
// fetched by Python tools are reused and ours are reusable by them:
//
//	<cache>/models--org--name/blobs/<etag>          file contents
//	<cache>/models--org--name/snapshots/<commit>/<file> -> ../../blobs/<etag>
//	<cache>/models--org--name/refs/<revision>       commit hash, no newline
//	<cache>/.locks/models--org--name/<etag>.lock    per-blob download lock
//
// The etag is the SHA-256 of the content for LFS files and the git blob id
// otherwise, as the hub reports it (X-Linked-Etag, else ETag). Blob files
// appear only complete and verified: a download writes blobs/<etag>.incomplete
// and renames it into place.
//
// Online, a resolve costs one metadata request (GET /api/models/{repo}/
// revision/{rev}?blobs=true: the commit and the file list with sizes and LFS
// hashes) and, for a file not yet in the snapshot, one HEAD of
// /{repo}/resolve/{commit}/{file} for its etag. When the hub cannot be
// reached (connection refused, DNS failure, timeout) the resolver falls back
// to the cache, as huggingface_hub does; with Offline set (HF_HUB_OFFLINE=1)
// it never touches the network.
//
// # Downloads
//
// An interrupted download keeps its .incomplete file. The next attempt, in
// the same call (up to four attempts while the transfer makes progress) or in
// a later process, sends "Range: bytes=<size>-" and appends; a server that
// answers 200 instead of 206 restarts the file from zero. A transfer that
// receives nothing for two minutes counts as interrupted. LFS content is
// verified against its SHA-256 before the rename; on mismatch the partial file
// is deleted and a [*ChecksumError] is returned. Remote file names, etags
// and commit hashes become local paths only after checks that refuse "..",
// absolute paths, backslashes and other escapes ([ErrUnsafePath]).
//
// # Errors
//
// Failures carry sentinels for errors.Is: [ErrNotFound], [ErrUnauthorized],
// [ErrNoSuchFile], [ErrNetwork], [ErrChecksum], [ErrNotCached], [ErrUnsafePath],
// [ErrSplitGGUF], [ErrNoMatch], [ErrAmbiguous], [ErrUnsupportedModel],
// [ErrInvalidRef]; [*HTTPError] and [*ChecksumError] give details through
// errors.As.
package hub
