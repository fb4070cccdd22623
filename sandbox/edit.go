package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/llm-runtime/llm-runtime/edit"
)

// Edit applies the SEARCH/REPLACE blocks of body to the file at p.
func (w *Workspace) Edit(p string, body []byte) (*EditResult, error) {
	return w.EditWith(p, body, Options{})
}

// EditWith is Edit with the options o. The file is read and replaced on
// the descriptors of one walk: the rules of Open for what may be read (a
// regular text file, not excluded), of Write for what may be written
// (nothing protected), and security.max_file_size on the file before and
// after, not security.max_write_size: a large file takes a small edit.
func (w *Workspace) EditWith(p string, body []byte, o Options) (*EditResult, error) {
	blocks := o.Blocks
	if blocks == nil {
		var err error
		if blocks, err = edit.Parse(body); err != nil {
			return nil, editError(err)
		}
	}
	if len(blocks) == 0 {
		return nil, Errorf(CodeEditSyntax, "no edits; nothing was written")
	}
	for i, b := range blocks {
		if len(b.Search) == 0 {
			return nil, Errorf(CodeEditSyntax, "edit %d searches for nothing: there is nothing to anchor it; nothing was written", i+1)
		}
	}
	t, err := w.openRegular(p, o)
	if err != nil {
		return nil, err
	}
	defer t.close()
	rel := t.rel
	if err := w.writeProtected(t); err != nil {
		return nil, err
	}
	if t.st.Size > w.limits.MaxFileSize {
		return nil, w.tooBig(rel, t.st.Size)
	}
	content, err := readAll(t.fd, w.limits.MaxFileSize+1, t.st.Size)
	if err != nil {
		return nil, osError(err, rel)
	}
	if int64(len(content)) > w.limits.MaxFileSize {
		return nil, w.tooBig(rel, int64(len(content)))
	}
	if isBinary(content) {
		return nil, Errorf(CodeBinaryFile, "%s is a binary file", rel)
	}
	// The file's SHA-256, which a dry run gives and a later edit names as
	// its Base; hashed only for them (100 KiB takes 50-100 µs).
	var base string
	if o.Base != "" || o.DryRun {
		sum := sha256.Sum256(content)
		base = hex.EncodeToString(sum[:])
	}
	if o.Base != "" && o.Base != base {
		return nil, Errorf(CodePathSecurity, "%s changed since the edit was decided on; nothing was written", rel)
	}
	r, err := edit.Apply(rel, content, blocks)
	if err != nil {
		return nil, editError(err)
	}
	if int64(len(r.Content)) > w.limits.MaxFileSize {
		return nil, Errorf(CodeResourceLimit, "%s would be %s after the edit; the limit (security.max_file_size) is %s; nothing was written", rel, FormatSize(int64(len(r.Content))), FormatSize(w.limits.MaxFileSize))
	}
	res := &EditResult{Path: rel, Applied: r.Applied, Loose: r.Loose, Replaced: r.Replaced, Bytes: int64(len(r.Content)), Diff: r.Diff, DiffTruncated: r.DiffTruncated, HostTool: w.HostTool(rel)}
	if o.DryRun {
		res.Content, res.Base = r.Content, base
		return res, nil
	}
	mode := keptMode(&t.st)
	err = recordStaged(o, func() ([]PathChange, error) {
		before := PathState{Kind: StateFile, Mode: t.st.Mode & 0o7777, Size: int64(len(content)), Data: content}
		return []PathChange{{Path: rel, Before: before, After: PathState{Kind: StateFile, Mode: mode, Size: int64(len(r.Content)), Data: r.Content}}}, nil
	}, func() (*staged, error) { return stage(t.top(), t.name, rel, bytes.NewReader(r.Content), mode) })
	if err != nil {
		return nil, err
	}
	return res, nil
}

// editError gives package edit's errors their codes.
func editError(err error) error {
	var (
		syn *edit.SyntaxError
		nm  *edit.NoMatchError
		ind *edit.IndentError
		amb *edit.AmbiguousError
	)
	switch {
	case errors.As(err, &syn):
		return &Error{Code: CodeEditSyntax, Message: syn.Error() + "; nothing was written", Err: err}
	case errors.As(err, &nm) && len(nm.Closest) == 0:
		return &Error{Code: CodeEditNoMatch, Message: nm.Error() + "; nothing was written", Err: err}
	case errors.As(err, &nm):
		return withLines(nm.Summary(), "the closest lines", nm.Block, nm.Closest, err)
	case errors.As(err, &ind):
		return withLines(ind.Summary(), "the lines it matched", ind.Block, ind.Closest, err)
	case errors.As(err, &amb):
		return &Error{Code: CodeEditAmbiguous, Message: amb.Error() + "; nothing was written", Err: err}
	}
	return err
}

// withLines is the EDIT_NO_MATCH error of a block whose SEARCH cannot be
// applied, with the lines of the file to copy from as its Detail.
func withLines(summary, what string, block int, lines []edit.Line, err error) *Error {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%6d  %s\n", l.N, l.Text)
	}
	msg := summary + "; nothing was written; copy the lines exactly from the file as it is now and retry the whole edit; " + what + ", with their numbers"
	if block > 1 {
		msg += " as the earlier blocks left them"
	}
	return &Error{Code: CodeEditNoMatch, Message: msg + ", follow", Detail: b.String(), Err: err}
}

// Edit implements Sandbox.
func (l *Local) Edit(ctx context.Context, p string, body []byte) (*EditResult, error) {
	return l.ws.EditWith(p, body, OptionsFrom(ctx))
}
