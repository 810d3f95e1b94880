package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/google/renameio/v2"
)

// Writer streams a GGUF file: the header is written by NewWriter, then each
// tensor's data is supplied in header order with WriteTensor. The layout is
// the one llama.cpp and gguf-py produce: tensors packed in order, each
// padded with zeros to the alignment, so a file read with Open and written
// back through a Writer is byte-identical to the original.
type Writer struct {
	w       *bufio.Writer
	tensors []TensorInfo
	align   uint64
	next    int
	err     error
}

// Layout fills in each tensor's Offset as the Writer will place it and
// returns the data section's total size. The tensors slice is modified.
func Layout(h *Header) (uint64, error) {
	align := h.Alignment()
	off := uint64(0)
	for i := range h.Tensors {
		t := &h.Tensors[i]
		if err := validTensor(*t); err != nil {
			return 0, err
		}
		t.Offset = off
		off = pad(off+t.Bytes(), align)
	}
	return off, nil
}

func validTensor(t TensorInfo) error {
	if !t.Type.Valid() {
		return fmt.Errorf("tensor %q: invalid type %d", t.Name, uint32(t.Type))
	}
	if len(t.Shape) == 0 || len(t.Shape) > MaxDims {
		return fmt.Errorf("tensor %q: %d dimensions (must be 1..%d)", t.Name, len(t.Shape), MaxDims)
	}
	if t.Shape[0]%t.Type.BlockSize() != 0 {
		return fmt.Errorf("tensor %q: row length %d is not a multiple of %s's block size %d", t.Name, t.Shape[0], t.Type, t.Type.BlockSize())
	}
	return nil
}

func pad(n, align uint64) uint64 { return (n + align - 1) / align * align }

// NewWriter writes h's header to w. Tensor offsets in h are recomputed
// (see Layout). The caller then writes every tensor's data, in order.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if v, ok := h.Metadata.Get("general.alignment"); ok {
		if a, isU32 := v.(uint32); !isU32 || a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("general.alignment must be a non-zero power of two stored as u32, got %v (%T)", v, v)
		}
	}
	h.Tensors = append([]TensorInfo(nil), h.Tensors...)
	if _, err := Layout(&h); err != nil {
		return nil, err
	}
	version := h.Version
	if version == 0 {
		version = 3
	}
	if version != 2 && version != 3 {
		return nil, fmt.Errorf("cannot write GGUF version %d", version)
	}

	gw := &Writer{w: bufio.NewWriterSize(w, 1<<20), tensors: h.Tensors, align: h.Alignment()}
	e := encoder{w: gw.w}
	e.raw(magic[:])
	e.u32(version)
	e.u64(uint64(len(h.Tensors)))
	e.u64(uint64(len(h.Metadata)))
	seen := make(map[string]bool, len(h.Metadata))
	for _, kv := range h.Metadata {
		if seen[kv.Key] {
			return nil, fmt.Errorf("metadata key %q appears twice", kv.Key)
		}
		seen[kv.Key] = true
		t, err := kv.Type()
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", kv.Key, err)
		}
		e.str(kv.Key)
		e.u32(uint32(t))
		if err := e.value(kv.Value, 0); err != nil {
			return nil, fmt.Errorf("metadata %q: %w", kv.Key, err)
		}
	}
	names := make(map[string]bool, len(h.Tensors))
	for _, t := range h.Tensors {
		if names[t.Name] {
			return nil, fmt.Errorf("tensor %q appears twice", t.Name)
		}
		names[t.Name] = true
		e.str(t.Name)
		e.u32(uint32(len(t.Shape)))
		for _, d := range t.Shape {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(t.Offset)
	}
	if e.err != nil {
		return nil, e.err
	}
	// Pad the header so the data section starts aligned.
	if err := gw.zeros(pad(e.n, gw.align) - e.n); err != nil {
		return nil, err
	}
	return gw, nil
}

