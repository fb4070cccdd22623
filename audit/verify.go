package audit

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/llm-runtime/llm-runtime/parser"
)

// Break is a place where the store does not hold what it should: a break
// in a session's chain, or, with a checkpoint, a record the checkpoint
// covers that is not there as it was.
type Break struct {
	Key     []byte // the record's key; for a record that is gone, the key it had
	Session string
	Seq     uint64
	Reason  string
	// Checkpoint is the checkpoint the record departs from; nil for a
	// break in the chain itself.
	Checkpoint *Checkpoint
}

// Error describes the break on one line, with the session's control
// characters escaped (a forged record can hold any bytes).
func (b *Break) Error() string {
	where := fmt.Sprintf("record %x (session %s, seq %d)", b.Key, parser.Printable(b.Session), b.Seq)
	if b.Checkpoint == nil {
		return "audit: chain broken at " + where + ": " + b.Reason
	}
	return "audit: " + where + ", covered by " + b.Checkpoint.name() + ": " + b.Reason
}

// Report is what Check found.
type Report struct {
	Records  int      // records read
	Sessions int      // sessions in the store
	Covered  uint64   // records the checkpoints cover, there or not
	Held     int      // sessions the checkpoints hold
	Gone     int      // of which not in the store
	Breaks   []*Break // every break found, by key: one per session at most, and each moved or undecodable record
}

// Verify walks every session's chain and returns the number of records
// checked and the first break, by key (by time), if any. It is Check
// without checkpoints.
func (r *Reader) Verify() (int, *Break, error) {
	rep, err := r.Check(nil)
	if err != nil {
		return 0, nil, err
	}
	if len(rep.Breaks) == 0 {
		return rep.Records, nil, nil
	}
	return rep.Records, rep.Breaks[0], nil
}

// Check walks every session's chain: sequence numbers run 1, 2, 3...
// without a gap, each record's previous hash is the hash of the record
// before it (a session's first, the hash of the session's id), each
// record's hash is its content's, and each record sits under the key its
// time, session and sequence number give. A chain alone cannot show a
// record rewritten with every hash after it recomputed (forged), nor a
// session's last records or a whole session deleted: the checkpoints can.
// For each session a checkpoint holds, Check reports it gone, short of the
// checkpoint's last record (deleted), or with that record's hash changed
// (a record up to it was rewritten). Records appended after a checkpoint
// are not departures from it. With several checkpoints of a session, a
// change is narrowed to the records between the last one that matches and
// the first that does not.
//
// A damaged file of the store is a *DamageError.
func (r *Reader) Check(cps []*Checkpoint) (*Report, error) {
	w, err := r.walk()
	if err != nil {
		return nil, err
	}
	rep := &Report{Records: w.records, Sessions: len(w.chains), Breaks: w.breaks}
	type anchor struct {
		Head
		cp *Checkpoint
	}
	anchors := map[string][]anchor{}
	for _, cp := range cps {
		for _, h := range cp.Heads {
			anchors[h.Session] = append(anchors[h.Session], anchor{h, cp})
		}
	}
	for session, as := range anchors {
		slices.SortStableFunc(as, func(a, b anchor) int { return cmp.Compare(a.LastSeq, b.LastSeq) })
		last := as[len(as)-1]
		rep.Covered += last.LastSeq
		rep.Held++
		c := w.chains[session]
		if c == nil {
			rep.Gone++
			rep.Breaks = append(rep.Breaks, &Break{Key: last.key(), Session: session, Seq: last.LastSeq, Checkpoint: last.cp,
				Reason: fmt.Sprintf("the session is gone: the checkpoint holds its %s, the last at %s (deleted)", records(last.LastSeq), stamp(last.Time))})
			continue
		}
		matched := uint64(0) // records 1..matched are as a checkpoint holds them
		for _, a := range as {
			if a.LastSeq > uint64(c.intact) {
				if c.intact == len(c.links) { // else the chain's own break tells
					end := uint64(c.intact)
					rep.Breaks = append(rep.Breaks, &Break{Key: a.key(), Session: session, Seq: a.LastSeq, Checkpoint: a.cp,
						Reason: fmt.Sprintf("the session ends at seq %d, the checkpoint holds %s: %s, the last at %s, %s gone (deleted)",
							end, records(a.LastSeq), seqs(end+1, a.LastSeq), stamp(a.Time), isAre(a.LastSeq-end))})
				}
				break
			}
			l := c.links[a.LastSeq-1]
			if l.hash == a.Hash {
				matched = a.LastSeq
				continue
			}
			what := fmt.Sprintf("%s was rewritten", seqs(matched+1, a.LastSeq))
			if matched+1 < a.LastSeq {
				what = fmt.Sprintf("a record of %s was rewritten", seqs(matched+1, a.LastSeq))
			}
			rep.Breaks = append(rep.Breaks, &Break{Key: l.key, Session: session, Seq: a.LastSeq, Checkpoint: a.cp,
				Reason: fmt.Sprintf("its hash is %s, the checkpoint's %s: %s and the chain rehashed from it (forged)", short(l.hash), short(a.Hash), what)})
			break
		}
	}
	slices.SortFunc(rep.Breaks, func(a, b *Break) int {
		return cmp.Or(bytes.Compare(a.Key, b.Key), cmp.Compare(a.Session, b.Session))
	})
	return rep, nil
}

