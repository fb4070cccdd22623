// Package runner is the orchestration: it reads model output, runs each
// command it finds in a sandbox, and reports each result before reading
// further.
package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/llm-runtime/llm-runtime/audit"
	"github.com/llm-runtime/llm-runtime/edit"
	"github.com/llm-runtime/llm-runtime/journal"
	"github.com/llm-runtime/llm-runtime/output"
	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/runtime/wasm"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// CodeParseError is the code of a command whose text is malformed.
const CodeParseError = "PARSE_ERROR"

// Recorder keeps the audit record of each operation. Append must return
// only once the record is durable: the result is printed after it.
type Recorder interface {
	Append(*audit.Record) error
}

// Runner runs the commands of one input.
//
// A result normally holds either a value or an error; an exec that failed
// or timed out holds both, its output and the error.
type Runner struct {
	Sandbox sandbox.Sandbox
	Report  output.Reporter
	// MaxWriteSize is the largest write body kept in memory; a larger one is
	// refused with RESOURCE_LIMIT. It should be the sandbox's own limit.
	MaxWriteSize int64
	// Audit, if set, gets a record of every command before its result is
	// printed; if it fails, the run stops without printing that result.
	Audit Recorder
	// Repo names the repository in audit records.
	Repo string
	// Guests, if not nil, are the policy and transform modules: every
	// command is put to the policies before it runs, and every output to
	// the transforms before it is shown. A guest that fails denies.
	Guests *wasm.Chain
	// Session identifies the run to the guests.
	Session string
	// Roots are the absolute paths of the repository (its real path, and
	// the path as given when a link leads to it): a path of an open,
	// write or edit that starts with one is taken relative to the root, as
	// a model that was told where the repository is writes it.
	Roots []string
	// FrontEnd names what asks for the operations in audit records:
	// "filter" when empty.
	FrontEnd string
	// Journal, if set, records every write, edit, delete and move in the
	// repository's journal of changes, before it is made: a run's changes
	// are one checkpoint; an operation asked for alone (DoOp, outside
	// Run: an MCP call) is one of its own.
	Journal *journal.Journal
	// Restorer, with Journal, is what <undo> puts paths back through: a
	// workspace of this process on the repository, with the sandbox's
	// rules.
	Restorer Restorer

	cpMu  sync.Mutex
	cp    *journal.Checkpoint // the checkpoint being filled, nil before the first change
	inRun bool                // Run is running: its operations share one checkpoint
	group string              // Group's name: operations asked for alone share one checkpoint
}

// Group makes the operations asked for alone from now on (MCP calls)
// share one checkpoint named name, until the next Group; "" ends the
// grouping: each changing call is its own checkpoint again. The
// checkpoint being filled ends.
func (r *Runner) Group(name string) error {
	err := r.EndCheckpoint()
	r.cpMu.Lock()
	r.group = name
	r.cpMu.Unlock()
	return err
}

// journaled says whether an operation of kind k may change the
// repository, so that its changes are journaled: an exec's when it is
// writable.
func journaled(k parser.Kind) bool {
	return k == parser.Write || k == parser.Edit || k == parser.Delete || k == parser.Move || k == parser.Exec
}

// meta is what a checkpoint the runner begins says of itself, with the
// name a client gave it (or "").
func (r *Runner) meta(name string) journal.Meta {
	return journal.Meta{Session: r.Session, FrontEnd: cmp.Or(r.FrontEnd, "filter"), Name: name}
}

// checkpoint returns the checkpoint being filled, begun now if none is.
func (r *Runner) checkpoint() (*journal.Checkpoint, error) {
	r.cpMu.Lock()
	defer r.cpMu.Unlock()
	if r.cp == nil {
		cp, err := r.Journal.Begin(r.meta(r.group))
		if err != nil {
			return nil, err
		}
		r.cp = cp
	}
	return r.cp, nil
}

