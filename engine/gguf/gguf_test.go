package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sampleHeader covers every metadata value type (nested arrays included),
// odd alignments of the header, and a spread of tensor types.
func sampleHeader() Header {
	md := Metadata{
		{"general.architecture", "llama"},
		{"general.alignment", uint32(64)},
		{"u8", uint8(200)},
		{"i8", int8(-5)},
		{"u16", uint16(65000)},
		{"i16", int16(-30000)},
		{"u32", uint32(4_000_000_000)},
		{"i32", int32(-2_000_000_000)},
		{"f32", float32(math.Pi)},
		{"f32.nan", math.Float32frombits(0x7fc00001)},
		{"bool.t", true},
		{"bool.f", false},
		{"str", "héllo ▁world"},
		{"str.empty", ""},
		{"str.bytes", "\xff\xfe raw bytes are allowed in values"},
		{"u64", uint64(math.MaxUint64)},
		{"i64", int64(math.MinInt64)},
		{"f64", math.E},
		{"arr.u8", Array{ValueUint8, []uint8{1, 2, 3}}},
		{"arr.i8", Array{ValueInt8, []int8{-1, 0, 1}}},
		{"arr.u16", Array{ValueUint16, []uint16{1, 65535}}},
		{"arr.i16", Array{ValueInt16, []int16{-32768, 32767}}},
		{"arr.u32", Array{ValueUint32, []uint32{7}}},
		{"arr.i32", Array{ValueInt32, []int32{-7, 7}}},
		{"arr.f32", Array{ValueFloat32, []float32{0.5, -0.25, float32(math.Inf(1))}}},
		{"arr.bool", Array{ValueBool, []bool{true, false, true}}},
		{"arr.str", Array{ValueString, []string{"a", "", "▁b"}}},
		{"arr.u64", Array{ValueUint64, []uint64{1 << 40}}},
		{"arr.i64", Array{ValueInt64, []int64{-1 << 40}}},
		{"arr.f64", Array{ValueFloat64, []float64{1e-300}}},
		{"arr.empty", Array{ValueString, []string{}}},
		{"arr.nested", Array{ValueArray, []Array{
			{ValueUint32, []uint32{1, 2}},
			{ValueString, []string{"x"}},
			{ValueArray, []Array{{ValueInt8, []int8{3}}}},
		}}},
	}
	tensors := []TensorInfo{
		{Name: "token_embd.weight", Shape: []uint64{64, 10}, Type: TypeF16},
		{Name: "blk.0.attn_norm.weight", Shape: []uint64{64}, Type: TypeF32},
		{Name: "blk.0.attn_q.weight", Shape: []uint64{64, 64}, Type: TypeQ8_0},
		{Name: "blk.0.attn_k.weight", Shape: []uint64{64, 3}, Type: TypeQ4_0},
		{Name: "blk.0.ffn_up.weight", Shape: []uint64{256, 2}, Type: TypeQ4_K},
		{Name: "blk.0.ffn_down.weight", Shape: []uint64{256, 1}, Type: TypeQ6_K},
		{Name: "blk.0.ffn_gate.weight", Shape: []uint64{256, 1}, Type: TypeIQ4_XS},
		{Name: "blk.0.bf16", Shape: []uint64{3, 5}, Type: TypeBF16},
		{Name: "blk.0.i32", Shape: []uint64{7}, Type: TypeI32},
		{Name: "blk.0.4d", Shape: []uint64{2, 3, 4, 5}, Type: TypeF32},
		{Name: "blk.0.mxfp4", Shape: []uint64{64, 1}, Type: TypeMXFP4},
		{Name: "output_norm.weight", Shape: []uint64{1}, Type: TypeF32},
	}
	return Header{Version: 3, Metadata: md, Tensors: tensors}
}

