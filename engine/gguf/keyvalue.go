package gguf

import (
	"fmt"
	"math"
)

// The metadata section: nKV entries of key (a string), value type (u32)
// and value. The Go types values decode to are listed on KV.

// readMetadata reads the metadata section. Keys must be non-empty, valid
// UTF-8 and unique.
func readMetadata(d *decoder, nKV uint64) (Metadata, error) {
	md := make(Metadata, 0, nKV)
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
		md = append(md, KV{Key: key, Value: v})
	}
	return md, nil
}

// readAlignment validates general.alignment: when present it must be a
// u32 power of two.
func readAlignment(d *decoder, md Metadata) (uint64, error) {
	v, ok := md.Get("general.alignment")
	if !ok {
		return DefaultAlignment, nil
	}
	a, isU32 := v.(uint32)
	if !isU32 || a == 0 || a&(a-1) != 0 {
		d.field = "metadata \"general.alignment\""
		return 0, d.fail(nil, "must be a non-zero power of two stored as u32, got %v (%T)", v, v)
	}
	return uint64(a), nil
}

// value reads one metadata value of type t.
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
