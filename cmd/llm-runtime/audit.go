package main

import (
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llm-runtime/llm-runtime/audit"
	"github.com/llm-runtime/llm-runtime/config"
)

// exitTampered is the exit code of `audit verify` when a chain is broken.
const exitTampered = 4

// auditDir returns the store's directory: --audit-dir, else audit.dir,
// else the user's state directory. It refuses a directory inside root,
// where the sandbox could write.
func auditDir(flag string, cfg *config.Config, root string) (string, error) {
	dir := flag
	if dir == "" && cfg != nil {
		dir = cfg.Audit.Dir
	}
	if dir == "" {
		d, err := audit.DefaultDir()
		if err != nil {
			return "", fail(exitConfig, "%v; set audit.dir or --audit-dir", err)
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fail(exitConfig, "audit.dir %s: %v", dir, err)
	}
	if root != "" {
		// Compared as real paths, so no link or spelling puts it inside.
		if _, inside := within(root, abs); inside {
			return "", fail(exitConfig, "audit.dir %s is inside the repository %s, where the sandbox can reach it; choose a directory outside it", abs, root)
		}
	}
	return abs, nil
}

// openAudit opens the writer of this run's session, or returns nil when
// auditing is off.
func openAudit(r *cli, cfg *config.Config, root string) (*audit.Writer, string, error) {
	if !cfg.Audit.Enabled {
		return nil, "", nil
	}
	dir, err := auditDir(r.AuditDir, cfg, root)
	if err != nil {
		return nil, "", err
	}
	w, err := audit.OpenWriter(dir, audit.NewSession(), audit.Options{Verbose: r.Verbose})
	if err != nil {
		return nil, "", fail(exitUsage, "%v", err)
	}
	return w, dir, nil
}

type auditCmd struct {
	List   auditListCmd   `cmd:"" help:"List operations, oldest first; --limit N keeps the newest N."`
	Stats  auditStatsCmd  `cmd:"" help:"Count, denials, errors, error rate and latency percentiles per operation and per phase."`
	Verify auditVerifyCmd `cmd:"" help:"Check every session's hash chain; exit 4 at the first break."`
	Export auditExportCmd `cmd:"" help:"Every matching record, in full, as JSON Lines."`
}

// auditFilter holds the filter flags shared by the audit commands.
type auditFilter struct {
	Since   string `placeholder:"WHEN" help:"Only records at or after WHEN: a duration back from now (90m, 24h) or an RFC 3339 time."`
	Until   string `placeholder:"WHEN" help:"Only records before WHEN (same forms as --since)."`
	Op      string `enum:",open,write,search,exec" default:"" help:"Only this operation: open, write, search or exec."`
	Outcome string `enum:",ok,denied,error" default:"" help:"Only this outcome: ok, denied or error."`
	Path    string `placeholder:"GLOB" help:"Only targets matching GLOB (path.Match: src/*.go, *.env)."`
	Session string `help:"Only this session (one run of llm-runtime)."`
	Repo    string `placeholder:"DIR" help:"Only this repository root."`
}

func (f auditFilter) filter(now time.Time) (audit.Filter, error) {
	var out audit.Filter
	var err error
	if out.Since, err = parseWhen(f.Since, now); err != nil {
		return out, fail(exitUsage, "--since: %v", err)
	}
	if out.Until, err = parseWhen(f.Until, now); err != nil {
		return out, fail(exitUsage, "--until: %v", err)
	}
	if f.Path != "" {
		if err := audit.ValidatePath(f.Path); err != nil {
			return out, fail(exitUsage, "--path %q: %v", f.Path, err)
		}
	}
	if f.Repo != "" {
		if abs, err := filepath.Abs(f.Repo); err == nil {
			f.Repo = abs
		}
	}
	out.Op, out.Outcome, out.Path, out.Session, out.Repo = f.Op, f.Outcome, f.Path, f.Session, f.Repo
	return out, nil
}

// open reads the filter flags and opens the store.
func (f auditFilter) open(c *cli, e env) (audit.Filter, *audit.Reader, error) {
	flt, err := f.filter(time.Now())
	if err != nil {
		return flt, nil, err
	}
	r, err := openReader(c, e)
	return flt, r, err
}

// parseWhen reads "90m" (ago) or an RFC 3339 time; "" is no bound.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (90m, 24h) nor an RFC 3339 time (2026-11-27T14:00:00Z)", s)
}