// EndCheckpoint ends the checkpoint being filled, if any: the next change
// begins another. Run calls it at its end.
func (r *Runner) EndCheckpoint() error {
	r.cpMu.Lock()
	defer r.cpMu.Unlock()
	if r.cp == nil {
		return nil
	}
	err := r.cp.End()
	r.cp = nil
	return err
}

// Checkpoint is the number of the checkpoint being filled, 0 if none.
func (r *Runner) Checkpoint() int {
	r.cpMu.Lock()
	defer r.cpMu.Unlock()
	if r.cp == nil {
		return 0
	}
	return r.cp.Number()
}

// Codes of the guests.
const (
	CodePolicyDenied = "POLICY_DENIED"
	CodePolicyError  = "POLICY_ERROR"
)

// CodeJournalDisabled is the code of <diff> and <undo> without
// journal.enabled.
const CodeJournalDisabled = "JOURNAL_DISABLED"

// guestInfo is what the guests did to one command, for the audit log.
type guestInfo struct {
	policy, transform time.Duration
	decider, reason   string
	// resolved is the path the operation touched, for the audit record:
	// as the sandbox's result names it, or the policies' resolution.
	resolved string
	// rec is the operation's recorder, whose checkpoint the audit record
	// names.
	rec *lazyRecorder
}

// Run reads in to the end, running each command as soon as its text is
// complete. Failed commands are reported in the output and do not stop the
// run; Run returns an error only when reading the input or writing the
// output fails, or ctx is cancelled (after reporting what ran, and that
// the run was interrupted: Summary.Interrupted).
func (r *Runner) Run(ctx context.Context, in io.Reader) (output.Summary, error) {
	start := time.Now()
	var sum output.Summary
	if err := r.Report.Start(); err != nil {
		return sum, err
	}
	p := parser.New(newCtxReader(ctx, in), parser.Options{MaxBody: r.MaxWriteSize})
	r.cpMu.Lock()
	r.inRun = true
	r.cpMu.Unlock()
	defer func() {
		r.cpMu.Lock()
		r.inRun = false
		r.cpMu.Unlock()
		r.EndCheckpoint()
	}()
	var runErr error
	for {
		if err := ctx.Err(); err != nil {
			runErr = err
			break
		}
		cmd, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			runErr = fmt.Errorf("reading input: %w", err)
			break
		}
		sum.Commands++
		res, err := r.Do(ctx, cmd)
		if err != nil {
			runErr = fmt.Errorf("%w (the result of %s was not printed)", err, cmd.Tag())
			break
		}
		res.Index = sum.Commands
		if res.Err != nil {
			sum.Failed++
		}
		if err := r.Report.Result(res); err != nil {
			return sum, fmt.Errorf("writing output: %w", err)
		}
	}
	sum.Elapsed = time.Since(start)
	sum.Interrupted = runErr != nil && ctx.Err() != nil && errors.Is(runErr, ctx.Err())
	if err := r.Report.Finish(sum); err != nil && runErr == nil {
		runErr = fmt.Errorf("writing output: %w", err)
	}
	return sum, runErr
}

// denials are the codes of operations refused by a rule: nothing was done.
var denials = map[string]bool{
	sandbox.CodePathSecurity:   true,
	sandbox.CodeExecValidation: true,
	sandbox.CodeExecDisabled:   true,
	CodePolicyDenied:           true,
}

// Do runs one command the way a run does, whichever front end it comes
// from: the policies decide, the sandbox runs it, the transforms rewrite
// what it shows, and its audit record is durable before Do returns. The
// result holds the command's own failure; the error is one of the audit
// log, and then the result must not be shown.
func (r *Runner) Do(ctx context.Context, cmd parser.Command) (*output.Result, error) {
	return r.DoOp(ctx, Op{Command: cmd})
}

