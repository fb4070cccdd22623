package main

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/llm-runtime/llm-runtime/audit"
	"github.com/llm-runtime/llm-runtime/internal/filtercli"
	"github.com/llm-runtime/llm-runtime/parser"
)

// exitTampered is the exit code of `audit verify` (and `audit
// checkpoint`) when a chain is broken, a record departs from a
// checkpoint, or the store or a checkpoint is damaged.
const exitTampered = 4

type auditCmd struct {
	List       auditListCmd       `cmd:"" help:"List operations, oldest first; --limit N keeps the newest N."`
	Stats      auditStatsCmd      `cmd:"" help:"Count, denials, errors, error rate and latency percentiles per operation and per phase."`
	Verify     auditVerifyCmd     `cmd:"" help:"Check every session's hash chain, and with --checkpoint that nothing a checkpoint covers changed or went; list every problem and exit 4."`
	Checkpoint auditCheckpointCmd `cmd:"" help:"Print a digest of every session's head, or append it to --output FILE, to keep where nothing that can write the store can write: 'audit verify --checkpoint FILE' then shows what of it changed or went."`
	Export     auditExportCmd     `cmd:"" help:"Every matching record, in full, as JSON Lines."`
}

// auditFilter holds the filter flags shared by the audit commands.
type auditFilter struct {
	Since   string `placeholder:"WHEN" help:"Only records at or after WHEN: a duration back from now (90m, 24h) or an RFC 3339 time."`
	Until   string `placeholder:"WHEN" help:"Only records before WHEN (same forms as --since)."`
	Op      string `placeholder:"OP" help:"Only this operation: open, write, edit, delete, move, list, search, exec, diff or undo (the commands of the language, as recorded)."`
	Outcome string `enum:",ok,denied,error" default:"" help:"Only this outcome: ok, denied or error."`
	Path    string `placeholder:"GLOB" help:"Only targets matching GLOB (path.Match: src/*.go, *.env), as written or as resolved (links and .. followed)."`
	Session string `help:"Only this session (one run of llm-runtime)."`
	Repo    string `placeholder:"DIR" help:"Only this repository root."`
	// HostToolFiles: see security.host_tool_files.
	HostToolFiles bool `name:"host-tool-files" help:"Only operations that changed a file tools on the host run or obey (security.host_tool_files: editor tasks, CI workflows, hooks, .envrc, .gitattributes...), to review them."`
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
	if f.Op != "" && !slices.Contains(parser.Kinds(), parser.Kind(f.Op)) {
		return out, fail(exitUsage, "--op %q: want one of %s", f.Op, opNames())
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
	out.Op, out.Outcome, out.Path, out.Session, out.Repo, out.HostTools = f.Op, f.Outcome, f.Path, f.Session, f.Repo, f.HostToolFiles
	return out, nil
}

// opNames are the operations --op takes: "open, write, ... or exec".
func opNames() string {
	var names []string
	for _, k := range parser.Kinds() {
		names = append(names, string(k))
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
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
	dir, err := filtercli.AuditDir(c.AuditDir, cfg, "")
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fail(exitUsage, "no audit log at %s (nothing recorded yet, or another --audit-dir)", dir)
	}
	r, err := audit.OpenReader(dir, c.auditOptions(e))
	if err != nil {
		return nil, fail(exitUsage, "%w", err)
	}
	return r, nil
}

// tampered gives an error that a damaged store caused exit code 4, the
// code of verify's findings.
func tampered(err error) error {
	if errors.Is(err, audit.ErrDamaged) {
		return fail(exitTampered, "%w", err)
	}
	return err
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
		return fail(exitUsage, "%w", err)
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
	if err := r.Each(f, func(rec *audit.Record) error { return jsonLine(e.stdout, jsonRecord(rec)) }); err != nil {
		return fail(exitUsage, "%w", err)
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
		return fail(exitUsage, "%w", err)
	}
	if s.Format == "json" {
		for _, g := range groups {
			jsonLine(e.stdout, groupJSON{Group: g.Key, Count: g.Count, Denied: g.Denied, Errors: g.Errors, ErrorRate: g.ErrorRate(),
				Latency: jsonSummary(g.Latency), Wait: jsonSummary(g.Wait), Policy: jsonSummary(g.Policy),
				Sandbox: jsonSummary(g.Sandbox), Transform: jsonSummary(g.Transform)})
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tCOUNT\tDENIED\tERRORS\tERROR%%\tP50\tP95\tP99\tMAX\t\n", strings.ToUpper(s.By))
	for _, g := range groups {
		l := g.Latency
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f%%\t%s\t%s\t%s\t%s\t\n", parser.Printable(g.Key), g.Count, g.Denied, g.Errors, 100*g.ErrorRate(), dur(l.P50), dur(l.P95), dur(l.P99), dur(l.Max))
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
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", parser.Printable(g.Key), p.name, dur(p.s.P50), dur(p.s.P95), dur(p.s.P99), dur(p.s.Max))
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

type auditVerifyCmd struct {
	Checkpoint []string `placeholder:"FILE" sep:"none" help:"Also check against every checkpoint in FILE ('audit checkpoint'; - for standard input; repeatable): a record it covers changed, forged, moved or deleted, a session gone."`
}

func (v auditVerifyCmd) Run(e env, c *cli) error {
	var cps []*audit.Checkpoint
	var damaged []string
	for _, file := range v.Checkpoint {
		got, bad, err := readCheckpoints(e, file)
		if err != nil {
			return err
		}
		cps = append(cps, got...)
		for _, b := range bad {
			damaged = append(damaged, parser.Printable(file)+": "+strings.TrimPrefix(b.Error(), "audit: "))
		}
		if len(got) == 0 && len(bad) == 0 {
			return fail(exitUsage, "--checkpoint %s: no checkpoint in it", file)
		}
	}
	r, err := openReader(c, e)
	if err != nil {
		return tampered(err)
	}
	defer r.Close()
	rep, err := r.Check(cps)
	if err != nil {
		return tampered(fail(exitUsage, "%w", err))
	}
	against := ""
	if len(v.Checkpoint) > 0 {
		against = " against " + plural(len(cps), "checkpoint")
	}
	problems := len(rep.Breaks) + len(damaged)
	if problems == 0 {
		fmt.Fprintf(e.stdout, "ok: %d records, every chain intact", rep.Records)
		if len(cps) > 0 {
			latest := slices.MaxFunc(cps, func(a, b *audit.Checkpoint) int { return a.Time.Compare(b.Time) })
			fmt.Fprintf(e.stdout, "; %s (the latest of %s) %s %d of them, all as they were", plural(len(cps), "checkpoint"),
				latest.Time.Format(time.RFC3339), map[bool]string{true: "covers", false: "cover"}[len(cps) == 1], rep.Covered)
		}
		fmt.Fprintln(e.stdout)
		return nil
	}
	for _, d := range damaged {
		fmt.Fprintln(e.stdout, d)
	}
	for _, b := range rep.Breaks {
		fmt.Fprintln(e.stdout, strings.TrimPrefix(b.Error(), "audit: "))
	}
	msg := fmt.Sprintf("%d records checked%s: %s, listed above", rep.Records, against, plural(problems, "problem"))
	if rep.Gone > 0 && rep.Gone == rep.Held {
		msg += fmt.Sprintf("; none of the checkpoints' sessions is in this store: are they of another? (the store they name: %s)", parser.Printable(cps[0].Store))
	}
	return fail(exitTampered, "%s", msg)
}

// readCheckpoints reads the checkpoints of a file, or of standard input
// for "-".
func readCheckpoints(e env, file string) ([]*audit.Checkpoint, []*audit.CheckpointError, error) {
	in := e.stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, nil, fail(exitUsage, "--checkpoint: %v", err)
		}
		defer f.Close()
		in = f
	}
	cps, bad, err := audit.ReadCheckpoints(in)
	if err != nil {
		return nil, nil, fail(exitUsage, "--checkpoint %s: %v", parser.Printable(file), err)
	}
	for _, cp := range cps {
		cp.File = file
	}
	return cps, bad, nil
}

type auditCheckpointCmd struct {
	Output string `short:"o" placeholder:"FILE" help:"Append the checkpoint to FILE (created with mode 0600 if missing) instead of printing it."`
	Since  string `placeholder:"WHEN" help:"Only the sessions with a record at or after WHEN (90m, 24h, or an RFC 3339 time), each still from its first record: for a timer that appends to a file of earlier checkpoints."`
}

func (x auditCheckpointCmd) Run(e env, c *cli) error {
	since, err := parseWhen(x.Since, time.Now())
	if err != nil {
		return fail(exitUsage, "--since: %v", err)
	}
	r, err := openReader(c, e)
	if err != nil {
		return tampered(err)
	}
	defer r.Close()
	cp, err := r.Checkpoint(since)
	var brk *audit.Break
	switch {
	case errors.As(err, &brk):
		return fail(exitTampered, "no checkpoint of a broken chain: %v ('llm-runtime audit verify' lists every break)", strings.TrimPrefix(brk.Error(), "audit: "))
	case err != nil:
		return tampered(fail(exitUsage, "%w", err))
	}
	if x.Output == "" || x.Output == "-" {
		_, err := cp.WriteTo(e.stdout)
		return err
	}
	f, err := os.OpenFile(x.Output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fail(exitUsage, "--output: %v", err)
	}
	_, err = cp.WriteTo(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(exitUsage, "--output: %v", err)
	}
	fmt.Fprintf(e.stdout, "checkpoint of %s (%d records) appended to %s\n", plural(len(cp.Heads), "session"), cp.Records(), parser.Printable(x.Output))
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
	Resolved    string `json:"resolved,omitempty"` // the path touched, links and .. resolved
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
	Changes     string `json:"changes,omitempty"`    // an exec's changed files, one a line
	HostTools   string `json:"host_tools,omitempty"` // the host tool files it changed, "PATH (PATTERN)" a line
	FrontEnd    string `json:"front_end,omitempty"`  // filter or mcp
	Client      string `json:"client,omitempty"`     // the MCP client's name and version
	Checkpoint  uint64 `json:"checkpoint,omitempty"` // the journal's checkpoint of its changes
	Network     string `json:"network,omitempty"`    // an exec's connections through the egress proxy, one a line
	Hash        string `json:"hash"`
}

func jsonRecord(r *audit.Record) recordJSON {
	return recordJSON{
		Time: r.Time.Format(time.RFC3339Nano), Session: r.Session, Seq: r.Seq, Repo: r.Repo, Op: r.Op, Target: r.Target, Resolved: r.Resolved,
		Outcome: r.Outcome, Code: r.Code, BytesIn: r.BytesIn, BytesOut: r.BytesOut, LatencyNS: int64(r.Latency),
		WaitNS: int64(r.Wait), PolicyNS: int64(r.Policy), SandboxNS: int64(r.Sandbox), TransformNS: int64(r.Transform),
		Container: r.Container, Pooled: r.Pooled, Decider: r.Decider, Reason: r.Reason, Changes: r.Changes, HostTools: r.HostTools, FrontEnd: r.FrontEnd, Client: r.Client, Checkpoint: r.Checkpoint, Network: r.Network, Hash: hex.EncodeToString(r.Hash[:]),
	}
}

// jsonLine writes v as a line of JSON with parser.PrintableJSON's escapes:
// encoding/json leaves C1 and bidirectional controls raw, which a terminal
// would obey; escaped, they decode to the same strings.
func jsonLine(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(parser.PrintableJSON(b.Bytes()))
	return err
}

// printRecords prints records as JSON Lines, exactly, or as CSV or an
// aligned table with every text field escaped by parser.Printable: a
// target, a reason or a code can hold any bytes the model chose, and ESC,
// BEL, CR or NUL printed raw would drive the operator's terminal or forge
// a line.
func printRecords(w io.Writer, format string, recs []*audit.Record) error {
	switch format {
	case "json":
		for _, r := range recs {
			if err := jsonLine(w, jsonRecord(r)); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"time", "session", "seq", "repo", "op", "target", "outcome", "code", "bytes_in", "bytes_out", "latency_ns", "wait_ns", "sandbox_ns", "container", "pooled",
			"policy_ns", "transform_ns", "decider", "reason", "changes", "front_end", "client", "resolved", "host_tools", "network", "hash"})
		p := parser.Printable
		for _, r := range recs {
			cw.Write([]string{r.Time.Format(time.RFC3339Nano), p(r.Session), strconv.FormatUint(r.Seq, 10), p(r.Repo), p(r.Op), p(r.Target), p(r.Outcome), p(r.Code),
				strconv.FormatInt(r.BytesIn, 10), strconv.FormatInt(r.BytesOut, 10), strconv.FormatInt(int64(r.Latency), 10),
				strconv.FormatInt(int64(r.Wait), 10), strconv.FormatInt(int64(r.Sandbox), 10), p(r.Container), strconv.FormatBool(r.Pooled),
				strconv.FormatInt(int64(r.Policy), 10), strconv.FormatInt(int64(r.Transform), 10), p(r.Decider), p(r.Reason), p(r.Changes), p(r.FrontEnd), p(r.Client), p(r.Resolved), p(r.HostTools), p(r.Network), hex.EncodeToString(r.Hash[:])})
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSESSION\tOP\tOUTCOME\tCODE\tLATENCY\tWAIT\tTARGET")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.Local().Format("2006-01-02 15:04:05.000"), parser.Printable(r.Session), parser.Printable(r.Op),
			parser.Printable(r.Outcome), orDash(parser.Printable(r.Code)), dur(r.Latency), dur(r.Wait), cell(r.Target, 60))
	}
	return tw.Flush()
}

// cell is s escaped by parser.Printable and cut to at most max characters,
// the last three "...", never inside an escape.
func cell(s string, max int) string {
	p := parser.Printable(s)
	if utf8.RuneCountInString(p) <= max {
		return p
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		e := parser.Printable(s[i : i+size])
		if n+utf8.RuneCountInString(e) > max-3 {
			break
		}
		b.WriteString(e)
		n += utf8.RuneCountInString(e)
		i += size
	}
	return b.String() + "..."
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
