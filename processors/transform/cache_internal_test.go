package transform

import (
	"fmt"
	"testing"
)

func TestCacheBounded(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		keys     int
		max      int // entries the cache may hold
	}{
		{"under capacity", 1024, 100, 100},
		{"far over capacity", 256, 10000, 256},
		{"tiny", 1, 100, cacheShards}, // at least one entry per part
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache[string, int](tc.capacity, hashString)
			for i := range tc.keys {
				k := fmt.Sprint("k", i)
				c.put(k, i)
				if v, ok := c.get(k); !ok || v != i {
					t.Fatalf("get(%s) = %d, %v right after put", k, v, ok)
				}
			}
			if n := c.len(); n > tc.max || n == 0 {
				t.Fatalf("cache holds %d entries, want 1..%d", n, tc.max)
			}
			c.put("k0", -1) // overwrite or re-add
			if v, ok := c.get("k0"); !ok || v != -1 {
				t.Fatalf("overwrite lost: %d %v", v, ok)
			}
		})
	}
}
