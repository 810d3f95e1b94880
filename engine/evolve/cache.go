package evolve

import (
	"container/list"
	"sync"
)

// lruCache is a merge.TensorCache bounded in bytes: merged tensors whose
// inputs and genes did not change between candidates are reused instead of
// recomputed (layer-group genes leave most tensors of a child unchanged).
type lruCache struct {
	mu    sync.Mutex
	limit int64
	size  int64
	order *list.List // front = most recent
	items map[[32]byte]*list.Element
}

type lruEntry struct {
	key  [32]byte
	data []byte
}

func newLRUCache(limit int64) *lruCache {
	return &lruCache{limit: limit, order: list.New(), items: map[[32]byte]*list.Element{}}
}

func (c *lruCache) Get(key [32]byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruEntry).data, true
}

func (c *lruCache) Put(key [32]byte, data []byte) {
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