// writeSample writes h with pseudo-random tensor data and returns the bytes
// and the data written for each tensor.
func writeSample(t testing.TB, h Header) ([]byte, map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	data := map[string][]byte{}
	for _, ti := range h.Tensors {
		b := make([]byte, ti.Bytes())
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		data[ti.Name] = b
		if err := w.WriteTensor(ti.Name, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), data
}

func TestRoundTripGenerated(t *testing.T) {
	h := sampleHeader()
	raw, data := writeSample(t, h)

	f, err := Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Metadata) != len(h.Metadata) {
		t.Fatalf("got %d metadata entries, want %d", len(f.Metadata), len(h.Metadata))
	}
	for i := range h.Metadata {
		if i == 9 {
			continue // NaN != NaN under DeepEqual; its bits are compared below
		}
		if !reflect.DeepEqual(f.Metadata[i], h.Metadata[i]) {
			t.Errorf("metadata[%d]: got %#v, want %#v", i, f.Metadata[i], h.Metadata[i])
		}
	}
	if got := math.Float32bits(f.Metadata[9].Value.(float32)); got != 0x7fc00001 {
		t.Errorf("NaN payload changed: %#x", got)
	}
	if f.DataOffset%64 != 0 {
		t.Errorf("data section at %d, not aligned to 64", f.DataOffset)
	}
	for _, ti := range h.Tensors {
		got, ok := f.Tensor(ti.Name)
		if !ok {
			t.Fatalf("tensor %q missing", ti.Name)
		}
		if !reflect.DeepEqual(got.Shape, ti.Shape) || got.Type != ti.Type || got.Offset%64 != 0 {
			t.Errorf("tensor %q: got %+v", ti.Name, got)
		}
		b, err := f.ReadTensor(got, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, data[ti.Name]) {
			t.Errorf("tensor %q data differs", ti.Name)
		}
	}

	// Writing what was read must reproduce the file byte for byte.
	var again bytes.Buffer
	w, err := NewWriter(&again, f.Header)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range f.Tensors {
		b, err := f.ReadTensor(ti, nil)
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
	if !bytes.Equal(again.Bytes(), raw) {
		t.Fatalf("round trip differs: %d vs %d bytes", again.Len(), len(raw))
	}
}

// TestLayoutMatchesSpec checks the encoding against hand-computed bytes, so
// the writer and reader cannot agree on a wrong format.
func TestLayoutMatchesSpec(t *testing.T) {
	h := Header{Version: 3,
		Metadata: Metadata{{"k", uint16(0x0102)}},
		Tensors:  []TensorInfo{{Name: "t", Shape: []uint64{2}, Type: TypeF32}},
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("t", []byte{1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := []byte("GGUF")
	want = binary.LittleEndian.AppendUint32(want, 3)
	want = binary.LittleEndian.AppendUint64(want, 1) // tensors
	want = binary.LittleEndian.AppendUint64(want, 1) // kvs
	want = binary.LittleEndian.AppendUint64(want, 1)
	want = append(want, 'k')
	want = binary.LittleEndian.AppendUint32(want, uint32(ValueUint16))
	want = binary.LittleEndian.AppendUint16(want, 0x0102)
	want = binary.LittleEndian.AppendUint64(want, 1)
	want = append(want, 't')
	want = binary.LittleEndian.AppendUint32(want, 1)
	want = binary.LittleEndian.AppendUint64(want, 2)
	want = binary.LittleEndian.AppendUint32(want, uint32(TypeF32))
	want = binary.LittleEndian.AppendUint64(want, 0)
	for len(want)%32 != 0 {
		want = append(want, 0)
	}
	want = append(want, 1, 2, 3, 4, 5, 6, 7, 8)
	for len(want)%32 != 0 {
		want = append(want, 0)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("encoding differs:\n got %x\nwant %x", buf.Bytes(), want)
	}
}

func TestWriterRejects(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		want string
	}{
		{"bad alignment", Header{Metadata: Metadata{{"general.alignment", uint32(3)}}}, "power of two"},
		{"alignment type", Header{Metadata: Metadata{{"general.alignment", uint64(32)}}}, "power of two"},
		{"duplicate key", Header{Metadata: Metadata{{"a", true}, {"a", false}}}, "twice"},
		{"go type", Header{Metadata: Metadata{{"a", 3}}}, "Go type int"},
		{"array mismatch", Header{Metadata: Metadata{{"a", Array{ValueUint8, []int32{1}}}}}, "declares u8"},
		{"duplicate tensor", Header{Tensors: []TensorInfo{{Name: "x", Shape: []uint64{1}}, {Name: "x", Shape: []uint64{1}}}}, "twice"},
		{"block size", Header{Tensors: []TensorInfo{{Name: "x", Shape: []uint64{33}, Type: TypeQ8_0}}}, "block size"},
		{"bad type", Header{Tensors: []TensorInfo{{Name: "x", Shape: []uint64{1}, Type: 4}}}, "invalid type"},
		{"dims", Header{Tensors: []TensorInfo{{Name: "x", Shape: []uint64{1, 1, 1, 1, 1}}}}, "dimensions"},
		{"version", Header{Version: 1}, "version 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewWriter(&bytes.Buffer{}, tt.h)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestWriterOrderAndSize(t *testing.T) {
	h := Header{Tensors: []TensorInfo{
		{Name: "a", Shape: []uint64{4}, Type: TypeF32},
		{Name: "b", Shape: []uint64{4}, Type: TypeF32},
	}}
	w, err := NewWriter(&bytes.Buffer{}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("b", make([]byte, 16)); err == nil {
		t.Error("out-of-order tensor accepted")
	}
	if err := w.WriteTensor("a", make([]byte, 15)); err == nil {
		t.Error("short tensor accepted")
	}
	if err := w.WriteTensor("a", make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), `before tensor "b"`) {
		t.Errorf("Close with a missing tensor: %v", err)
	}
}

func TestCreateIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.gguf")
	h := Header{Tensors: []TensorInfo{{Name: "a", Shape: []uint64{4}, Type: TypeF32}}}

	fw, err := Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	fw.Abort()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("abort left files behind: %v", entries)
	}

	fw, err = Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Abort()
	if err := fw.WriteTensor("a", make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("destination exists before commit: %v", err)
	}
	if err := fw.Commit(); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Tensors) != 1 || f.Tensors[0].Name != "a" {
		t.Fatalf("unexpected tensors %+v", f.Tensors)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestTypeTable(t *testing.T) {
	for _, typ := range Types() {
		if typ.BlockSize() == 0 || typ.BlockBytes() == 0 {
			t.Errorf("%s: empty traits", typ)
		}
		back, err := ParseType(strings.ToLower(typ.String()))
		if err != nil || back != typ {
			t.Errorf("ParseType(%s) = %v, %v", typ, back, err)
		}
	}
	if len(Types()) != 32 {
		t.Errorf("got %d types, want 32", len(Types()))
	}
	if _, err := ParseType("q4_2"); err == nil {
		t.Error("removed type accepted")
	}
	// Q4_K: 256 elements in 144 bytes (d, dmin, 12 scale bytes, 128 nibbles).
	if got := TypeQ4_K.RowBytes(512); got != 288 {
		t.Errorf("Q4_K row of 512 = %d bytes", got)
	}
}

func TestMetadataHelpers(t *testing.T) {
	md := Metadata{{"general.architecture", "llama"}, {"llama.block_count", uint32(6)}, {"neg", int32(-1)}, {"f", float32(0.5)}}
	if n, ok := md.ArchUint("block_count"); !ok || n != 6 {
		t.Errorf("ArchUint = %d, %v", n, ok)
	}
	if _, ok := md.Uint("neg"); ok {
		t.Error("negative value read as uint")
	}
	if v, ok := md.Float("f"); !ok || v != 0.5 {
		t.Errorf("Float = %v, %v", v, ok)
	}
	md = md.Set("llama.block_count", uint32(8)).Set("new", "x").Delete("neg")
	if md.Index("llama.block_count") != 1 || md.Index("new") != 3 || md.Index("neg") != -1 {
		t.Errorf("Set/Delete order wrong: %v", md)
	}
}
