package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// raw builds GGUF bytes by hand, independently of Writer, so malformed
// files can be expressed field by field.
type raw struct{ b []byte }

func (r *raw) u8(v uint8) *raw   { r.b = append(r.b, v); return r }
func (r *raw) u32(v uint32) *raw { r.b = binary.LittleEndian.AppendUint32(r.b, v); return r }
func (r *raw) u64(v uint64) *raw { r.b = binary.LittleEndian.AppendUint64(r.b, v); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.b = append(r.b, s...); return r }
func (r *raw) head(version uint32, tensors, kvs uint64) *raw {
	r.b = append(r.b, "GGUF"...)
	return r.u32(version).u64(tensors).u64(kvs)
}
func (r *raw) tensor(name string, typ Type, off uint64, shape ...uint64) *raw {
	r.str(name).u32(uint32(len(shape)))
	for _, d := range shape {
		r.u64(d)
	}
	return r.u32(uint32(typ)).u64(off)
}
func (r *raw) padTo(align int) *raw {
	for len(r.b)%align != 0 {
		r.b = append(r.b, 0)
	}
	return r
}
func (r *raw) zeros(n int) *raw { r.b = append(r.b, make([]byte, n)...); return r }

func nested(depth int) *raw {
	r := &raw{}
	for range depth {
		r.u32(uint32(ValueArray)).u64(1)
	}
	return r.u32(uint32(ValueUint8)).u64(0)
}

