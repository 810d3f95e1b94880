package gguf

import (
	"errors"
	"fmt"
)

// Sentinel causes carried by FormatError; test with errors.Is.
var (
	ErrNotGGUF     = errors.New("not a GGUF file")
	ErrTruncated   = errors.New("file is truncated")
	ErrUnsupported = errors.New("unsupported GGUF feature")
)

// FormatError reports malformed input: where in the file, which field, why.
type FormatError struct {
	Path   string // file path, if known
	Offset int64  // byte offset of the offending field
	Field  string // e.g. "metadata[3] \"general.name\": value" or "tensor \"blk.0.attn_q.weight\": offset"
	Reason string
	Err    error // ErrNotGGUF, ErrTruncated, ErrUnsupported or nil
}

func (e *FormatError) Error() string {
	p := e.Path
	if p == "" {
		p = "gguf"
	}
	return fmt.Sprintf("%s: offset %d: %s: %s", p, e.Offset, e.Field, e.Reason)
}

func (e *FormatError) Unwrap() error { return e.Err }