// Op is one operation as any front end asks for it: the command (its
// kind, its argument as shown and audited, the argument in its parts
// (Args), its body), and what a front end that does not write the command
// language asks for beyond it. The runner and the sandboxes take the
// parts as they are; nothing reads the argument again, but for a policy
// that rewrites it.
type Op struct {
	parser.Command
	// Blocks, for edit: the SEARCH/REPLACE blocks (Body is then unused).
	Blocks []edit.Block
	// DryRun, for edit: the diff, and nothing written.
	DryRun bool
	// Timeout, for exec: shorter than exec.timeout.
	Timeout time.Duration
	// Client names who asked, in the audit record (an MCP client's name
	// and version).
	Client string
}

// options is what the op asks of the sandbox beyond its argument.
func (op *Op) options() sandbox.Options {
	o := sandbox.Options{Blocks: op.Blocks, DryRun: op.DryRun, Timeout: op.Timeout}
	if l := op.Args.Lines; l != nil && op.Kind == parser.Open {
		o.Lines = &sandbox.Lines{Start: l.Start, End: l.End}
	}
	return o
}

// argError is the error of an argument that does not read as its kind's,
// with the kind's code.
func argError(kind parser.Kind, err error) *sandbox.Error {
	code := CodeParseError
	switch kind {
	case parser.Open:
		code = sandbox.CodeInvalidRange
	case parser.Search:
		code = sandbox.CodeInvalidQuery
	case parser.Undo:
		code = sandbox.CodeInvalidPath
	}
	return sandbox.Errorf(code, "%s", err)
}

// DoOp is Do for an operation given in parts.
func (r *Runner) DoOp(ctx context.Context, op Op) (*output.Result, error) {
	octx, timing := sandbox.WithTiming(ctx)
	r.cpMu.Lock()
	alone := !r.inRun && r.group == ""
	r.cpMu.Unlock()
	res, gi := r.run(octx, op, alone)
	if gi.rec != nil && alone && gi.rec.cp != nil {
		gi.rec.cp.End() // an operation asked for alone is its own checkpoint
	}
	if r.Audit != nil {
		rec := r.record(res, timing, gi)
		rec.FrontEnd, rec.Client = cmp.Or(r.FrontEnd, "filter"), op.Client
		if err := r.Audit.Append(rec); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
	}
	return res, nil
}

// record is the audit record of a result.
func (r *Runner) record(res *output.Result, t *sandbox.Timing, gi guestInfo) *audit.Record {
	rec := &audit.Record{
		Time:      time.Now().Add(-res.Duration),
		Repo:      r.Repo,
		Op:        string(res.Command.Kind),
		Target:    res.Command.Arg,
		Resolved:  gi.resolved,
		Outcome:   audit.OK,
		Latency:   res.Duration,
		Wait:      t.Wait,
		Policy:    gi.policy,
		Transform: gi.transform,
		Sandbox:   max(0, res.Duration-t.Wait-gi.policy-gi.transform),
		Container: t.Container,
		Pooled:    t.Pooled,
		Decider:   gi.decider,
		Reason:    gi.reason,
	}
	if gi.rec != nil && gi.rec.cp != nil {
		rec.Checkpoint = uint64(gi.rec.cp.Number())
	}
	if res.Command.Kind == parser.Write || res.Command.Kind == parser.Edit {
		rec.BytesIn = res.Command.BodySize
	}
	switch {
	case res.File != nil:
		rec.BytesOut = int64(len(res.File.Content))
	case res.Write != nil:
		rec.HostTools = hostToolLine(res.Write.Path, res.Write.HostTool)
	case res.Edit != nil:
		rec.BytesOut = int64(len(res.Edit.Diff))
		if res.Edit.Content == nil { // written, not a dry run
			rec.HostTools = hostToolLine(res.Edit.Path, res.Edit.HostTool)
		}
	case res.Undo != nil:
		rec.Checkpoint = uint64(res.Undo.Checkpoint)
		for _, p := range res.Undo.Restored {
			rec.Changes += "put back " + p + "\n"
		}
		for _, p := range res.Undo.Conflicts {
			rec.Changes += "left " + p + "\n"
		}
	case res.Diff != nil:
		rec.BytesOut = int64(len(res.Diff.Text))
	case res.Delete != nil:
		rec.Changes = "deleted " + res.Delete.Path + "\n"
		rec.HostTools = hostToolLine(res.Delete.Path, res.Delete.HostTool)
	case res.Move != nil:
		rec.Changes = "moved " + res.Move.From + " to " + res.Move.To + "\n"
		rec.HostTools = hostToolLine(res.Move.To, res.Move.HostTool)
	case res.List != nil:
		for _, e := range res.List.Entries {
			rec.BytesOut += int64(len(e.Path))
		}
	case res.Exec != nil:
		rec.BytesOut = int64(len(res.Exec.Output))
		rec.Changes = changeLines(res.Exec.Changes, res.Exec.Omitted)
		for _, c := range res.Exec.Changes {
			rec.HostTools += hostToolLine(c.Path, c.HostTool)
		}
		for _, c := range res.Exec.Network {
			rec.Network += c.String() + "\n"
		}
	case res.Search != nil:
		for _, m := range res.Search.Matches {
			rec.BytesOut += int64(len(m.Path) + len(m.Text))
		}
	}
	if res.Err != nil {
		rec.Code, rec.Outcome = res.Err.Code, audit.Error
		if denials[res.Err.Code] {
			rec.Outcome = audit.Denied
		}
	}
	return rec
}