func TestCorruptFiles(t *testing.T) {
	valid := func() *raw { return (&raw{}).head(3, 1, 0).tensor("a", TypeF32, 0, 4).padTo(32).zeros(16) }
	if _, err := Read(bytes.NewReader(valid().b), int64(len(valid().b))); err != nil {
		t.Fatalf("baseline file rejected: %v", err)
	}

	tests := []struct {
		name  string
		data  []byte
		cause error  // sentinel, or nil
		want  string // substring of the message
	}{
		{"empty file", nil, ErrNotGGUF, "too short"},
		{"wrong magic", []byte("GGML\x03\x00\x00\x00"), ErrNotGGUF, `magic is "GGML"`},
		{"version 1", (&raw{}).head(1, 0, 0).b, ErrUnsupported, "version 1 is obsolete"},
		{"big endian", append([]byte("GGUF"), 0, 0, 0, 3), ErrUnsupported, "big-endian"},
		{"future version", (&raw{}).head(9, 0, 0).b, ErrUnsupported, "unknown GGUF version 9"},
		{"truncated header", []byte("GGUF\x03\x00\x00\x00\x01\x00"), ErrTruncated, "tensor count"},
		{"huge tensor count", (&raw{}).head(3, 1<<40, 0).b, nil, "tensor count 1099511627776 is impossible"},
		{"huge kv count", (&raw{}).head(3, 0, 1<<62).b, nil, "metadata count"},
		{"key longer than limit", (&raw{}).head(3, 0, 1).u64(1 << 20).zeros(16).b, nil, "exceeds the limit"},
		{"key past end", (&raw{}).head(3, 0, 1).u64(100).zeros(16).b, ErrTruncated, "exceeds the 16 bytes left"},
		{"key not utf-8", (&raw{}).head(3, 0, 1).str("a\xffb").u32(uint32(ValueUint8)).u8(0).b, nil, "not valid UTF-8"},
		{"empty key", (&raw{}).head(3, 0, 1).str("").u32(uint32(ValueUint8)).u8(0).b, nil, "empty key"},
		{"unknown value type", (&raw{}).head(3, 0, 1).str("k").u32(13).b, nil, "unknown value type 13"},
		{"bool not 0/1", (&raw{}).head(3, 0, 1).str("k").u32(uint32(ValueBool)).u8(2).b, nil, "bool byte is 2"},
		{"string value past end", (&raw{}).head(3, 0, 1).str("k").u32(uint32(ValueString)).u64(50).str("x").b, ErrTruncated, "string length 50"},
		{"array larger than file", (&raw{}).head(3, 0, 1).str("k").u32(uint32(ValueArray)).u32(uint32(ValueUint32)).u64(1 << 50).b, ErrTruncated, "cannot fit"},
		{"array element type", (&raw{}).head(3, 0, 1).str("k").u32(uint32(ValueArray)).u32(77).u64(0).b, nil, "unknown array element type 77"},
		{"arrays nested too deep", append((&raw{}).head(3, 0, 1).str("k").u32(uint32(ValueArray)).b, nested(9).b...), nil, "nested deeper than 8"},
		{"duplicate key", (&raw{}).head(3, 0, 2).str("k").u32(uint32(ValueUint8)).u8(1).str("k").u32(uint32(ValueUint8)).u8(2).b, nil, "duplicate key"},
		{"alignment not power of two", (&raw{}).head(3, 0, 1).str("general.alignment").u32(uint32(ValueUint32)).u32(48).b, nil, "power of two"},
		{"alignment wrong type", (&raw{}).head(3, 0, 1).str("general.alignment").u32(uint32(ValueUint64)).u64(32).b, nil, "power of two"},
		{"too many dims", (&raw{}).head(3, 1, 0).tensor("a", TypeF32, 0, 1, 1, 1, 1, 1).b, nil, "5 dimensions"},
		{"zero dims", (&raw{}).head(3, 1, 0).tensor("a", TypeF32, 0).b, nil, "0 dimensions"},
		{"removed tensor type", (&raw{}).head(3, 1, 0).tensor("a", Type(4), 0, 32).b, ErrUnsupported, "unknown or removed tensor type 4"},
		{"shape overflow", (&raw{}).head(3, 1, 0).tensor("a", TypeF32, 0, 1<<40, 1<<40).b, nil, "overflows"},
		{"row not multiple of block", (&raw{}).head(3, 1, 0).tensor("a", TypeQ8_0, 0, 33).b, nil, "not a multiple of Q8_0's block size 32"},
		{"tensor name not utf-8", (&raw{}).head(3, 1, 0).tensor("\xc3", TypeF32, 0, 1).b, nil, "not valid UTF-8"},
		{"duplicate tensor", (&raw{}).head(3, 2, 0).tensor("a", TypeF32, 0, 4).tensor("a", TypeF32, 32, 4).padTo(32).zeros(64).b, nil, "duplicate tensor name"},
		{"misaligned tensor", (&raw{}).head(3, 1, 0).tensor("a", TypeF32, 4, 4).padTo(32).zeros(64).b, nil, "not a multiple of the alignment 32"},
		{"tensor data truncated", (&raw{}).head(3, 1, 0).tensor("a", TypeF32, 0, 64).padTo(32).zeros(100).b, ErrTruncated, "beyond its end"},
		{"tensor offset past end", (&raw{}).head(3, 1, 0).tensor("a", TypeF32, 1<<20, 4).padTo(32).zeros(16).b, ErrTruncated, "beyond its end"},
		{"overlapping tensors", (&raw{}).head(3, 2, 0).tensor("a", TypeF32, 0, 16).tensor("b", TypeF32, 32, 16).padTo(32).zeros(128).b, nil, `overlaps tensor "a"`},
	}
	if len(tests) < 15 {
		t.Fatalf("only %d malformed files", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tt.data), int64(len(tt.data)))
			if err == nil {
				t.Fatal("malformed file accepted")
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("error %q does not wrap %v", err, tt.cause)
			}
			if fe.Offset < 0 || fe.Offset > int64(len(tt.data)) {
				t.Errorf("offset %d outside the file", fe.Offset)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	sample, _ := writeSample(f, sampleHeader())
	f.Add(sample)
	f.Add((&raw{}).head(3, 1, 0).tensor("a", TypeF32, 0, 4).padTo(32).zeros(16).b)
	f.Add(append((&raw{}).head(3, 0, 1).str("k").u32(uint32(ValueArray)).b, nested(3).b...))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("non-format error: %v", err)
			}
			return
		}
		// Whatever parses must survive a write and re-read unchanged.
		var out bytes.Buffer
		w, err := NewWriter(&out, file.Header)
		if err != nil {
			t.Fatalf("parsed header cannot be written: %v", err)
		}
		for _, ti := range file.Tensors {
			b, err := file.ReadTensor(ti, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteTensor(ti.Name, b); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		again, err := Read(bytes.NewReader(out.Bytes()), int64(out.Len()))
		if err != nil {
			t.Fatalf("rewritten file rejected: %v", err)
		}
		if len(again.Metadata) != len(file.Metadata) || len(again.Tensors) != len(file.Tensors) {
			t.Fatal("rewrite changed the header")
		}
	})
}
