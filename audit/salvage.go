package audit

import (
	"bytes"
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
// short) and its table files, for the caller to merge again (merging is
// idempotent) before it retires the segment: a record is never dropped
// unread. A file that is there but does not read is damage, and the
// segment stays.
func salvage(path string) ([]kv, error) {
	var recs []kv
	logs, err := wal.Scan(wal.Dir{FS: vfs.Default, Dirname: path})
	if err != nil {
		return nil, fmt.Errorf("audit: salvaging segment %s: %w", path, err)
	}
	for _, l := range logs {
		got, err := salvageLog(l)
		if err != nil {
			name := path
			if l.NumSegments() > 0 {
				_, name = l.SegmentLocation(0)
			}
			return nil, &DamageError{File: name, Err: err}
		}
		recs = append(recs, got...)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("audit: salvaging segment %s: %w", path, err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sst") {
			continue
		}
		got, err := salvageTable(filepath.Join(path, e.Name()))
		if err != nil {
			return nil, &DamageError{File: filepath.Join(path, e.Name()), Err: err}
		}
		recs = append(recs, got...)
	}
	return recs, nil
}

// salvageLog reads the records of a write-ahead log up to its end, or to
// a tail cut short, as Pebble's recovery does.
func salvageLog(l wal.LogicalLog) ([]kv, error) {
	r := l.OpenForRead()
	defer r.Close()
	var recs []kv
	for {
		rr, _, err := r.NextRecord()
		var data []byte
		if err == nil {
			data, err = io.ReadAll(rr)
		}
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, record.ErrUnexpectedEOF):
			return recs, nil
		case err != nil:
			return nil, err
		case len(data) < batchrepr.HeaderLen:
			return nil, errors.New("a batch shorter than its header")
		}
		br := batchrepr.Read(data)
		for {
			kind, k, v, ok, err := br.Next()
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			if kind == pebble.InternalKeyKindSet {
				recs = append(recs, kv{bytes.Clone(k), bytes.Clone(v)})
			}
		}
	}
}

// salvageTable reads the records of a table file.
func salvageTable(path string) ([]kv, error) {
	f, err := vfs.Default.Open(path)
	if err != nil {
		return nil, err
	}
	o := &pebble.Options{}
	o.EnsureDefaults()
	it, err := pebble.NewExternalIter(o, nil, [][]sstable.ReadableFile{{f}})
	if err != nil {
		f.Close()
		return nil, err
	}
	var recs []kv
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			break
		}
		recs = append(recs, kv{bytes.Clone(it.Key()), bytes.Clone(v)})
	}
	return recs, errors.Join(it.Error(), it.Close())
}
