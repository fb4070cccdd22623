package audit

import (
	"fmt"
	"math"
	"path"
	"slices"
	"sort"
	"time"
)

// Filter selects records. Zero fields select everything.
type Filter struct {
	Since, Until time.Time // [Since, Until)
	Op           string
	Outcome      string
	Path         string // a glob matched against the target as written and the path resolved (path.Match; "**" is not special)
	HostTools    bool   // only operations that changed a file of security.host_tool_files
	Session      string
	Repo         string
	Limit        int // 0: no limit
	Reverse      bool
}

// Match reports whether r passes every field of f but the time range and
// the limit, which the scan applies.
func (f *Filter) Match(r *Record) bool {
	if f.Op != "" && r.Op != f.Op || f.Outcome != "" && r.Outcome != f.Outcome ||
		f.Session != "" && r.Session != f.Session || f.Repo != "" && r.Repo != f.Repo || f.HostTools && r.HostTools == "" {
		return false
	}
	if f.Path != "" {
		ok, _ := path.Match(f.Path, r.Target)
		if !ok && r.Resolved != "" {
			ok, _ = path.Match(f.Path, r.Resolved)
		}
		if !ok {
			return false
		}
	}
	return true
}

// ValidatePath checks a Path glob.
func ValidatePath(glob string) error {
	_, err := path.Match(glob, "")
	return err
}

// Each calls fn for every record f selects, in time order (or reverse),
// up to f.Limit. A record that does not decode is an error.
func (r *Reader) Each(f Filter, fn func(*Record) error) error {
	n := 0
	var ferr error
	err := r.Scan(f.Since, f.Until, f.Reverse, func(key []byte, rec *Record, err error) bool {
		if err != nil {
			ferr = fmt.Errorf("record %x: %w", key, err)
			return false
		}
		if !f.Match(rec) {
			return true
		}
		if ferr = fn(rec); ferr != nil {
			return false
		}
		n++
		return f.Limit <= 0 || n < f.Limit
	})
	if err != nil {
		return err
	}
	return ferr
}

// Summary is the latency distribution of a set of durations.
type Summary struct {
	Count              int
	P50, P95, P99, Max time.Duration
}

func summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	slices.Sort(d)
	pick := func(q float64) time.Duration {
		// The nearest-rank percentile: the smallest value with at least
		// q of the values at or below it.
		i := int(math.Ceil(q*float64(len(d)))) - 1
		return d[max(0, min(i, len(d)-1))]
	}
	return Summary{Count: len(d), P50: pick(0.50), P95: pick(0.95), P99: pick(0.99), Max: d[len(d)-1]}
}

// Group is the statistics of one group of records.
type Group struct {
	Key       string
	Count     int
	Denied    int // outcome denied: refused by a rule or a policy
	Errors    int // outcome error
	Latency   Summary
	Wait      Summary
	Policy    Summary
	Sandbox   Summary
	Transform Summary
}

// ErrorRate is Errors / Count: denials are not errors.
func (g Group) ErrorRate() float64 {
	if g.Count == 0 {
		return 0
	}
	return float64(g.Errors) / float64(g.Count)
}

// Stats groups the selected records by "op", "outcome" or "session", with
// a last group "all" over everything, and summarises each group's latency
// and phases.
func (r *Reader) Stats(f Filter, by string) ([]Group, error) {
	key := map[string]func(*Record) string{
		"op":      func(r *Record) string { return r.Op },
		"outcome": func(r *Record) string { return r.Outcome },
		"session": func(r *Record) string { return r.Session },
	}[by]
	if key == nil {
		return nil, fmt.Errorf("audit: cannot group by %q; want op, outcome or session", by)
	}
	type acc struct {
		count, denied, errors                 int
		lat, wait, policy, sandbox, transform []time.Duration
	}
	groups := map[string]*acc{}
	all := &acc{}
	add := func(a *acc, rec *Record) {
		a.count++
		switch rec.Outcome {
		case Denied:
			a.denied++
		case Error:
			a.errors++
		}
		a.lat = append(a.lat, rec.Latency)
		a.wait = append(a.wait, rec.Wait)
		a.policy = append(a.policy, rec.Policy)
		a.sandbox = append(a.sandbox, rec.Sandbox)
		a.transform = append(a.transform, rec.Transform)
	}
	err := r.Each(f, func(rec *Record) error {
		k := key(rec)
		a := groups[k]
		if a == nil {
			a = &acc{}
			groups[k] = a
		}
		add(a, rec)
		add(all, rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Group
	for _, k := range append(keys, "") {
		a, name := groups[k], k
		if k == "" {
			a, name = all, "all"
		}
		if a == nil || a.count == 0 {
			continue
		}
		out = append(out, Group{Key: name, Count: a.count, Denied: a.denied, Errors: a.errors, Latency: summarize(a.lat),
			Wait: summarize(a.wait), Policy: summarize(a.policy), Sandbox: summarize(a.sandbox), Transform: summarize(a.transform)})
	}
	return out, nil
}
