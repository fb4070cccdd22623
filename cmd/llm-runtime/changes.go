package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/engine"
	"github.com/llm-runtime/llm-runtime/internal/filtercli"
	"github.com/llm-runtime/llm-runtime/journal"
	"github.com/llm-runtime/llm-runtime/runner"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

type changesCmd struct {
	List  changesListCmd  `cmd:"" default:"withargs" help:"List the repository's checkpoints, newest first, with what each changed (the default)."`
	Show  changesShowCmd  `cmd:"" help:"Print a checkpoint's changes as a unified diff (patch -p1 and git apply take it)."`
	Prune changesPruneCmd `cmd:"" help:"Drop the oldest checkpoints past journal.max_age or journal.max_size, never the last journal.keep, and the contents only they named."`
}

func (changesCmd) Help() string {
	return `With journal.enabled (the default), every write, edit, delete and move the
sandbox makes, and every change a writable exec applies, is recorded before
it is made, in the repository's journal of changes: what each path held
before and after, content and mode. A run of the filter is one checkpoint
(through the daemon too); through MCP, each call that changes something is
one. Checkpoints are numbered per repository; llm-runtime undo takes them
back. Sessions prune the journal once a day (journal.max_age,
journal.max_size, journal.keep).

Examples:

  llm-runtime changes                  # this repository's (--root, default .)
  llm-runtime changes list --json
  llm-runtime changes show 12          # a unified diff of checkpoint 12
  llm-runtime changes show 12 | git apply -R   # take it back, by hand
  llm-runtime changes prune            # journal.max_age 720h, max_size 1GiB, keep 20`
}

// repoJournal is the journal of the repository --root names, with the
// configuration it was found by.
type repoJournal struct {
	*journal.Journal
	root, file string
	cfg        *config.Config
}

// openJournalOf opens the journal of the repository --root names, nil
// when none was ever recorded.
func openJournalOf(e env, c *cli) (*repoJournal, error) {
	root, file, cfg, err := c.load(e, nil)
	if err != nil {
		return nil, err
	}
	dir, err := filtercli.JournalDir(cfg, root)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		state := "journal.enabled is false: set it to record changes"
		if cfg.Journal.Enabled {
			state = "journal.enabled is true, and nothing was changed since"
		}
		fmt.Fprintf(e.stderr, "llm-runtime: no changes recorded for %s (%s)\n", root, state)
		return nil, nil
	}
	j, err := journal.Open(dir)
	if err != nil {
		return nil, fail(exitConfig, "%v", err)
	}
	return &repoJournal{Journal: j, root: root, file: file, cfg: cfg}, nil
}

type changesListCmd struct {
	JSON bool `name:"json" help:"One JSON object a line: number, time, front_end, session, name, changes, pending, ended, paths."`
}