// inRoot returns p relative to the repository when it is an absolute
// path in one of its Roots ("." for the root itself), and p otherwise: an
// absolute path elsewhere is the sandbox's to refuse. The rest of the
// path is left as written, ".." included, for the sandbox's rules.
func (r *Runner) inRoot(p string) string {
	if !strings.HasPrefix(p, "/") {
		return p
	}
	for _, root := range r.Roots {
		if root == "" || root == "/" {
			continue
		}
		if p == root || p == root+"/" {
			return "."
		}
		if rest, ok := strings.CutPrefix(p, root+"/"); ok {
			return rest
		}
	}
	return p
}

// lineRewrite joins lines for a transform, and returns how to put its
// output back: line for line, the count unchanged.
func lineRewrite(lines []*string) (string, func(string) error) {
	texts := make([]string, len(lines))
	for i, l := range lines {
		texts[i] = *l
	}
	return strings.Join(texts, "\n"), func(s string) error {
		out := strings.Split(s, "\n")
		if len(out) != len(lines) {
			return fmt.Errorf("it turned %d lines into %d", len(lines), len(out))
		}
		for i := range out {
			*lines[i] = out[i]
		}
		return nil
	}
}

// tooLong reports whether a write's content or an edit's blocks are over
// MaxWriteSize: the parser cut them, or a front end gave them whole.
func (r *Runner) tooLong(op Op) bool {
	return op.Blocks == nil && op.Truncated() || r.MaxWriteSize > 0 && op.BodySize > r.MaxWriteSize
}

// editTooLong is the error of an edit whose body the parser cut.
func editTooLong(cmd parser.Command, max int64) *sandbox.Error {
	return sandbox.Errorf(sandbox.CodeResourceLimit, "the edit is %s; the limit on an edit's blocks (security.max_write_size) is %s; nothing was written",
		sandbox.FormatSize(cmd.BodySize), sandbox.FormatSize(max))
}

// changeLines is an exec's changes as the audit record keeps them.
// hostToolLine is a line of audit.Record.HostTools: "PATH (PATTERN)",
// or "" when pattern is.
func hostToolLine(path, pattern string) string {
	if pattern == "" {
		return ""
	}
	return path + " (" + pattern + ")\n"
}

func changeLines(cs []sandbox.Change, omitted map[string]int) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.Action)
		b.WriteByte(' ')
		b.WriteString(c.Path)
		if c.Reason != "" {
			b.WriteString(": ")
			b.WriteString(c.Reason)
		}
		b.WriteByte('\n')
	}
	for _, a := range slices.Sorted(maps.Keys(omitted)) {
		fmt.Fprintf(&b, "... %d more %s\n", omitted[a], a)
	}
	return b.String()
}