func (w *Writer) zeros(n uint64) error {
	var z [64]byte
	for n > 0 {
		k := min(n, uint64(len(z)))
		if _, err := w.w.Write(z[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// Next returns the tensor whose data is expected next, or false when all
// tensors have been written.
func (w *Writer) Next() (TensorInfo, bool) {
	if w.next >= len(w.tensors) {
		return TensorInfo{}, false
	}
	return w.tensors[w.next], true
}

// WriteTensor writes the next tensor's data; name guards against writing
// tensors out of order, and data must be exactly the tensor's size.
func (w *Writer) WriteTensor(name string, data []byte) error {
	if w.err != nil {
		return w.err
	}
	t, ok := w.Next()
	if !ok {
		return fmt.Errorf("gguf writer: tensor %q written after the last tensor", name)
	}
	if t.Name != name {
		return fmt.Errorf("gguf writer: got tensor %q, want %q next", name, t.Name)
	}
	if uint64(len(data)) != t.Bytes() {
		return fmt.Errorf("gguf writer: tensor %q: got %d bytes, want %d (%s %v)", name, len(data), t.Bytes(), t.Type, t.Shape)
	}
	if _, err := w.w.Write(data); err != nil {
		w.err = err
		return err
	}
	end := t.Offset + t.Bytes()
	if err := w.zeros(pad(end, w.align) - end); err != nil {
		w.err = err
		return err
	}
	w.next++
	return nil
}

// Close checks that every tensor was written and flushes buffered data. It
// does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if t, ok := w.Next(); ok {
		return fmt.Errorf("gguf writer: closed before tensor %q (%d of %d written)", t.Name, w.next, len(w.tensors))
	}
	return w.w.Flush()
}

// FileWriter writes a GGUF file atomically: data goes to a temporary file in
// the destination directory, which replaces the destination only on Commit.
// Abort (or a crash) leaves the destination untouched.
type FileWriter struct {
	*Writer
	pending *renameio.PendingFile
	done    bool
}

// Create starts writing a GGUF file at path.
func Create(path string, h Header) (*FileWriter, error) {
	pf, err := renameio.NewPendingFile(path, renameio.WithPermissions(0o644))
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	w, err := NewWriter(pf, h)
	if err != nil {
		pf.Cleanup()
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &FileWriter{Writer: w, pending: pf}, nil
}

// Commit finishes the file and moves it into place.
func (f *FileWriter) Commit() error {
	if f.done {
		return errors.New("gguf: file already committed or aborted")
	}
	f.done = true
	if err := f.Writer.Close(); err != nil {
		f.pending.Cleanup()
		return err
	}
	if err := f.pending.CloseAtomicallyReplace(); err != nil {
		f.pending.Cleanup()
		return err
	}
	return nil
}

// Abort discards the partial file. It is safe to call after Commit (it then
// does nothing), so `defer fw.Abort()` is the idiom.
func (f *FileWriter) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.pending.Cleanup()
}

// encoder writes little-endian values, counting bytes and keeping the first error.
type encoder struct {
	w   io.Writer
	n   uint64
	err error
	buf [8]byte
}

func (e *encoder) raw(b []byte) {
	if e.err != nil {
		return
	}
	k, err := e.w.Write(b)
	e.n += uint64(k)
	e.err = err
}

func (e *encoder) u8(v uint8) { e.buf[0] = v; e.raw(e.buf[:1]) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.raw(e.buf[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.raw(e.buf[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.raw(e.buf[:8])
}
func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		k, err := io.WriteString(e.w, s)
		e.n += uint64(k)
		e.err = err
	}
}

func (e *encoder) value(v any, depth int) error {
	switch v := v.(type) {
	case uint8:
		e.u8(v)
	case int8:
		e.u8(uint8(v))
	case uint16:
		e.u16(v)
	case int16:
		e.u16(uint16(v))
	case uint32:
		e.u32(v)
	case int32:
		e.u32(uint32(v))
	case float32:
		e.u32(math.Float32bits(v))
	case bool:
		if v {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case string:
		e.str(v)
	case uint64:
		e.u64(v)
	case int64:
		e.u64(uint64(v))
	case float64:
		e.u64(math.Float64bits(v))
	case Array:
		if depth >= maxArrayDepth {
			return fmt.Errorf("arrays nested deeper than %d levels", maxArrayDepth)
		}
		if err := v.check(); err != nil {
			return err
		}
		e.u32(uint32(v.Elem))
		e.u64(uint64(v.Len()))
		return writeElems(e, v.Values, depth)
	default:
		return fmt.Errorf("cannot encode Go type %T", v)
	}
	return e.err
}

func writeElems(e *encoder, values any, depth int) error {
	each := func(n int, at func(int) any) error {
		for i := range n {
			if err := e.value(at(i), depth+1); err != nil {
				return err
			}
		}
		return e.err
	}
	switch s := values.(type) {
	case []uint8:
		e.raw(s)
		return e.err
	case []int8:
		return each(len(s), func(i int) any { return s[i] })
	case []uint16:
		return each(len(s), func(i int) any { return s[i] })
	case []int16:
		return each(len(s), func(i int) any { return s[i] })
	case []uint32:
		return each(len(s), func(i int) any { return s[i] })
	case []int32:
		return each(len(s), func(i int) any { return s[i] })
	case []float32:
		return each(len(s), func(i int) any { return s[i] })
	case []bool:
		return each(len(s), func(i int) any { return s[i] })
	case []string:
		for _, x := range s {
			e.str(x)
		}
		return e.err
	case []Array:
		return each(len(s), func(i int) any { return s[i] })
	case []uint64:
		return each(len(s), func(i int) any { return s[i] })
	case []int64:
		return each(len(s), func(i int) any { return s[i] })
	case []float64:
		return each(len(s), func(i int) any { return s[i] })
	}
	return fmt.Errorf("cannot encode array of Go type %T", values)
}