// openReader opens the store that --audit-dir, or audit.dir of the
// configuration in force, names.
func openReader(c *cli, e env) (*audit.Reader, error) {
	_, _, cfg, err := c.load(e, nil)
	if err != nil {
		return nil, err
	}
	dir, err := auditDir(c.AuditDir, cfg, "")
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fail(exitUsage, "no audit log at %s (nothing recorded yet, or another --audit-dir)", dir)
	}
	r, err := audit.OpenReader(dir, audit.Options{Verbose: c.Verbose})
	if err != nil {
		return nil, fail(exitUsage, "%v", err)
	}
	return r, nil
}

type auditListCmd struct {
	auditFilter
	Limit   int    `help:"Show at most N records: the newest N, in time order (or newest first with --reverse)."`
	Reverse bool   `help:"Newest first."`
	Format  string `enum:"table,json,csv" default:"table" help:"table (aligned), json (JSON Lines) or csv."`
}

func (l auditListCmd) Run(e env, c *cli) error {
	f, r, err := l.open(c, e)
	if err != nil {
		return err
	}
	defer r.Close()
	// --limit without --reverse is `tail`: scan newest first, print oldest first.
	f.Limit = l.Limit
	f.Reverse = l.Reverse || l.Limit > 0
	var recs []*audit.Record
	if err := r.Each(f, func(rec *audit.Record) error { recs = append(recs, rec); return nil }); err != nil {
		return fail(exitUsage, "%v", err)
	}
	if f.Reverse && !l.Reverse {
		for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
			recs[i], recs[j] = recs[j], recs[i]
		}
	}
	return printRecords(e.stdout, l.Format, recs)
}

type auditExportCmd struct {
	auditFilter
}

func (x auditExportCmd) Run(e env, c *cli) error {
	f, r, err := x.open(c, e)
	if err != nil {
		return err
	}
	defer r.Close()
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	if err := r.Each(f, func(rec *audit.Record) error { return enc.Encode(jsonRecord(rec)) }); err != nil {
		return fail(exitUsage, "%v", err)
	}
	return nil
}

type auditStatsCmd struct {
	auditFilter
	By     string `enum:"op,outcome,session" default:"op" help:"Group by op, outcome or session."`
	Format string `enum:"table,json" default:"table" help:"table or json."`
}