// run runs op; alone, its changes are a checkpoint of its own (an MCP
// call: one that runs meanwhile has its own), else they go in the one
// being filled.
func (r *Runner) run(ctx context.Context, op Op, alone bool) (*output.Result, guestInfo) {
	cmd := op.Command
	res := &output.Result{Command: cmd}
	var gi guestInfo
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	if cmd.Err != nil {
		msg := strings.TrimPrefix(cmd.Err.Error(), parser.ErrMalformed.Error()+": ")
		res.Err = sandbox.Errorf(CodeParseError, "%s", msg)
		return res, gi
	}
	if cmd.ArgErr != nil {
		res.Err = argError(cmd.Kind, cmd.ArgErr)
		return res, gi
	}
	opts := op.options()
	a := &cmd.Args
	pathOp := cmd.Kind == parser.Open || cmd.Kind == parser.Write || cmd.Kind == parser.Edit || cmd.Kind == parser.List || cmd.Kind == parser.Delete
	if pathOp {
		// res.Command keeps the argument as the model wrote it; the
		// policies see the path (an open's without its range).
		a.Path = r.inRoot(a.Path)
		cmd.Arg = r.inRoot(cmd.Arg)
		if cmd.Kind == parser.Open {
			cmd.Arg = a.Path
		}
	}
	mv := &a.Move
	if cmd.Kind == parser.Move {
		mv.From, mv.To = r.inRoot(mv.From), r.inRoot(mv.To)
		opts.Overwrite = mv.Overwrite
	}
	// A delete or a move touches the entry it names: a link itself.
	entry := cmd.Kind == parser.Delete || cmd.Kind == parser.Move
	if cmd.Kind == parser.Edit && r.tooLong(op) {
		res.Err = editTooLong(cmd, r.MaxWriteSize)
		return res, gi
	}
	if r.Guests.HasPolicies() {
		// The policies decide on what the operation touches: an open or
		// write is resolved first, and then may touch only that file.
		req := PolicyRequest(cmd, r.Session)
		if cmd.Kind == parser.Move {
			req.Path, req.To = mv.From, mv.To
		}
		rctx := ctx
		if entry {
			rctx = sandbox.WithOptions(ctx, sandbox.Options{Entry: true})
		}
		resolvePath := func(p string) (string, bool) {
			rel, err := r.Sandbox.Resolve(rctx, p)
			if err != nil {
				res.Err = sandbox.AsError(err) // the operation would fail the same way
				return "", false
			}
			return rel, true
		}
		resolve := func() bool {
			rel, ok := resolvePath(a.Path)
			req.Resolved, gi.resolved = rel, rel
			return ok
		}
		if pathOp && !resolve() {
			return res, gi
		}
		if cmd.Kind == parser.Move {
			var ok bool
			if req.Resolved, ok = resolvePath(mv.From); !ok {
				return res, gi
			}
			if req.ToResolved, ok = resolvePath(mv.To); !ok {
				return res, gi
			}
			gi.resolved = req.Resolved
		}
		// An edit is decided on as the write of the file it would leave,
		// and then applies only to the file that was decided on.
		base := ""
		if cmd.Kind == parser.Edit {
			dry := opts
			dry.Expect, dry.DryRun = req.Resolved, true
			dr, err := r.Sandbox.Edit(sandbox.WithOptions(ctx, dry), a.Path, cmd.Body)
			if err != nil {
				res.Err = sandbox.AsError(err)
				return res, gi
			}
			req.Op, req.Edit, req.Content, base = string(parser.Write), true, string(dr.Content), dr.Base
		}
		pstart := time.Now()
		v := r.Guests.Decide(ctx, req)
		gi.policy, gi.decider, gi.reason = time.Since(pstart), v.Decider, v.Reason
		switch {
		case v.Failed:
			res.Err = sandbox.Errorf(CodePolicyError, "policy %s failed, so the command is denied: %s", orUnknown(v.Decider), v.Reason)
			return res, gi
		case !v.Allowed:
			res.Err = sandbox.Errorf(CodePolicyDenied, "denied by policy %s: %s", v.Decider, v.Reason)
			return res, gi
		case v.Argument != cmd.Arg && cmd.Kind == parser.Edit:
			res.Err = sandbox.Errorf(CodePolicyError, "policy %s rewrote an edit's path, and an edit is decided on with its file: it is denied", orUnknown(v.Decider))
			return res, gi
		case cmd.Kind == parser.Move:
			if v.Argument != mv.From {
				res.Err = sandbox.Errorf(CodePolicyError, "policy %s rewrote a move, whose two paths are decided on together: it is denied", orUnknown(v.Decider))
				return res, gi
			}
		case v.Argument != cmd.Arg:
			// Rewritten: the result shows the command as run, and its
			// parts are read again (an open's path is the path alone).
			cmd.Arg = v.Argument
			res.Command = cmd
			if cmd.Kind == parser.Open {
				a.Path = v.Argument
			} else if args, err := parser.ParseArgs(cmd.Kind, v.Argument); err != nil {
				res.Err = argError(cmd.Kind, err)
				return res, gi
			} else {
				args.Query.Max = a.Query.Max // a front end's, which the text does not carry
				*a = args
			}
			if pathOp && !resolve() {
				return res, gi
			}
		}
		if pathOp {
			opts.Expect, opts.Base = req.Resolved, base
		}
		if cmd.Kind == parser.Move {
			opts.Expect, opts.ExpectTo = req.Resolved, req.ToResolved
		}
	}
	if r.Journal != nil && journaled(cmd.Kind) && !opts.DryRun {
		// The checkpoint begins with the first change recorded: a read-only
		// exec, or a change refused before, makes none.
		gi.rec = &lazyRecorder{begin: r.checkpoint}
		if alone {
			gi.rec.begin = func() (*journal.Checkpoint, error) { return r.Journal.Begin(r.meta("")) }
		}
		opts.Recorder = gi.rec
	}
	if !opts.IsZero() {
		ctx = sandbox.WithOptions(ctx, opts)
	}
	var err error
	switch cmd.Kind {
	case parser.Diff:
		res.Diff, err = r.diff(*a)
	case parser.Undo:
		res.Undo, err = r.undo(a.Checkpoint)
	case parser.Open:
		res.File, err = r.Sandbox.Open(ctx, a.Path)
	case parser.Write:
		if r.tooLong(op) {
			err = sandbox.Errorf(sandbox.CodeResourceLimit, "content is %s; the limit (security.max_write_size) is %s; nothing was written",
				sandbox.FormatSize(cmd.BodySize), sandbox.FormatSize(r.MaxWriteSize))
			break
		}
		res.Write, err = r.Sandbox.Write(ctx, a.Path, cmd.Body)
	case parser.Edit:
		res.Edit, err = r.Sandbox.Edit(ctx, a.Path, cmd.Body)
	case parser.List:
		res.List, err = r.Sandbox.List(ctx, a.Path, a.Recursive)
	case parser.Delete:
		res.Delete, err = r.Sandbox.Delete(ctx, a.Path)
	case parser.Move:
		res.Move, err = r.Sandbox.Move(ctx, mv.From, mv.To)
	case parser.Search:
		if r.Guests.HasPolicies() {
			res.Search, err = r.searchAllowed(ctx, a.Query, &gi)
		} else {
			res.Search, err = r.Sandbox.Search(ctx, a.Query)
		}
		if res.Search != nil {
			res.Search.Query = cmd.Arg // as written, for display
		}
	case parser.Exec:
		res.Exec, err = r.Sandbox.Exec(ctx, cmd.Arg)
	default:
		err = sandbox.Errorf(sandbox.CodeInternal, "unknown command %q", cmd.Kind)
	}
	switch {
	case err != nil:
	case res.File != nil:
		gi.resolved = res.File.Path
	case res.Write != nil:
		gi.resolved = res.Write.Path
	case res.Edit != nil:
		gi.resolved = res.Edit.Path
	case res.List != nil:
		gi.resolved = res.List.Path
	case res.Delete != nil:
		gi.resolved = res.Delete.Path
	case res.Move != nil:
		gi.resolved = res.Move.From
	}
	if err != nil {
		// A failed exec keeps its result: the output of a failing command
		// is what the model needs most.
		res.File, res.Write, res.Search, res.Edit, res.List, res.Delete, res.Move, res.Diff, res.Undo = nil, nil, nil, nil, nil, nil, nil, nil, nil
		res.Err = sandbox.AsError(err)
	}
	if r.Guests.HasTransforms() {
		tstart := time.Now()
		if terr := r.transform(ctx, res); terr != nil {
			res.File, res.Search, res.Exec, res.Edit, res.List = nil, nil, nil, nil, nil
			res.Err = terr
		}
		gi.transform = time.Since(tstart)
	}
	return res, gi
}

