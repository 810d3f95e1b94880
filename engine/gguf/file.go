package gguf

import (
	"fmt"
	"io"
	"os"
)

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
	if n == 0 {
		// An empty tensor may sit at the very end of the file, where some
		// io.ReaderAt implementations answer even an empty read with EOF.
		return buf, nil
	}
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