// OK tells whether nothing was found.
func (r *Report) OK() bool { return len(r.Breaks) == 0 }

// link is what verification keeps of a record.
type link struct {
	key        []byte
	seq        uint64
	time       time.Time
	prev, hash [32]byte
	sealed     bool // its hash is its content's
}

// chain is a session's links in sequence order.
type chain struct {
	links  []link
	intact int // links[:intact] hold: seq 1..intact, each chained to the one before
}

type walk struct {
	records int
	chains  map[string]*chain
	breaks  []*Break
}

// walk reads every record and checks every chain.
func (r *Reader) walk() (*walk, error) {
	w := &walk{chains: map[string]*chain{}}
	err := r.Scan(time.Time{}, time.Time{}, false, func(key []byte, rec *Record, err error) bool {
		w.records++
		if err != nil {
			w.breaks = append(w.breaks, &Break{Key: key, Reason: "the record does not decode: " + err.Error()})
			return true
		}
		if !bytes.Equal(key, rec.Key()) {
			w.breaks = append(w.breaks, &Break{Key: key, Session: rec.Session, Seq: rec.Seq, Reason: "the record is not under the key its time and sequence give (moved)"})
		}
		c := w.chains[rec.Session]
		if c == nil {
			c = &chain{}
			w.chains[rec.Session] = c
		}
		c.links = append(c.links, link{key: key, seq: rec.Seq, time: rec.Time, prev: rec.Prev, hash: rec.Hash, sealed: rec.computeHash() == rec.Hash})
		return true
	})
	if err != nil {
		return nil, err
	}
	for session, c := range w.chains {
		slices.SortFunc(c.links, func(a, b link) int { return cmp.Or(cmp.Compare(a.seq, b.seq), bytes.Compare(a.key, b.key)) })
		prev := genesis(session)
		c.intact = len(c.links)
		for i, l := range c.links {
			var reason string
			switch {
			case l.seq != uint64(i+1):
				reason = fmt.Sprintf("sequence %d where %d was expected (a record is missing)", l.seq, i+1)
			case l.prev != prev:
				reason = "its previous hash is " + short(l.prev) + ", the previous record's is " + short(prev)
			case !l.sealed:
				reason = "its content does not match its hash (changed)"
			default:
				prev = l.hash
				continue
			}
			w.breaks = append(w.breaks, &Break{Key: l.key, Session: session, Seq: l.seq, Reason: reason})
			c.intact = i
			break // one break per session is enough
		}
	}
	return w, nil
}

func short(h [32]byte) string { return hex.EncodeToString(h[:6]) }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// records is "1 record", "3 records".
func records(n uint64) string {
	if n == 1 {
		return "1 record"
	}
	return fmt.Sprintf("%d records", n)
}

// seqs is "seq 4" or "seq 4-7".
func seqs(from, to uint64) string {
	if from == to {
		return fmt.Sprintf("seq %d", from)
	}
	return fmt.Sprintf("seq %d-%d", from, to)
}

func isAre(n uint64) string {
	if n == 1 {
		return "is"
	}
	return "are"
}
