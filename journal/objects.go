package journal

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// MaxObject is the largest content Put stores: 256 MiB. Content is held
// in memory while it is hashed, compressed and written.
const MaxObject = 256 << 20

// ErrTooLarge is returned by Put for content over MaxObject.
var ErrTooLarge = errors.New("journal: content larger than 256 MiB")

// The first byte of an object.
const (
	objRaw  = 0
	objZstd = 1
)

var (
	encoder = sync.OnceValue(func() *zstd.Encoder {
		// EncodeAll alone is used, which is safe for concurrent use; one
		// goroutine of its own per call keeps its memory small.
		e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(err)
		}
		return e
	})
	decoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxObject+1))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// Sum is the name Put gives content: its SHA-256, 64 lowercase hex digits.
func Sum(content []byte) string {
	s := sha256.Sum256(content)
	return hex.EncodeToString(s[:])
}

func validSum(sum string) bool {
	if len(sum) != 64 {
		return false
	}
	for i := 0; i < len(sum); i++ {
		if c := sum[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (j *Journal) objectPath(sum string) string {
	return filepath.Join(j.dir, "objects", sum[:2], sum[2:])
}

// Put stores content and returns its sum. Content already stored is not
// written again. When Put returns, the object is on disk for good (see the
// package doc): an intent may name it.
func (j *Journal) Put(content []byte) (string, error) {
	if len(content) > MaxObject {
		return "", ErrTooLarge
	}
	return j.put(Sum(content), content, nil)
}

// put is Put of content whose sum the caller computed, and its encoded
// form when it has it (else nil).
func (j *Journal) put(sum string, content, body []byte) (string, error) {
	p := j.objectPath(sum)
	if _, err := os.Stat(p); err == nil {
		// Touched so that a Prune running now, which is to spare recent
		// objects, leaves it for the intent about to name it.
		now := time.Now()
		os.Chtimes(p, now, now)
		return sum, nil
	}
	if body == nil {
		body = encodeObject(content)
	}
	if err := writeObject(p, body, true); err != nil {
		return "", fmt.Errorf("journal: storing %s: %w", sum, err)
	}
	return sum, nil
}

// encodeObject is content as an object holds it: compressed with zstd
// when that saves at least an eighth, else as it is, after the byte that
// says which.
func encodeObject(content []byte) []byte {
	body := make([]byte, 1, 1+len(content))
	body[0] = objRaw
	if len(content) >= 64 {
		body[0] = objZstd
		body = encoder().EncodeAll(content, body)
		if len(body)-1 > len(content)-len(content)/8 {
			body = append(body[:1], content...)
			body[0] = objRaw
		}
	} else {
		body = append(body, content...)
	}
	return body
}

// decodeObject is the content of an object's body.
func decodeObject(b []byte) ([]byte, error) {
	switch {
	case len(b) == 0:
		return nil, errors.New("empty file")
	case b[0] == objRaw:
		return b[1:], nil
	case b[0] == objZstd:
		return decoder().DecodeAll(b[1:], nil)
	}
	return nil, fmt.Errorf("unknown encoding %d", b[0])
}

// writeObject writes body to the object file p: to a temporary file in
// objects/, renamed into place. With durable, the file is fsynced before
// the rename, and the directories it is named in after it, so that an
// intent may name it.
func writeObject(p string, body []byte, durable bool) error {
	sub := filepath.Dir(p)
	if err := os.Mkdir(sub, 0o700); err == nil && durable {
		// The new directory's entry must be durable too.
		if err := syncDir(filepath.Dir(sub)); err != nil {
			return err
		}
	} else if err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(sub), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(body)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if durable {
		return syncDir(sub)
	}
	return nil
}

// stored says whether the object sum is there and not empty (a crash can
// leave an object written lazily empty).
func (j *Journal) stored(sum string) bool {
	fi, err := os.Stat(j.objectPath(sum))
	return err == nil && fi.Size() > 0
}

// emptySum is the sum of no content, which every store holds.
var emptySum = Sum(nil)

// putLazy writes body (encodeObject's) as the object sum without fsync:
// the log holds its content durably, inline, and the object is only a
// faster way to it. A failure is no error (Get then reads the log).
func (j *Journal) putLazy(sum string, body []byte) {
	p := j.objectPath(sum)
	if _, err := os.Stat(p); err == nil {
		return
	}
	writeObject(p, body, false)
}

// Content returns a file state's content: its Data, or what the store
// holds under its Sum.
func (j *Journal) Content(s State) ([]byte, error) {
	if s.Data != nil {
		return s.Data, nil
	}
	return j.Get(s.Sum)
}

// Get returns the content stored under sum: as an object, or inline in
// the log when its object is missing (written lazily and lost to a
// crash). Content found nowhere wraps fs.ErrNotExist; an object whose
// content does not hash to its name, or does not decode, wraps
// ErrDamaged.
func (j *Journal) Get(sum string) ([]byte, error) {
	if !validSum(sum) {
		return nil, fmt.Errorf("journal: %q is not a content sum (64 lowercase hex digits)", sum)
	}
	if sum == emptySum {
		return []byte{}, nil
	}
	p := j.objectPath(sum)
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("journal: object %s: %w", sum, err)
	}
	var content []byte
	if err == nil {
		content, err = decodeObject(b)
		if err == nil && Sum(content) != sum {
			err = errors.New("its content does not hash to its name")
		}
		if err == nil {
			return content, nil
		}
	}
	// Missing, or damaged: an object written lazily is not fsynced, and a
	// crash can lose it or leave it empty; the log holds its content.
	if content, ok := j.inlined(sum); ok {
		return content, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("journal: object %s: %w", sum, err)
	}
	return nil, fmt.Errorf("%w: object %s (%s): the content it held is lost; remove the file, and the changes that name it cannot be undone", ErrDamaged, p, err)
}

// inlined looks for content the log holds inline under sum, reading the
// whole log.
func (j *Journal) inlined(sum string) (content []byte, ok bool) {
	j.scan(func(r *record) {
		for _, c := range r.Changes {
			for _, st := range []State{c.Before, c.After} {
				if !ok && st.Sum == sum && st.Data != nil && Sum(st.Data) == sum {
					content, ok = st.Data, true
				}
			}
		}
	})
	return content, ok
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("journal: syncing %s: %w", dir, err)
	}
	return nil
}
