package transform

import (
	"hash/maphash"
	"sync"
)

// cacheShards is the number of independently locked parts of a cache: it
// keeps shards of different Kinesis shards (and cores) off each other's
// locks.
const cacheShards = 32

// cache is a bounded map from K to V, safe for concurrent use. It holds at
// most about its capacity: when a part is full, an arbitrary entry of that
// part is evicted (Go's map iteration order is randomised, so this is
// random eviction, which for a heavy-tailed key distribution such as user
// agents keeps the hot keys with high probability and costs no bookkeeping
// on a hit, unlike an LRU list).
type cache[K comparable, V any] struct {
	seed     maphash.Seed
	hash     func(maphash.Seed, K) uint64
	perShard int
	shards   [cacheShards]cacheShard[K, V]
}

type cacheShard[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V  // guarded by mu
	_  [32]byte // keep neighbouring parts off one cache line (24-byte RWMutex + map pointer + 32 = 64)
}

// newCache returns a cache holding about capacity entries (at least one
// per part), keyed with hash.
func newCache[K comparable, V any](capacity int, hash func(maphash.Seed, K) uint64) *cache[K, V] {
	c := &cache[K, V]{seed: maphash.MakeSeed(), hash: hash, perShard: max(1, (capacity+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[K]V)
	}
	return c
}

func (c *cache[K, V]) shard(k K) *cacheShard[K, V] {
	return &c.shards[c.hash(c.seed, k)%cacheShards]
}

// get returns the value for k, if cached.
func (c *cache[K, V]) get(k K) (V, bool) {
	s := c.shard(k)
	s.mu.RLock()
	v, ok := s.m[k]
	s.mu.RUnlock()
	return v, ok
}

// put stores v for k, evicting an arbitrary entry of k's part if it is full.
func (c *cache[K, V]) put(k K, v V) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok && len(s.m) >= c.perShard {
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	s.m[k] = v
}

// len returns the number of cached entries.
func (c *cache[K, V]) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

func hashString(seed maphash.Seed, s string) uint64 { return maphash.String(seed, s) }

// hashUintptr mixes a database offset (not attacker-chosen, so it needs no
// seed; maphash.Comparable would allocate) with the splitmix64 finalizer.
func hashUintptr(_ maphash.Seed, u uintptr) uint64 {
	x := uint64(u)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
