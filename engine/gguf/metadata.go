package gguf

import (
	"fmt"
	"math"
	"slices"
)

// ValueType tags a metadata value in a GGUF file.
type ValueType uint32

// Metadata value types, numbered as in the GGUF specification.
const (
	ValueUint8   ValueType = 0
	ValueInt8    ValueType = 1
	ValueUint16  ValueType = 2
	ValueInt16   ValueType = 3
	ValueUint32  ValueType = 4
	ValueInt32   ValueType = 5
	ValueFloat32 ValueType = 6
	ValueBool    ValueType = 7
	ValueString  ValueType = 8
	ValueArray   ValueType = 9
	ValueUint64  ValueType = 10
	ValueInt64   ValueType = 11
	ValueFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("value-type(%d)", uint32(t))
}

// scalarSize is the encoded size of a fixed-size value type (0 for string/array).
func (t ValueType) scalarSize() uint64 {
	switch t {
	case ValueUint8, ValueInt8, ValueBool:
		return 1
	case ValueUint16, ValueInt16:
		return 2
	case ValueUint32, ValueInt32, ValueFloat32:
		return 4
	case ValueUint64, ValueInt64, ValueFloat64:
		return 8
	}
	return 0
}

// Array is a metadata array. Values holds a slice whose Go type matches Elem:
// []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool,
// []string, []Array (nested arrays), []uint64, []int64 or []float64.
type Array struct {
	Elem   ValueType
	Values any
}

// Len is the number of elements in the array.
func (a Array) Len() int {
	switch v := a.Values.(type) {
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []float32:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []Array:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float64:
		return len(v)
	}
	return 0
}

// KV is one metadata entry. Value is a Go value whose type selects the GGUF
// value type: uint8, int8, uint16, int16, uint32, int32, float32, bool,
// string, Array, uint64, int64 or float64.
type KV struct {
	Key   string
	Value any
}

// Type returns the GGUF value type of kv.Value, or an error for Go types
// that GGUF cannot store.
func (kv KV) Type() (ValueType, error) { return typeOf(kv.Value) }

func typeOf(v any) (ValueType, error) {
	switch v := v.(type) {
	case uint8:
		return ValueUint8, nil
	case int8:
		return ValueInt8, nil
	case uint16:
		return ValueUint16, nil
	case int16:
		return ValueInt16, nil
	case uint32:
		return ValueUint32, nil
	case int32:
		return ValueInt32, nil
	case float32:
		return ValueFloat32, nil
	case bool:
		return ValueBool, nil
	case string:
		return ValueString, nil
	case Array:
		if err := v.check(); err != nil {
			return 0, err
		}
		return ValueArray, nil
	case uint64:
		return ValueUint64, nil
	case int64:
		return ValueInt64, nil
	case float64:
		return ValueFloat64, nil
	}
	return 0, fmt.Errorf("gguf cannot store a metadata value of Go type %T", v)
}

// check verifies that the slice's Go type matches Elem.
func (a Array) check() error {
	var want ValueType
	switch a.Values.(type) {
	case []uint8:
		want = ValueUint8
	case []int8:
		want = ValueInt8
	case []uint16:
		want = ValueUint16
	case []int16:
		want = ValueInt16
	case []uint32:
		want = ValueUint32
	case []int32:
		want = ValueInt32
	case []float32:
		want = ValueFloat32
	case []bool:
		want = ValueBool
	case []string:
		want = ValueString
	case []Array:
		want = ValueArray
	case []uint64:
		want = ValueUint64
	case []int64:
		want = ValueInt64
	case []float64:
		want = ValueFloat64
	default:
		return fmt.Errorf("gguf array holds unsupported Go type %T", a.Values)
	}
	if want != a.Elem {
		return fmt.Errorf("gguf array declares %s elements but holds %T", a.Elem, a.Values)
	}
	return nil
}

// Metadata is the ordered list of a file's key/value entries. Order and
// value types are preserved exactly from reading to writing.
type Metadata []KV

// Index returns the position of key, or -1.
func (m Metadata) Index(key string) int {
	return slices.IndexFunc(m, func(kv KV) bool { return kv.Key == key })
}

// Get returns the value stored under key.
func (m Metadata) Get(key string) (any, bool) {
	if i := m.Index(key); i >= 0 {
		return m[i].Value, true
	}
	return nil, false
}

// String returns the string stored under key ("" when absent or not a string).
func (m Metadata) String(key string) string {
	v, _ := m.Get(key)
	s, _ := v.(string)
	return s
}

// Uint returns an integer value of any width and signedness as uint64; ok is
// false when the key is absent, not an integer, or negative.
func (m Metadata) Uint(key string) (uint64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	return asUint(v)
}

func asUint(v any) (uint64, bool) {
	switch v := v.(type) {
	case uint8:
		return uint64(v), true
	case uint16:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	case int8:
		return uint64(v), v >= 0
	case int16:
		return uint64(v), v >= 0
	case int32:
		return uint64(v), v >= 0
	case int64:
		return uint64(v), v >= 0
	}
	return 0, false
}

// Float returns a floating-point value (f32 or f64) as float64.
func (m Metadata) Float(key string) (float64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return math.NaN(), false
	}
	switch v := v.(type) {
	case float32:
		return float64(v), true
	case float64:
		return v, true
	}
	return math.NaN(), false
}

// Strings returns a string array stored under key.
func (m Metadata) Strings(key string) ([]string, bool) {
	v, ok := m.Get(key)
	if !ok {
		return nil, false
	}
	a, ok := v.(Array)
	if !ok {
		return nil, false
	}
	s, ok := a.Values.([]string)
	return s, ok
}

// Architecture is the value of general.architecture ("llama", "qwen2", ...).
func (m Metadata) Architecture() string { return m.String("general.architecture") }

// ArchUint reads "<architecture>.<suffix>", e.g. ArchUint("block_count").
func (m Metadata) ArchUint(suffix string) (uint64, bool) {
	return m.Uint(m.Architecture() + "." + suffix)
}

// Set replaces the value of key in place (keeping its position) or appends
// it. It returns the updated slice, like append.
func (m Metadata) Set(key string, value any) Metadata {
	if i := m.Index(key); i >= 0 {
		m[i].Value = value
		return m
	}
	return append(m, KV{Key: key, Value: value})
}

// Delete removes key if present.
func (m Metadata) Delete(key string) Metadata {
	if i := m.Index(key); i >= 0 {
		return slices.Delete(m, i, i+1)
	}
	return m
}

// Clone returns a copy whose entries can be changed without touching m.
// Array payloads are shared: treat them as read-only.
func (m Metadata) Clone() Metadata { return slices.Clone(m) }