// searchAllowed searches, and leaves out the files the policies would not
// let the model open: each file with a match is put to them as an open,
// and if any is denied the search runs again on the files allowed alone,
// so that neither the lines nor the counts of the others show. (Not
// merely without the denied ones: a first search stopped at its time
// limit did not look at every file, and the second, spared the denied
// ones, could get further, to files never put to the policies.)
func (r *Runner) searchAllowed(ctx context.Context, query parser.Query, gi *guestInfo) (*sandbox.SearchResult, error) {
	o := sandbox.OptionsFrom(ctx)
	o.ListFiles = true
	res, err := r.Sandbox.Search(sandbox.WithOptions(ctx, o), query)
	if err != nil {
		return nil, err
	}
	if res.Files > len(res.MatchedFiles) {
		return nil, sandbox.Errorf(CodePolicyError, "%d files match, more than the %d that can be put to the policies; search for something narrower", res.Files, sandbox.MaxMatchedFiles)
	}
	pstart := time.Now()
	var denied, allowed []string
	for _, f := range res.MatchedFiles {
		v := r.Guests.Decide(ctx, wasm.Request{Op: string(parser.Open), Path: f, Resolved: f, Session: r.Session})
		if !v.Allowed || v.Failed {
			if len(denied) == 0 {
				gi.decider = v.Decider
			}
			denied = append(denied, f)
		} else {
			allowed = append(allowed, f)
		}
	}
	gi.policy += time.Since(pstart)
	res.MatchedFiles = nil
	if len(denied) == 0 {
		return res, nil
	}
	gi.reason = fmt.Sprintf("%d of %d matching files left out: the policies would not let them be opened", len(denied), res.Files)
	if len(allowed) == 0 {
		res.Matches, res.Total, res.Files = nil, 0, 0
		return res, nil
	}
	first := res
	o.ListFiles, o.Skip, o.Only = false, denied, allowed
	res, err = r.Sandbox.Search(sandbox.WithOptions(ctx, o), query)
	if err != nil {
		return nil, err
	}
	res.MatchedFiles = nil
	// What was skipped, and whether the search looked at every file, is
	// the first search's: the second looked only at files it found.
	res.SkippedLarge, res.SkippedBinary, res.Ignored = first.SkippedLarge, first.SkippedBinary, first.Ignored
	if res.Partial == "" {
		res.Partial = first.Partial
	}
	return res, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(loading)"
	}
	return s
}

