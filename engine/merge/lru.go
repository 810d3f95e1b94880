package merge

import (
	listpkg "container/list"
	"sync"
)

// LRU is a TensorCache bounded in bytes that drops the least recently
// used tensors first: an evaluation worker keeps one per run, so tensors
// whose inputs and parameters did not change between candidates are reused
// instead of recomputed (layer-group genes leave most tensors of a child
// unchanged). A tensor larger than a quarter of the limit is not kept.
// It is safe for concurrent use.
type LRU struct {
	mu    sync.Mutex
	limit int64
	size  int64
	order *listpkg.List // front = most recent
	items map[[32]byte]*listpkg.Element
	hits  int
}

type lruEntry struct {
	key  [32]byte
	data []byte
}

// NewLRU returns an empty cache holding at most limit bytes.
func NewLRU(limit int64) *LRU {
	return &LRU{limit: limit, order: listpkg.New(), items: map[[32]byte]*listpkg.Element{}}
}

// Get returns the tensor stored under key.
func (c *LRU) Get(key [32]byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	c.hits++
	return el.Value.(*lruEntry).data, true
}

// Put stores data under key; the cache keeps data (callers must not reuse it).
func (c *LRU) Put(key [32]byte, data []byte) {
	if int64(len(data)) > c.limit/4 {
		return // one tensor may not crowd out the rest
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	c.items[key] = c.order.PushFront(&lruEntry{key: key, data: data})
	c.size += int64(len(data))
	for c.size > c.limit {
		el := c.order.Back()
		ent := el.Value.(*lruEntry)
		c.order.Remove(el)
		delete(c.items, ent.key)
		c.size -= int64(len(ent.data))
	}
}

// Hits is the number of Gets that found their tensor.
func (c *LRU) Hits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits
}
