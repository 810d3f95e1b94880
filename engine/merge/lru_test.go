package merge

import (
	"bytes"
	"testing"
)

// TestLRU: tensors come back as stored, the least recently used go first
// when the byte limit is exceeded, a tensor over a quarter of the limit is
// not kept, and Hits counts the Gets that found their tensor.
func TestLRU(t *testing.T) {
	key := func(b byte) [32]byte { return [32]byte{b} }
	data := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	c := NewLRU(100)
	c.Put(key(1), data(25, 1))
	c.Put(key(2), data(25, 2))
	c.Put(key(3), data(25, 3))
	c.Put(key(4), data(25, 4))
	if got, ok := c.Get(key(1)); !ok || !bytes.Equal(got, data(25, 1)) { // 1 is now the most recent
		t.Fatalf("Get(1) = %v, %v", got, ok)
	}
	c.Put(key(5), data(25, 5)) // 125 bytes: the least recent (2) goes
	for b, want := range map[byte]bool{1: true, 2: false, 3: true, 4: true, 5: true} {
		if _, ok := c.Get(key(b)); ok != want {
			t.Errorf("after eviction, Get(%d) found = %v, want %v", b, ok, want)
		}
	}
	c.Put(key(6), data(26, 6)) // over a quarter of the limit
	if _, ok := c.Get(key(6)); ok {
		t.Error("a tensor larger than a quarter of the limit was kept")
	}
	if h := c.Hits(); h != 5 {
		t.Errorf("Hits() = %d, want 5", h)
	}
}
