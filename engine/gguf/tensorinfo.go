package gguf

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// MaxDims is ggml's GGML_MAX_DIMS.
const MaxDims = 4

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

// readTensorInfos reads the tensor info section into f.Tensors and
// f.index. It returns where each info starts, for layout errors.
func readTensorInfos(d *decoder, f *File, nTensors uint64) ([]int64, error) {
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
	return infoOffsets, nil
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
