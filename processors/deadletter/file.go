package deadletter

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/leasehold/leasehold/processors"
)

// FileOptions configure a File.
type FileOptions struct {
	// Path of the file; required. It is created (0600: dead letters hold
	// raw records) when missing; its directory must exist. An existing
	// file readable by others is made 0600 at the next write.
	Path string `yaml:"path"`
}

// ErrConfig is wrapped by every options error of this package.
var ErrConfig = errors.New("deadletter: invalid options")

// Validate reports a missing path or a directory that does not exist.
// Errors wrap ErrConfig.
func (o FileOptions) Validate() error {
	if o.Path == "" {
		return fmt.Errorf("%w: path is required", ErrConfig)
	}
	if st, err := os.Stat(filepath.Dir(o.Path)); err != nil || !st.IsDir() {
		return fmt.Errorf("%w: path %q: directory %s does not exist", ErrConfig, o.Path, filepath.Dir(o.Path))
	}
	return nil
}

// File appends dead letters to a local file. Safe for concurrent use.
type File struct {
	path string
	now  func() time.Time

	mu sync.Mutex // serialises appends, so lines never interleave
}

// NewFile returns a File writing to opts.Path. It does not open the file:
// each DeadLetter call opens, appends, fsyncs and closes it, so there is
// nothing to close. Errors wrap ErrConfig.
func NewFile(opts FileOptions) (*File, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &File{path: opts.Path, now: time.Now}, nil
}

// FileFromConfig is the processors.DeadLetterCtor for type "file".
func FileFromConfig(_ context.Context, o processors.Options, _ processors.Deps) (processors.DeadLetterer, error) {
	var opts FileOptions
	if err := o.Decode(&opts); err != nil {
		return nil, err
	}
	return NewFile(opts)
}

// DeadLetter appends one line per message and fsyncs the file (and, when
// it created the file, its directory) before it returns. It blocks on the
// disk and on other callers; errors are the file system's, and nothing is
// retried: a disk that fails an fsync cannot be trusted with a retry.
func (f *File) DeadLetter(_ context.Context, msgs []*processors.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	buf, err := appendLines(nil, msgs, f.now())
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, statErr := os.Stat(f.path)
	created := errors.Is(statErr, fs.ErrNotExist)
	fh, err := os.OpenFile(f.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("deadletter: %w", err)
	}
	if st, err := fh.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		if err := fh.Chmod(st.Mode().Perm() & 0o700); err != nil {
			fh.Close()
			return fmt.Errorf("deadletter: make %s private: %w", f.path, err)
		}
	}
	if _, err := fh.Write(buf); err != nil {
		fh.Close()
		return fmt.Errorf("deadletter: append %s: %w", f.path, err)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return fmt.Errorf("deadletter: fsync %s: %w", f.path, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("deadletter: close %s: %w", f.path, err)
	}
	if created {
		// The new directory entry must survive a crash too.
		if d, err := os.Open(filepath.Dir(f.path)); err == nil {
			err = d.Sync()
			d.Close()
			if err != nil {
				return fmt.Errorf("deadletter: fsync directory of %s: %w", f.path, err)
			}
		}
	}
	return nil
}
