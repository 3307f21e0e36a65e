package devstack

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	bolt "go.etcd.io/bbolt"
	"gopkg.in/mgo.v2/bson"
)

// boltBackend is gofakes3's s3bolt backend with object reads that copy
// out of bolt's memory map before the read transaction ends.
//
// s3bolt (v1.2.0) decodes an object with bson.Unmarshal straight from the
// slice bolt's Get returns, and mgo's bson hands back []byte fields
// (Contents, Hash) as sub-slices of its input, so the object's body and
// ETag point into the mmap'd file. gofakes3 streams them to the client
// after the transaction has closed. A concurrent write that grows the file
// remaps it (the old region is unmapped: the server dies with "fatal
// error: fault"), and one that reuses the freed pages of an overwritten or
// deleted object rewrites them (the client silently gets other bytes).
// Copying the value inside the transaction gives each object its own
// memory; the fields, the range handling and the errors are s3bolt's.
//
// The other s3bolt reads keep nothing past their transaction: ListBucket
// formats the ETag and copies the key inside it, bucket metadata holds a
// time, and bson copies every string (names, metadata). CopyObject is
// overridden because s3bolt's reads its source through s3bolt's own
// GetObject; multipart uploads live in gofakes3's memory and end in
// PutObject.
type boltBackend struct {
	*s3bolt.Backend
	db *bolt.DB
}

var _ gofakes3.Backend = (*boltBackend)(nil)

func newBoltBackend(db *bolt.DB) *boltBackend {
	return &boltBackend{Backend: s3bolt.New(db), db: db}
}

// boltObject is s3bolt's stored object (s3bolt/schema.go): the same field
// names, so the same bson keys.
type boltObject struct {
	Name         string
	Metadata     map[string]string
	LastModified time.Time
	Size         int64
	Contents     []byte
	Hash         []byte
}

// GetObject is s3bolt's GetObject on a copy of the stored value.
func (b *boltBackend) GetObject(bucketName, objectName string, rangeRequest *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	var t boltObject
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(bucketName))
		if bk == nil {
			return gofakes3.BucketNotFound(bucketName)
		}
		v := bk.Get([]byte(objectName))
		if v == nil {
			return gofakes3.KeyNotFound(objectName)
		}
		// The clone is the point: v is bolt's mmap, valid only until
		// this function returns, and bson would alias it.
		if err := bson.Unmarshal(bytes.Clone(v), &t); err != nil {
			return fmt.Errorf("gofakes3: could not unmarshal object at %q/%q: %v", bucketName, objectName, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	data := t.Contents
	rnge, err := rangeRequest.Range(t.Size)
	if err != nil {
		return nil, err
	}
	if rnge != nil {
		data = data[rnge.Start : rnge.Start+rnge.Length]
	}
	return &gofakes3.Object{
		Name:     objectName,
		Metadata: t.Metadata,
		Size:     t.Size,
		Contents: io.NopCloser(bytes.NewReader(data)),
		Range:    rnge,
		Hash:     t.Hash,
	}, nil
}

// HeadObject is s3bolt's: GetObject without the body (s3bolt's would call
// its own GetObject, whose Hash aliases the mmap).
func (b *boltBackend) HeadObject(bucketName, objectName string) (*gofakes3.Object, error) {
	obj, err := b.GetObject(bucketName, objectName, nil)
	if err != nil {
		return nil, err
	}
	obj.Contents = io.NopCloser(bytes.NewReader(nil))
	return obj, nil
}

// CopyObject is s3bolt's (gofakes3.CopyObject) reading the source through
// this backend's GetObject.
func (b *boltBackend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	return gofakes3.CopyObject(b, srcBucket, srcKey, dstBucket, dstKey, meta)
}