func (s auditStatsCmd) Run(e env, c *cli) error {
	f, r, err := s.open(c, e)
	if err != nil {
		return err
	}
	defer r.Close()
	groups, err := r.Stats(f, s.By)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if s.Format == "json" {
		enc := json.NewEncoder(e.stdout)
		for _, g := range groups {
			enc.Encode(groupJSON{Group: g.Key, Count: g.Count, Denied: g.Denied, Errors: g.Errors, ErrorRate: g.ErrorRate(),
				Latency: jsonSummary(g.Latency), Wait: jsonSummary(g.Wait), Policy: jsonSummary(g.Policy),
				Sandbox: jsonSummary(g.Sandbox), Transform: jsonSummary(g.Transform)})
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tCOUNT\tDENIED\tERRORS\tERROR%%\tP50\tP95\tP99\tMAX\t\n", strings.ToUpper(s.By))
	for _, g := range groups {
		l := g.Latency
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f%%\t%s\t%s\t%s\t%s\t\n", g.Key, g.Count, g.Denied, g.Errors, 100*g.ErrorRate(), dur(l.P50), dur(l.P95), dur(l.P99), dur(l.Max))
	}
	tw.Flush()
	fmt.Fprintln(e.stdout)
	tw = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tPHASE\tP50\tP95\tP99\tMAX\t\n", strings.ToUpper(s.By))
	for _, g := range groups {
		for _, p := range []struct {
			name string
			s    audit.Summary
		}{{"wait", g.Wait}, {"policy", g.Policy}, {"sandbox", g.Sandbox}, {"transform", g.Transform}} {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", g.Key, p.name, dur(p.s.P50), dur(p.s.P95), dur(p.s.P99), dur(p.s.Max))
		}
	}
	return tw.Flush()
}

// groupJSON is one line of `audit stats --format json`.
type groupJSON struct {
	Group     string      `json:"group"`
	Count     int         `json:"count"`
	Denied    int         `json:"denied"`
	Errors    int         `json:"errors"`
	ErrorRate float64     `json:"error_rate"`
	Latency   summaryJSON `json:"latency"`
	Wait      summaryJSON `json:"wait"`
	Policy    summaryJSON `json:"policy"`
	Sandbox   summaryJSON `json:"sandbox"`
	Transform summaryJSON `json:"transform"`
}

type summaryJSON struct {
	P50 int64 `json:"p50_ns"`
	P95 int64 `json:"p95_ns"`
	P99 int64 `json:"p99_ns"`
	Max int64 `json:"max_ns"`
}

func jsonSummary(s audit.Summary) summaryJSON {
	return summaryJSON{P50: int64(s.P50), P95: int64(s.P95), P99: int64(s.P99), Max: int64(s.Max)}
}

type auditVerifyCmd struct{}

func (auditVerifyCmd) Run(e env, c *cli) error {
	r, err := openReader(c, e)
	if err != nil {
		return err
	}
	defer r.Close()
	n, brk, err := r.Verify()
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if brk != nil {
		return fail(exitTampered, "%d records checked; %v", n, brk)
	}
	fmt.Fprintf(e.stdout, "ok: %d records, every chain intact\n", n)
	return nil
}

// dur prints a latency compactly: 412µs, 3.2ms, 1.45s.
func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// recordJSON is a record as list --format json and export print it.
type recordJSON struct {
	Time        string `json:"time"`
	Session     string `json:"session"`
	Seq         uint64 `json:"seq"`
	Repo        string `json:"repo"`
	Op          string `json:"op"`
	Target      string `json:"target"`
	Outcome     string `json:"outcome"`
	Code        string `json:"code"`
	BytesIn     int64  `json:"bytes_in"`
	BytesOut    int64  `json:"bytes_out"`
	LatencyNS   int64  `json:"latency_ns"`
	WaitNS      int64  `json:"wait_ns"`
	PolicyNS    int64  `json:"policy_ns"`
	SandboxNS   int64  `json:"sandbox_ns"`
	TransformNS int64  `json:"transform_ns"`
	Container   string `json:"container"`
	Pooled      bool   `json:"pooled"`
	Decider     string `json:"decider"`
	Reason      string `json:"reason"`
	Hash        string `json:"hash"`
}

func jsonRecord(r *audit.Record) recordJSON {
	return recordJSON{
		Time: r.Time.Format(time.RFC3339Nano), Session: r.Session, Seq: r.Seq, Repo: r.Repo, Op: r.Op, Target: r.Target,
		Outcome: r.Outcome, Code: r.Code, BytesIn: r.BytesIn, BytesOut: r.BytesOut, LatencyNS: int64(r.Latency),
		WaitNS: int64(r.Wait), PolicyNS: int64(r.Policy), SandboxNS: int64(r.Sandbox), TransformNS: int64(r.Transform),
		Container: r.Container, Pooled: r.Pooled, Decider: r.Decider, Reason: r.Reason, Hash: hex.EncodeToString(r.Hash[:]),
	}
}

func printRecords(w io.Writer, format string, recs []*audit.Record) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, r := range recs {
			if err := enc.Encode(jsonRecord(r)); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"time", "session", "seq", "repo", "op", "target", "outcome", "code", "bytes_in", "bytes_out", "latency_ns", "wait_ns", "sandbox_ns", "container", "pooled"})
		for _, r := range recs {
			cw.Write([]string{r.Time.Format(time.RFC3339Nano), r.Session, strconv.FormatUint(r.Seq, 10), r.Repo, r.Op, r.Target, r.Outcome, r.Code,
				strconv.FormatInt(r.BytesIn, 10), strconv.FormatInt(r.BytesOut, 10), strconv.FormatInt(int64(r.Latency), 10),
				strconv.FormatInt(int64(r.Wait), 10), strconv.FormatInt(int64(r.Sandbox), 10), r.Container, strconv.FormatBool(r.Pooled)})
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSESSION\tOP\tOUTCOME\tCODE\tLATENCY\tWAIT\tTARGET")
	for _, r := range recs {
		target := r.Target
		if len(target) > 60 {
			target = target[:57] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.Local().Format("2006-01-02 15:04:05.000"), r.Session, r.Op, r.Outcome,
			orDash(r.Code), dur(r.Latency), dur(r.Wait), strings.ReplaceAll(target, "\t", " "))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