// PolicyRequest is what the policies see of a command.
func PolicyRequest(cmd parser.Command, session string) wasm.Request {
	req := wasm.Request{Op: string(cmd.Kind), Session: session}
	switch cmd.Kind {
	case parser.Exec:
		req.Command = cmd.Arg
	case parser.Search:
		req.Query = cmd.Arg
	case parser.Move:
		req.Path, req.To = cmd.Args.Move.From, cmd.Args.Move.To
	default:
		req.Path = cmd.Arg
	}
	if cmd.Kind == parser.Write {
		req.Content = string(cmd.Body)
	}
	if cmd.Kind == parser.Edit {
		req.Op, req.Edit = string(parser.Write), true // Content: the runner's dry run fills it
	}
	return req
}

// transform passes what the model would see through the transforms. If a
// transform fails, the output is withheld (fail closed).
func (r *Runner) transform(ctx context.Context, res *output.Result) *sandbox.Error {
	req := wasm.TransformRequest{Op: string(res.Command.Kind), Session: r.Session}
	var apply func(string) error
	switch {
	case res.File != nil:
		req.Path, req.Output = res.File.Path, string(res.File.Content)
		apply = func(s string) error { res.File.Content = []byte(s); return nil }
	case res.Exec != nil:
		req.Command, req.Output = res.Command.Arg, string(res.Exec.Output)
		apply = func(s string) error { res.Exec.Output = []byte(s); return nil }
	case res.Edit != nil:
		req.Path, req.Output = res.Edit.Path, res.Edit.Diff
		apply = func(s string) error { res.Edit.Diff = s; return nil }
	case res.List != nil && len(res.List.Entries) > 0:
		lines := make([]*string, len(res.List.Entries))
		for i := range res.List.Entries {
			lines[i] = &res.List.Entries[i].Path
		}
		req.Path = res.List.Path
		req.Output, apply = lineRewrite(lines)
	case res.Search != nil && len(res.Search.Matches) > 0:
		// Every line shown goes through: the matches and their context.
		var lines []*string
		for i := range res.Search.Matches {
			m := &res.Search.Matches[i]
			for j := range m.Before {
				lines = append(lines, &m.Before[j])
			}
			lines = append(lines, &m.Text)
			for j := range m.After {
				lines = append(lines, &m.After[j])
			}
		}
		req.Query = res.Search.Query
		req.Output, apply = lineRewrite(lines)
	default:
		return nil
	}
	out, _, by, err := r.Guests.Transform(ctx, req)
	if err == nil {
		err = apply(out)
	}
	if err != nil {
		return sandbox.Errorf(CodePolicyError, "transform %s failed, so the output is withheld: %v", orUnknown(by), err)
	}
	return nil
}

