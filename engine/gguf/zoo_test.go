package gguf_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/zoo"
)

// TestRoundTripRealFiles reads real models (the converted stories15M, a
// materialised expert, a committed expert patch) and writes them back:
// the result must be byte-identical.
func TestRoundTripRealFiles(t *testing.T) {
	if err := zoo.Check(); err != nil {
		t.Fatal(err)
	}
	paths := []string{zoo.Model(zoo.Base), zoo.Model("bible"), filepath.Join("..", "..", "zoo", "experts", "moby.gguf")}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h := sha256.New()
			w, err := gguf.NewWriter(h, f.Header)
			if err != nil {
				t.Fatal(err)
			}
			var buf []byte
			for _, ti := range f.Tensors {
				if buf, err = f.ReadTensor(ti, buf); err != nil {
					t.Fatal(err)
				}
				if err := w.WriteTensor(ti.Name, buf); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			orig, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer orig.Close()
			h2 := sha256.New()
			if _, err := io.Copy(h2, orig); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(h.Sum(nil), h2.Sum(nil)) {
				t.Fatalf("rewriting %s changed its bytes", path)
			}
		})
	}
}
