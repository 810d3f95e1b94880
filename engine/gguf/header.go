package gguf

import (
	"io"
	"math/bits"
	"slices"
)

// DefaultAlignment applies when general.alignment is absent.
const DefaultAlignment = 32

var magic = [4]byte{'G', 'G', 'U', 'F'}

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

// read parses a file's header: the preamble (magic, version, counts), the
// metadata and the tensor infos, then checks that the tensors' data lies
// inside the file. Tensor data is not read.
func read(r io.ReaderAt, size int64, path string) (*File, error) {
	d := newDecoder(r, size, path)
	version, nTensors, nKV, err := readPreamble(d)
	if err != nil {
		return nil, err
	}
	f := &File{Header: Header{Version: version}, Path: path, Size: size, r: r}
	if f.Metadata, err = readMetadata(d, nKV); err != nil {
		return nil, err
	}
	align, err := readAlignment(d, f.Metadata)
	if err != nil {
		return nil, err
	}
	infoOffsets, err := readTensorInfos(d, f, nTensors)
	if err != nil {
		return nil, err
	}
	data := (uint64(d.off) + align - 1) / align * align
	f.DataOffset = int64(data)
	if err := checkLayout(f, align, infoOffsets, path); err != nil {
		return nil, err
	}
	return f, nil
}

// readPreamble reads the magic, the version (2 or 3, little-endian) and the
// tensor and metadata counts, rejecting counts the file is too small for.
func readPreamble(d *decoder) (version uint32, nTensors, nKV uint64, err error) {
	d.field = "magic"
	if d.size < 4 {
		return 0, 0, 0, d.fail(ErrNotGGUF, "file is %d bytes, too short to be GGUF", d.size)
	}
	m, err := d.fixed(4)
	if err != nil {
		return 0, 0, 0, err
	}
	if [4]byte(m) != magic {
		d.off = 0
		return 0, 0, 0, d.fail(ErrNotGGUF, "magic is %q, want \"GGUF\"", string(m))
	}

	d.field = "version"
	if version, err = d.u32(); err != nil {
		return 0, 0, 0, err
	}
	switch {
	case version == 2 || version == 3:
	case bits.ReverseBytes32(version) == 2 || bits.ReverseBytes32(version) == 3:
		d.off -= 4
		return 0, 0, 0, d.fail(ErrUnsupported, "big-endian GGUF files are not supported")
	case version == 1:
		d.off -= 4
		return 0, 0, 0, d.fail(ErrUnsupported, "GGUF version 1 is obsolete; reconvert the model with a current llama.cpp")
	default:
		d.off -= 4
		return 0, 0, 0, d.fail(ErrUnsupported, "unknown GGUF version %d (this reader supports 2 and 3)", version)
	}

	// Each tensor info takes at least 32 bytes and each metadata entry 13.
	d.field = "tensor count"
	if nTensors, err = d.u64(); err != nil {
		return 0, 0, 0, err
	}
	if nTensors > maxTensors || nTensors > uint64(d.remaining())/32 {
		d.off -= 8
		return 0, 0, 0, d.fail(nil, "tensor count %d is impossible for a %d-byte file", nTensors, d.size)
	}
	d.field = "metadata count"
	if nKV, err = d.u64(); err != nil {
		return 0, 0, 0, err
	}
	if nKV > maxKVs || nKV > uint64(d.remaining())/13 {
		d.off -= 8
		return 0, 0, 0, d.fail(nil, "metadata count %d is impossible for a %d-byte file", nKV, d.size)
	}
	return version, nTensors, nKV, nil
}