func (p changesListCmd) Run(e env, c *cli) error {
	j, err := openJournalOf(e, c)
	if j == nil {
		return err
	}
	defer j.Close()
	root := j.root
	list, err := j.Checkpoints()
	if err != nil {
		return fail(exitConfig, "%v", err)
	}
	if p.JSON {
		enc := json.NewEncoder(e.stdout)
		for _, cp := range list {
			enc.Encode(map[string]any{"number": cp.Number, "time": cp.Meta.Time.Format(time.RFC3339Nano), "front_end": cp.Meta.FrontEnd,
				"session": cp.Meta.Session, "name": cp.Meta.Name, "changes": cp.Changes, "pending": cp.Pending, "ended": cp.Ended, "paths": cp.Paths})
		}
		return nil
	}
	fmt.Fprintf(e.stdout, "Changes of %s: %d checkpoints\n", root, len(list))
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tTIME\tFRONT END\tCHANGES\tPATHS")
	for _, cp := range list {
		paths := strings.Join(cp.Paths[:min(len(cp.Paths), 3)], ", ")
		if len(cp.Paths) > 3 {
			paths += fmt.Sprintf(", and %d more", len(cp.Paths)-3)
		}
		if cp.Meta.Name != "" {
			paths = "(" + cp.Meta.Name + ") " + paths
		}
		n := fmt.Sprint(cp.Changes)
		if cp.Pending > 0 {
			n += fmt.Sprintf(" (%d pending)", cp.Pending)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", cp.Number, cp.Meta.Time.Local().Format("2006-01-02 15:04:05"), cp.Meta.FrontEnd, n, paths)
	}
	return tw.Flush()
}

type changesPruneCmd struct{}

func (changesPruneCmd) Run(e env, c *cli) error {
	j, err := openJournalOf(e, c)
	if j == nil {
		return err
	}
	defer j.Close()
	root, cfg := j.root, j.cfg
	res, err := j.Prune(journal.Retention{MaxAge: cfg.Journal.MaxAge, MaxBytes: cfg.Journal.MaxSize, Keep: cfg.Journal.Keep})
	if err != nil {
		return fail(exitConfig, "%v", err)
	}
	if res.Checkpoints == 0 {
		fmt.Fprintf(e.stdout, "Changes of %s: nothing to prune (journal.max_age %s, journal.max_size %s, journal.keep %d); %s kept\n",
			root, cfg.Value("journal.max_age"), cfg.Value("journal.max_size"), cfg.Journal.Keep, config.FormatSize(res.Left))
	} else {
		fmt.Fprintf(e.stdout, "Changes of %s: pruned the oldest %s, through %d; %s freed, %s kept\n", root, plural(res.Checkpoints, "checkpoint"), res.Through, config.FormatSize(res.Bytes), config.FormatSize(res.Left))
	}
	if res.Objects+res.Temporary > 0 {
		fmt.Fprintf(e.stdout, "Removed %d contents no checkpoint names and %d temporary files\n", res.Objects, res.Temporary)
	}
	return nil
}

type changesShowCmd struct {
	Checkpoint int `arg:"" help:"The checkpoint's number (llm-runtime changes lists them)."`
}

func (p changesShowCmd) Run(e env, c *cli) error {
	j, err := openJournalOf(e, c)
	if j == nil {
		if err == nil {
			return fail(exitUsage, "no checkpoint %d", p.Checkpoint)
		}
		return err
	}
	defer j.Close()
	cs, err := j.Changes(p.Checkpoint)
	if errors.Is(err, journal.ErrNoCheckpoint) {
		return fail(exitUsage, "no checkpoint %d in this repository's journal (llm-runtime changes lists them; an old one may have been pruned)", p.Checkpoint)
	}
	if err != nil {
		return fail(exitConfig, "%v", err)
	}
	if err := runner.WriteDiff(e.stdout, j.Journal, journal.Net(cs)); err != nil {
		return fail(exitUsage, "%v", err)
	}
	return nil
}

type undoCmd struct {
	Checkpoint int  `arg:"" optional:"" help:"The checkpoint to take back (default: the newest)."`
	To         int  `name:"to" placeholder:"N" help:"Take back every checkpoint after N: the repository as checkpoint N left it."`
	Force      bool `help:"Put back even a path changed since by someone else (its current content is lost, but for the journal of this undo)."`
}

func (undoCmd) Help() string {
	return `Puts back what checkpoints changed (journal.enabled): each path as it was
before, if it still holds what the checkpoint left; a path changed since (by
you, an editor, another session) is left as it is and listed, unless --force.
The undo is a checkpoint of its own, so it can be taken back: llm-runtime redo.

Examples:

  llm-runtime undo             # the newest checkpoint
  llm-runtime undo 12          # checkpoint 12 alone
  llm-runtime undo --to 9      # everything after checkpoint 9
  llm-runtime redo             # take the last undo back`
}

func (p undoCmd) Run(e env, c *cli) error {
	j, err := openJournalOf(e, c)
	if j == nil {
		if err == nil {
			return fail(exitUsage, "nothing to undo")
		}
		return err
	}
	defer j.Close()
	list, err := j.Index() // oldest first; it reads only what was appended since the last session
	if err != nil {
		return fail(exitConfig, "%v", err)
	}
	if len(list) == 0 {
		return fail(exitUsage, "nothing to undo: the journal has no checkpoint")
	}
	var numbers []int
	switch {
	case p.To > 0 && p.Checkpoint > 0:
		return fail(exitUsage, "give a checkpoint or --to, not both")
	case p.To > 0:
		if numbers, err = runner.CheckpointsAfter(j.Journal, p.To); err != nil {
			return fail(exitConfig, "%v", err)
		}
		if numbers == nil {
			return fail(exitUsage, "nothing after checkpoint %d to undo", p.To)
		}
	case p.Checkpoint > 0:
		numbers = []int{p.Checkpoint}
	default:
		numbers = []int{list[len(list)-1].Number}
	}
	return undoAndSay(e, j, numbers, "", p.Force)
}

type redoCmd struct{}

func (redoCmd) Help() string {
	return `Takes back the last undo (llm-runtime undo), when it is the newest checkpoint.`
}

func (redoCmd) Run(e env, c *cli) error {
	j, err := openJournalOf(e, c)
	if j == nil {
		if err == nil {
			return fail(exitUsage, "nothing to redo")
		}
		return err
	}
	defer j.Close()
	list, err := j.Checkpoints()
	if err != nil {
		return fail(exitConfig, "%v", err)
	}
	if len(list) == 0 || !strings.HasPrefix(list[0].Meta.Name, "undo of ") {
		return fail(exitUsage, "nothing to redo: the newest checkpoint is not an undo")
	}
	return undoAndSay(e, j, []int{list[0].Number}, "redo of "+strings.TrimPrefix(list[0].Meta.Name, "undo of "), false)
}

// undoAndSay takes back the checkpoints numbers of j's repository,
// through a workspace with the sandbox's rules, and says what it did;
// name is the undo's checkpoint's ("": "undo of N").
func undoAndSay(e env, j *repoJournal, numbers []int, name string, force bool) error {
	limits, _ := engine.Limits(engine.Settings{Root: j.root, ConfigFile: j.file, Config: j.cfg})
	ws, err := sandbox.OpenWorkspace(j.root, limits)
	if err != nil {
		return fail(exitConfig, "%v", err)
	}
	defer ws.Close()
	res, err := runner.Undo(j.Journal, ws, numbers, journal.Meta{FrontEnd: "cli", Name: name}, force)
	if err != nil {
		return fail(exitConfig, "%v", err)
	}
	fmt.Fprintf(e.stdout, "%s %s: %s put back\n", map[bool]string{true: "Redid (took back the undo)", false: "Undid"}[strings.HasPrefix(name, "redo")], res.Of, plural(len(res.Restored), "path"))
	for _, p := range res.Restored {
		fmt.Fprintf(e.stdout, "  %s\n", p)
	}
	if len(res.Conflicts) > 0 {
		fmt.Fprintf(e.stdout, "Left as they are (changed since; --force puts them back all the same):\n")
		for _, p := range res.Conflicts {
			fmt.Fprintf(e.stdout, "  %s\n", p)
		}
	}
	if res.Checkpoint > 0 {
		fmt.Fprintf(e.stdout, "This is checkpoint %d: llm-runtime redo (or undo %d) takes it back.\n", res.Checkpoint, res.Checkpoint)
	}
	return nil
}
