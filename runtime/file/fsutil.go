package file

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// retries bounds the retry loop for transient (Windows sharing) errors: about
// 0.5 s in total with the growing sleeps below.
const retries = 30

// retry runs op until it succeeds, fails with a non-transient error, or the
// retry budget is spent.
func retry(op func() error) error {
	var err error
	for i := 0; i < retries; i++ {
		if err = op(); err == nil || !transient(err) {
			return err
		}
		time.Sleep(time.Duration(i+1) * time.Millisecond / 2)
	}
	return err
}

// rename moves oldpath to newpath atomically, replacing newpath if it exists.
// Both are on the same volume (inside the backend folder), so the rename is
// atomic on Unix and on NTFS.
func rename(oldpath, newpath string) error {
	return retry(func() error { return os.Rename(oldpath, newpath) })
}

// remove deletes path; a missing file is not an error.
func remove(path string) error {
	err := retry(func() error { return os.Remove(path) })
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// readFile reads path whole, retrying transient sharing errors. The file is
// closed before it returns.
func readFile(path string) ([]byte, error) {
	var data []byte
	err := retry(func() error {
		var err error
		data, err = os.ReadFile(path)
		return err
	})
	return data, err
}

// writeAtomic replaces path with data: it writes a temporary file in tmp/
// (inside the backend folder, so the rename stays on one volume), optionally
// fsyncs it, closes it (Windows refuses to rename an open file) and renames it
// over path. Readers see the old content or the new, never a torn file. The
// temp file's name starts with this Backend's owner name, whose lock tells a
// sweep whether the writer may still be alive.
func (b *Backend) writeAtomic(path string, data []byte) error {
	f, err := b.tempFile()
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil && b.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// tempFile creates a temp file in tmp/ named <owner>-<random>.
func (b *Backend) tempFile() (*os.File, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	f, err := os.CreateTemp(b.path(tmpDir), b.owner+"-*")
	if err != nil {
		return nil, fmt.Errorf("create temp file: %w", err)
	}
	return f, nil
}

// readNames lists the entries of dir that are not hidden (temp files start
// with a dot). A missing folder has no entries. The order is the file
// system's; callers sort.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open folder %s: %w", dir, err)
	}
	names, err := f.Readdirnames(-1)
	_ = f.Close()
	if err != nil {
		return nil, fmt.Errorf("read folder %s: %w", dir, err)
	}
	out := names[:0]
	for _, n := range names {
		if n != "" && n[0] != '.' {
			out = append(out, n)
		}
	}
	return out, nil
}
