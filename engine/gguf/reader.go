package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"slices"
	"unicode/utf8"
)

// Limits applied while parsing, so that a hostile header can neither make
// the reader allocate more than the file could justify nor recurse deeply.
const (
	// MaxDims is ggml's GGML_MAX_DIMS.
	MaxDims = 4
	// DefaultAlignment applies when general.alignment is absent.
	DefaultAlignment = 32

	maxHeaderBytes = 512 << 20 // metadata + tensor infos
	maxKeyBytes    = 65535     // the GGUF spec's key length limit
	maxStringBytes = 64 << 20
	maxArrayDepth  = 8
	maxTensors     = 1 << 20
	maxKVs         = 1 << 20
)

var magic = [4]byte{'G', 'G', 'U', 'F'}

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

// TensorInfo describes one tensor. Shape is in ggml order: Shape[0] is the
// length of a row (the fastest-varying dimension).
type TensorInfo struct {
	Name   string
	Shape  []uint64
	Type   Type
	Offset uint64 // relative to the start of the data section
}

// Elements is the number of elements in the tensor.
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Rows is the number of rows (Elements / Shape[0]).
func (t TensorInfo) Rows() uint64 {
	if len(t.Shape) == 0 || t.Shape[0] == 0 {
		return 0
	}
	return t.Elements() / t.Shape[0]
}

// Bytes is the tensor's storage size.
func (t TensorInfo) Bytes() uint64 { return t.Type.RowBytes(t.Elements()) }

// Header is everything in a GGUF file but the tensor data.
type Header struct {
	Version  uint32 // 2 or 3; 0 means 3 when writing
	Metadata Metadata
	Tensors  []TensorInfo
}

// Alignment is general.alignment, or DefaultAlignment when absent.
func (h *Header) Alignment() uint64 {
	if v, ok := h.Metadata.Get("general.alignment"); ok {
		if a, ok := v.(uint32); ok && a != 0 {
			return uint64(a)
		}
	}
	return DefaultAlignment
}

// Tensor finds a tensor by name.
func (h *Header) Tensor(name string) (TensorInfo, bool) {
	i := slices.IndexFunc(h.Tensors, func(t TensorInfo) bool { return t.Name == name })
	if i < 0 {
		return TensorInfo{}, false
	}
	return h.Tensors[i], true
}

// File is an open GGUF file: the header is in memory, tensor data is read on
// demand, so opening a file of any size costs only its header.
type File struct {
	Header
	Path       string
	DataOffset int64 // absolute offset of the data section
	Size       int64 // file size in bytes

	r      io.ReaderAt
	closer io.Closer
	index  map[string]int
}

// Open opens and validates the GGUF file at path.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	if st.IsDir() {
		fh.Close()
		return nil, fmt.Errorf("%s: is a directory, not a GGUF file", path)
	}
	f, err := read(fh, st.Size(), path)
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// Read parses a GGUF file from r, which holds size bytes.
func Read(r io.ReaderAt, size int64) (*File, error) { return read(r, size, "") }

// Close releases the underlying file.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}

// Tensor finds a tensor by name in constant time.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// TensorReader returns a reader over the tensor's raw data.
func (f *File) TensorReader(t TensorInfo) *io.SectionReader {
	return io.NewSectionReader(f.r, f.DataOffset+int64(t.Offset), int64(t.Bytes()))
}

// ReadTensor reads the tensor's raw bytes, reusing buf's storage when it is
// large enough.
func (f *File) ReadTensor(t TensorInfo, buf []byte) ([]byte, error) {
	n := int(t.Bytes())
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := f.r.ReadAt(buf, f.DataOffset+int64(t.Offset)); err != nil {
		return nil, fmt.Errorf("%s: reading tensor %q: %w", f.name(), t.Name, err)
	}
	return buf, nil
}

func (f *File) name() string {
	if f.Path == "" {
		return "gguf"
	}
	return f.Path
}

// decoder reads little-endian values and tracks the offset for errors.
type decoder struct {
	r     *bufio.Reader
	off   int64
	size  int64
	path  string
	field string
	depth int

	scratch [8]byte
}

func (d *decoder) fail(cause error, format string, args ...any) error {
	return &FormatError{Path: d.path, Offset: d.off, Field: d.field, Reason: fmt.Sprintf(format, args...), Err: cause}
}

func (d *decoder) remaining() int64 { return d.size - d.off }

