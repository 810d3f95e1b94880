package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"
)

// Limits applied while parsing, so that a hostile header can neither make
// the reader allocate more than the file could justify nor recurse deeply.
const (
	maxHeaderBytes = 512 << 20 // metadata + tensor infos
	maxKeyBytes    = 65535     // the GGUF spec's key length limit
	maxStringBytes = 64 << 20
	maxArrayDepth  = 8
	maxTensors     = 1 << 20
	maxKVs         = 1 << 20
)

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

func newDecoder(r io.ReaderAt, size int64, path string) *decoder {
	return &decoder{r: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 1<<16), size: size, path: path}
}

// fail reports a FormatError at the decoder's offset and field.
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