// ctxReader reads from r in a goroutine of its own, one read at a time and
// only when asked (nothing is read ahead), so that a read blocked on a pipe
// or a terminal gives way to ctx: once ctx is done, Read returns ctx.Err()
// at once. A read still blocked then is abandoned to the process's exit.
type ctxReader struct {
	ctx     context.Context
	r       io.Reader
	reqs    chan int
	res     chan readResult
	pending bool // a read was asked for and not yet answered
	started bool
	err     error // the reader's last error: every later Read returns it
}

type readResult struct {
	b   []byte
	err error
}

func newCtxReader(ctx context.Context, r io.Reader) *ctxReader {
	return &ctxReader{ctx: ctx, r: r, reqs: make(chan int), res: make(chan readResult, 1)}
}

func (c *ctxReader) loop() {
	for n := range c.reqs {
		buf := make([]byte, n)
		k, err := c.r.Read(buf)
		c.res <- readResult{buf[:k], err}
		if err != nil {
			return
		}
	}
}

// Read implements io.Reader.
func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !c.started {
		c.started = true
		go c.loop()
	}
	if !c.pending {
		select {
		case c.reqs <- len(p):
			c.pending = true
		case <-c.ctx.Done():
			return 0, c.ctx.Err()
		}
	}
	select {
	case r := <-c.res:
		c.pending = false
		n := copy(p, r.b) // r.b is at most len(p) long: the loop read into a buffer of that size
		if r.err != nil {
			c.err = r.err
			close(c.reqs)
		}
		return n, r.err
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	}
}