func (d *decoder) bytes(n int64) ([]byte, error) {
	if err := d.check(n); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		return nil, d.fail(ErrTruncated, "read failed: %v", err)
	}
	d.off += n
	return b, nil
}

func (d *decoder) check(n int64) error {
	if n > d.remaining() {
		return d.fail(ErrTruncated, "needs %d bytes but only %d remain", n, d.remaining())
	}
	if d.off+n > maxHeaderBytes {
		return d.fail(nil, "header exceeds %d MiB", maxHeaderBytes>>20)
	}
	return nil
}

// fixed reads n ≤ 8 bytes into the decoder's scratch buffer.
func (d *decoder) fixed(n int64) ([]byte, error) {
	if err := d.check(n); err != nil {
		return nil, err
	}
	b := d.scratch[:n]
	if _, err := io.ReadFull(d.r, b); err != nil {
		return nil, d.fail(ErrTruncated, "read failed: %v", err)
	}
	d.off += n
	return b, nil
}

func (d *decoder) u8() (uint8, error) {
	b, err := d.fixed(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (d *decoder) u16() (uint16, error) {
	b, err := d.fixed(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (d *decoder) u32() (uint32, error) {
	b, err := d.fixed(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.fixed(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// str reads a length-prefixed string. When strict, it must be valid UTF-8
// (keys and tensor names); values may hold any bytes, as llama.cpp allows.
func (d *decoder) str(limit uint64, strict bool) (string, error) {
	start := d.off
	n, err := d.u64()
	if err != nil {
		return "", err
	}
	if n > limit {
		d.off = start
		return "", d.fail(nil, "string length %d exceeds the limit of %d bytes", n, limit)
	}
	if left := d.remaining(); int64(n) > left {
		d.off = start
		return "", d.fail(ErrTruncated, "string length %d exceeds the %d bytes left in the file", n, left)
	}
	b, err := d.bytes(int64(n))
	if err != nil {
		return "", err
	}
	if strict && !utf8.Valid(b) {
		d.off = start
		return "", d.fail(nil, "string is not valid UTF-8")
	}
	return string(b), nil
}

func (d *decoder) value(t ValueType) (any, error) {
	switch t {
	case ValueUint8:
		return d.u8()
	case ValueInt8:
		v, err := d.u8()
		return int8(v), err
	case ValueUint16:
		return d.u16()
	case ValueInt16:
		v, err := d.u16()
		return int16(v), err
	case ValueUint32:
		return d.u32()
	case ValueInt32:
		v, err := d.u32()
		return int32(v), err
	case ValueFloat32:
		v, err := d.u32()
		return math.Float32frombits(v), err
	case ValueBool:
		v, err := d.u8()
		if err == nil && v > 1 {
			d.off--
			return nil, d.fail(nil, "bool byte is %d, want 0 or 1", v)
		}
		return v == 1, err
	case ValueString:
		return d.str(maxStringBytes, false)
	case ValueArray:
		return d.array()
	case ValueUint64:
		return d.u64()
	case ValueInt64:
		v, err := d.u64()
		return int64(v), err
	case ValueFloat64:
		v, err := d.u64()
		return math.Float64frombits(v), err
	}
	return nil, d.fail(nil, "unknown value type %d", uint32(t))
}

func readSlice[T any](d *decoder, n uint64, read func() (T, error)) ([]T, error) {
	out := make([]T, 0, min(n, 1<<16))
	for range n {
		v, err := read()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (d *decoder) array() (Array, error) {
	if d.depth >= maxArrayDepth {
		return Array{}, d.fail(nil, "arrays nested deeper than %d levels", maxArrayDepth)
	}
	d.depth++
	defer func() { d.depth-- }()

	start := d.off
	et, err := d.u32()
	if err != nil {
		return Array{}, err
	}
	elem := ValueType(et)
	if elem > ValueFloat64 {
		d.off = start
		return Array{}, d.fail(nil, "unknown array element type %d", et)
	}
	n, err := d.u64()
	if err != nil {
		return Array{}, err
	}
	// Every element takes at least minSize bytes of the file.
	minSize := elem.scalarSize()
	if elem == ValueString || elem == ValueArray {
		minSize = 8
		if elem == ValueArray {
			minSize = 12
		}
	}
	if n > uint64(d.remaining())/minSize {
		d.off = start
		return Array{}, d.fail(ErrTruncated, "array of %d %s elements cannot fit in the %d bytes left", n, elem, d.remaining())
	}
	a := Array{Elem: elem}
	switch elem {
	case ValueUint8:
		a.Values, err = readSlice(d, n, d.u8)
	case ValueInt8:
		a.Values, err = readSlice(d, n, func() (int8, error) { v, err := d.u8(); return int8(v), err })
	case ValueUint16:
		a.Values, err = readSlice(d, n, d.u16)
	case ValueInt16:
		a.Values, err = readSlice(d, n, func() (int16, error) { v, err := d.u16(); return int16(v), err })
	case ValueUint32:
		a.Values, err = readSlice(d, n, d.u32)
	case ValueInt32:
		a.Values, err = readSlice(d, n, func() (int32, error) { v, err := d.u32(); return int32(v), err })
	case ValueFloat32:
		a.Values, err = readSlice(d, n, func() (float32, error) { v, err := d.u32(); return math.Float32frombits(v), err })
	case ValueBool:
		a.Values, err = readSlice(d, n, func() (bool, error) { v, err := d.value(ValueBool); b, _ := v.(bool); return b, err })
	case ValueString:
		a.Values, err = readSlice(d, n, func() (string, error) { return d.str(maxStringBytes, false) })
	case ValueArray:
		a.Values, err = readSlice(d, n, d.array)
	case ValueUint64:
		a.Values, err = readSlice(d, n, d.u64)
	case ValueInt64:
		a.Values, err = readSlice(d, n, func() (int64, error) { v, err := d.u64(); return int64(v), err })
	case ValueFloat64:
		a.Values, err = readSlice(d, n, func() (float64, error) { v, err := d.u64(); return math.Float64frombits(v), err })
	}
	return a, err
}

func read(r io.ReaderAt, size int64, path string) (*File, error) {
	d := &decoder{r: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 1<<16), size: size, path: path}

	d.field = "magic"
	if size < 4 {
		return nil, d.fail(ErrNotGGUF, "file is %d bytes, too short to be GGUF", size)
	}
	m, err := d.fixed(4)
	if err != nil {
		return nil, err
	}
	if [4]byte(m) != magic {
		d.off = 0
		return nil, d.fail(ErrNotGGUF, "magic is %q, want \"GGUF\"", string(m))
	}

	d.field = "version"
	version, err := d.u32()
	if err != nil {
		return nil, err
	}
	switch {
	case version == 2 || version == 3:
	case bits.ReverseBytes32(version) == 2 || bits.ReverseBytes32(version) == 3:
		d.off -= 4
		return nil, d.fail(ErrUnsupported, "big-endian GGUF files are not supported")
	case version == 1:
		d.off -= 4
		return nil, d.fail(ErrUnsupported, "GGUF version 1 is obsolete; reconvert the model with a current llama.cpp")
	default:
		d.off -= 4
		return nil, d.fail(ErrUnsupported, "unknown GGUF version %d (this reader supports 2 and 3)", version)
	}

	d.field = "tensor count"
	nTensors, err := d.u64()
	if err != nil {
		return nil, err
	}
	if nTensors > maxTensors || nTensors > uint64(d.remaining())/32 {
		d.off -= 8
		return nil, d.fail(nil, "tensor count %d is impossible for a %d-byte file", nTensors, size)
	}
	d.field = "metadata count"
	nKV, err := d.u64()
	if err != nil {
		return nil, err
	}
	if nKV > maxKVs || nKV > uint64(d.remaining())/13 {
		d.off -= 8
		return nil, d.fail(nil, "metadata count %d is impossible for a %d-byte file", nKV, size)
	}

	f := &File{Header: Header{Version: version}, Path: path, Size: size, r: r}
	f.Metadata = make(Metadata, 0, nKV)
	seen := make(map[string]bool, nKV)
	for i := range nKV {
		d.field = fmt.Sprintf("metadata[%d] key", i)
		key, err := d.str(maxKeyBytes, true)
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, d.fail(nil, "empty key")
		}
		d.field = fmt.Sprintf("metadata[%d] %q", i, key)
		if seen[key] {
			return nil, d.fail(nil, "duplicate key")
		}
		seen[key] = true
		vt, err := d.u32()
		if err != nil {
			return nil, err
		}
		v, err := d.value(ValueType(vt))
		if err != nil {
			return nil, err
		}
		f.Metadata = append(f.Metadata, KV{Key: key, Value: v})
	}

	align := uint64(DefaultAlignment)
	if v, ok := f.Metadata.Get("general.alignment"); ok {
		a, isU32 := v.(uint32)
		if !isU32 || a == 0 || a&(a-1) != 0 {
			d.field = "metadata \"general.alignment\""
			return nil, d.fail(nil, "must be a non-zero power of two stored as u32, got %v (%T)", v, v)
		}
		align = uint64(a)
	}

	f.Tensors = make([]TensorInfo, 0, nTensors)
	f.index = make(map[string]int, nTensors)
	infoOffsets := make([]int64, 0, nTensors)
	for i := range nTensors {
		infoOffsets = append(infoOffsets, d.off)
		d.field = fmt.Sprintf("tensor[%d] name", i)
		name, err := d.str(maxKeyBytes, true)
		if err != nil {
			return nil, err
		}
		d.field = fmt.Sprintf("tensor[%d] %q", i, name)
		if _, dup := f.index[name]; dup {
			return nil, d.fail(nil, "duplicate tensor name")
		}
		nd, err := d.u32()
		if err != nil {
			return nil, err
		}
		if nd == 0 || nd > MaxDims {
			d.off -= 4
			return nil, d.fail(nil, "has %d dimensions (must be 1..%d)", nd, MaxDims)
		}
		shape := make([]uint64, nd)
		elems := uint64(1)
		for j := range shape {
			if shape[j], err = d.u64(); err != nil {
				return nil, err
			}
			hi, lo := bits.Mul64(elems, shape[j])
			if hi != 0 || lo > math.MaxInt64 {
				d.off -= 8
				return nil, d.fail(nil, "shape %v overflows the element count", shape[:j+1])
			}
			elems = lo
		}
		tt, err := d.u32()
		if err != nil {
			return nil, err
		}
		typ := Type(tt)
		if !typ.Valid() {
			d.off -= 4
			return nil, d.fail(ErrUnsupported, "unknown or removed tensor type %d", tt)
		}
		if shape[0]%typ.BlockSize() != 0 {
			d.off -= 4
			return nil, d.fail(nil, "row length %d is not a multiple of %s's block size %d", shape[0], typ, typ.BlockSize())
		}
		off, err := d.u64()
		if err != nil {
			return nil, err
		}
		f.index[name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, TensorInfo{Name: name, Shape: shape, Type: typ, Offset: off})
	}

	data := (uint64(d.off) + align - 1) / align * align
	f.DataOffset = int64(data)
	if err := checkLayout(f, align, infoOffsets, path); err != nil {
		return nil, err
	}
	return f, nil
}

// checkLayout verifies that every tensor is aligned, inside the file and
// disjoint from the others.
func checkLayout(f *File, align uint64, infoOffsets []int64, path string) error {
	dataSize := uint64(0)
	if f.Size > f.DataOffset {
		dataSize = uint64(f.Size - f.DataOffset)
	}
	type span struct {
		start, end uint64
		i          int
	}
	spans := make([]span, 0, len(f.Tensors))
	for i, t := range f.Tensors {
		fail := func(cause error, format string, args ...any) error {
			return &FormatError{Path: path, Offset: infoOffsets[i], Field: fmt.Sprintf("tensor[%d] %q", i, t.Name), Reason: fmt.Sprintf(format, args...), Err: cause}
		}
		if t.Offset%align != 0 {
			return fail(nil, "data offset %d is not a multiple of the alignment %d", t.Offset, align)
		}
		n := t.Bytes()
		if t.Offset > dataSize || n > dataSize-t.Offset {
			return fail(ErrTruncated, "data [%d, %d) of the data section lies beyond its end (%d bytes; file %d bytes)", t.Offset, t.Offset+n, dataSize, f.Size)
		}
		spans = append(spans, span{t.Offset, t.Offset + n, i})
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.start != b.start {
			if a.start < b.start {
				return -1
			}
			return 1
		}
		return a.i - b.i
	})
	for k := 1; k < len(spans); k++ {
		prev, cur := spans[k-1], spans[k]
		if cur.start < prev.end && cur.end > cur.start && prev.end > prev.start {
			t := f.Tensors[cur.i]
			return &FormatError{Path: path, Offset: infoOffsets[cur.i], Field: fmt.Sprintf("tensor[%d] %q", cur.i, t.Name),
				Reason: fmt.Sprintf("data [%d, %d) overlaps tensor %q at [%d, %d)", cur.start, cur.end, f.Tensors[prev.i].Name, prev.start, prev.end)}
		}
	}
	return nil
}
