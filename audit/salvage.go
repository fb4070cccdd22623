package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/batchrepr"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
)

// salvage reads the records left in a closed segment that is no longer a
// whole database because files of it are missing. Versions before merged/
// removed a segment in place once its records were synced into main, and
// a kill midway (a run piped to head, dead of SIGPIPE) left it so: no
// longer one Pebble opens, so every later merge failed on it. Its records
// are in main already; salvage reads what is left of them all the same,
// from its write-ahead logs (as Pebble replays them: up to a tail cut
// short) and its table files, into b, for the caller to merge again
// (merging is idempotent) before it retires the segment: a record is never
// dropped unread. A file that is there but does not read is damage, and
// the segment stays.
func salvage(path string, b *pebble.Batch) error {
	logs, err := wal.Scan(wal.Dir{FS: vfs.Default, Dirname: path})
	if err != nil {
		return fmt.Errorf("audit: salvaging segment %s: %w", path, err)
	}
	for _, l := range logs {
		if err := salvageLog(l, b); err != nil {
			name := path
			if l.NumSegments() > 0 {
				_, name = l.SegmentLocation(0)
			}
			return &DamageError{File: name, Err: err}
		}
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("audit: salvaging segment %s: %w", path, err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sst") {
			continue
		}
		if err := salvageTable(filepath.Join(path, e.Name()), b); err != nil {
			return &DamageError{File: filepath.Join(path, e.Name()), Err: err}
		}
	}
	return nil
}

// salvageLog adds the records of a write-ahead log to b, up to its end
// or to a tail cut short, as Pebble's recovery reads it.
func salvageLog(l wal.LogicalLog, b *pebble.Batch) error {
	r := l.OpenForRead()
	defer r.Close()
	for {
		rr, _, err := r.NextRecord()
		var data []byte
		if err == nil {
			data, err = io.ReadAll(rr)
		}
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, record.ErrUnexpectedEOF):
			return nil
		case err != nil:
			return err
		case len(data) < batchrepr.HeaderLen:
			return errors.New("a batch shorter than its header")
		}
		br := batchrepr.Read(data)
		for {
			kind, k, v, ok, err := br.Next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if kind == pebble.InternalKeyKindSet { // records are only ever set
				b.Set(k, v, nil)
			}
		}
	}
}

// salvageTable adds the records of a table file to b.
func salvageTable(path string, b *pebble.Batch) error {
	f, err := vfs.Default.Open(path)
	if err != nil {
		return err
	}
	o := &pebble.Options{}
	o.EnsureDefaults()
	it, err := pebble.NewExternalIter(o, nil, [][]sstable.ReadableFile{{f}})
	if err != nil {
		f.Close()
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			break // it.Error() says it
		}
		b.Set(it.Key(), v, nil)
	}
	return errors.Join(it.Error(), it.Close())
}
