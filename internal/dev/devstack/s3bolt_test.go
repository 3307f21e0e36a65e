package devstack

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	bolt "go.etcd.io/bbolt"
)

// TestBoltBackendObjectsOutliveTheirTransaction reads objects (GET, ranged
// GET, HEAD, the source of a copy), then writes as the archive sink and
// other clients do before the server has sent the bodies: the object is
// overwritten and deleted (its pages are freed and reused) and the
// database grows past its memory map (bolt unmaps and maps it again). The
// bodies and ETags read before must be what was stored. On s3bolt's own
// backend they alias bolt's mmap: reading them faults (the server process
// dies with "fatal error: fault"; here SetPanicOnFault turns that into a
// test failure) or returns the bytes of a later write.
//
// "reused" maps a gigabyte up front so the file is never remapped: the
// freed pages are rewritten in place, and a bigger mmap (bolt's
// InitialMmapSize) is no cure. "remapped" grows the file past its map.
func TestBoltBackendObjectsOutliveTheirTransaction(t *testing.T) {
	t.Run("reused", func(t *testing.T) { testObjectsOutliveTheirTransaction(t, &bolt.Options{InitialMmapSize: 1 << 30}, 0) })
	t.Run("remapped", func(t *testing.T) { testObjectsOutliveTheirTransaction(t, nil, 24) })
}

func testObjectsOutliveTheirTransaction(t *testing.T, opts *bolt.Options, grow int) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "s3.bolt"), 0o600, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	be := newBoltBackend(db)
	if err := be.CreateBucket("b"); err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1, 2})
	random := func(n int) []byte {
		p := make([]byte, n)
		_, _ = rng.Read(p)
		return p
	}
	put := func(key string, body []byte) {
		t.Helper()
		if _, err := be.PutObject("b", key, map[string]string{"X-Amz-Meta-K": key}, bytes.NewReader(body), int64(len(body)), nil); err != nil {
			t.Fatal(err)
		}
	}

	want := random(300 << 10)
	wantHash := md5.Sum(want)
	put("k", want)
	get, err := be.GetObject("b", "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	ranged, err := be.GetObject("b", "k", &gofakes3.ObjectRangeRequest{Start: 1000, End: 200_999})
	if err != nil {
		t.Fatal(err)
	}
	head, err := be.HeadObject("b", "k")
	if err != nil {
		t.Fatal(err)
	}
	if ranged.Range == nil || ranged.Range.Start != 1000 || ranged.Range.Length != 200_000 || ranged.Size != int64(len(want)) {
		t.Fatalf("ranged GET: range %+v size %d, want 1000+200000 of %d", ranged.Range, ranged.Size, len(want))
	}
	if get.Metadata["X-Amz-Meta-K"] != "k" || head.Size != int64(len(want)) {
		t.Fatalf("metadata %v, head size %d", get.Metadata, head.Size)
	}

	// Free the object's pages and write over them, then grow the file
	// (grow MiB) well past bolt's mmap (it doubles from 32 KiB).
	for i := range 4 {
		put("k", random(300<<10))
		put(fmt.Sprint("other-", i), random(300<<10))
	}
	if _, err := be.DeleteObject("b", "k"); err != nil {
		t.Fatal(err)
	}
	for i := range grow {
		put(fmt.Sprint("grow-", i), random(1<<20))
	}

	// A fault reading unmapped memory is a panic here, not a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	read := func(what string, obj *gofakes3.Object) []byte {
		t.Helper()
		var body []byte
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%s: reading the body faulted (bolt's unmapped memory): %v", what, r)
				}
			}()
			body, err = io.ReadAll(obj.Contents)
		}()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return body
	}
	etag := func(what string, obj *gofakes3.Object) {
		t.Helper()
		var ok bool
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%s: reading the ETag faulted (bolt's unmapped memory): %v", what, r)
				}
			}()
			ok = bytes.Equal(obj.Hash, wantHash[:])
		}()
		if !ok {
			t.Errorf("%s: hash %x, want %x (the bytes of a later write)", what, obj.Hash, wantHash)
		}
	}
	etag("GET", get)
	etag("HEAD", head)
	if body := read("GET", get); !bytes.Equal(body, want) {
		t.Errorf("GET: the body changed after its read (%d bytes, md5 %x; want %d, md5 %x)", len(body), md5.Sum(body), len(want), wantHash)
	}
	if body := read("ranged GET", ranged); !bytes.Equal(body, want[1000:201_000]) {
		t.Errorf("ranged GET: the body changed after its read")
	}
	if body := read("HEAD", head); len(body) != 0 {
		t.Errorf("HEAD: body of %d bytes, want none", len(body))
	}
}

// TestBoltBackendMatchesS3bolt checks that the copying reads return what
// s3bolt's own do (fields, ranges, errors), read at once so s3bolt's
// aliased memory is still valid, and that a copy keeps the body, the ETag
// and the metadata.
func TestBoltBackendMatchesS3bolt(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "s3.bolt"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	be, orig := newBoltBackend(db), s3bolt.New(db)
	if err := be.CreateBucket("b"); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("0123456789"), 1000)
	if _, err := be.PutObject("b", "k", map[string]string{"X-Amz-Meta-A": "1", "Content-Type": "text/plain"}, bytes.NewReader(body), int64(len(body)), nil); err != nil {
		t.Fatal(err)
	}
	type view struct {
		Name     string
		Metadata map[string]string
		Size     int64
		Range    *gofakes3.ObjectRange
		Hash     []byte
		Body     []byte
		Err      string
	}
	see := func(obj *gofakes3.Object, err error) view {
		if err != nil {
			return view{Err: err.Error()}
		}
		b, err := io.ReadAll(obj.Contents)
		if err != nil {
			t.Fatal(err)
		}
		return view{obj.Name, obj.Metadata, obj.Size, obj.Range, bytes.Clone(obj.Hash), b, ""}
	}
	ranges := []*gofakes3.ObjectRangeRequest{nil, {Start: 10, End: 19}, {Start: 9990, End: -1}, {FromEnd: true, End: 5}, {Start: 20000, End: 20001}}
	for _, key := range []string{"k", "missing"} {
		for _, r := range ranges {
			got, want := see(be.GetObject("b", key, r)), see(orig.GetObject("b", key, r))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("GET %s range %+v:\n got %+v\nwant %+v", key, r, got, want)
			}
		}
		if got, want := see(be.HeadObject("b", key)), see(orig.HeadObject("b", key)); !reflect.DeepEqual(got, want) {
			t.Errorf("HEAD %s:\n got %+v\nwant %+v", key, got, want)
		}
	}
	if got, want := see(be.GetObject("nobucket", "k", nil)), see(orig.GetObject("nobucket", "k", nil)); !reflect.DeepEqual(got, want) {
		t.Errorf("GET from a missing bucket: got %+v, want %+v", got, want)
	}

	res, err := be.CopyObject("b", "k", "b", "copy", map[string]string{"X-Amz-Meta-B": "2"})
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(body)
	if res.ETag != gofakes3.FormatETag(sum[:]) {
		t.Errorf("copy ETag %s, want %s", res.ETag, gofakes3.FormatETag(sum[:]))
	}
	got := see(be.GetObject("b", "copy", nil))
	if !bytes.Equal(got.Body, body) || !bytes.Equal(got.Hash, sum[:]) || got.Metadata["X-Amz-Meta-B"] != "2" {
		t.Errorf("copy: %d bytes, hash %x, metadata %v", len(got.Body), got.Hash, got.Metadata)
	}
}
