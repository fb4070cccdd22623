package serve

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/audit"
	"github.com/llm-runtime/llm-runtime/sandbox"
	"github.com/llm-runtime/llm-runtime/serve/wire"
)

// panicOn wraps a sandbox so that an <open> of name panics, as a bug
// would, after the sandbox has read it.
type panicOn struct {
	sandbox.Sandbox
	name string
}

func (p panicOn) Open(ctx context.Context, path string) (*sandbox.File, error) {
	f, err := p.Sandbox.Open(ctx, path)
	if path == p.name {
		panic("boom: <open " + path + ">")
	}
	return f, err
}

// TestAPanicEndsItsSessionAlone: a panic in one session ends that session
// with an internal error (End "internal"), writes its audit record and
// the stack to the daemon's error log; another session on the same pool
// goes on, the next run gets a new pool, and the daemon serves on.
func TestAPanicEndsItsSessionAlone(t *testing.T) {
	sessionHook = func(sb sandbox.Sandbox) sandbox.Sandbox { return panicOn{sb, "boom.txt"} }
	t.Cleanup(func() { sessionHook = nil })
	root, auditDir := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("A\n"), 0o644)
	os.WriteFile(filepath.Join(root, "boom.txt"), []byte("B\n"), 0o644)
	errs, log := &logBuf{}, &logBuf{}
	d, err := Listen(Options{Socket: filepath.Join(t.TempDir(), "s.sock"), Build: "test", Logf: log.logf, Errorf: errs.logf})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(context.Background()) }()
	defer func() {
		d.Stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	// A session that stays open on the pool.
	pr, pw := io.Pipe()
	held := &lockedBuffer{}
	hs, err := (&wire.Run{Socket: d.Socket(), Build: "test", Request: localRun(t, root, auditDir), Timeout: 10 * time.Second, In: pr, Out: held}).Start()
	if err != nil {
		t.Fatal(err)
	}
	heldEnd := make(chan wire.End, 1)
	go func() {
		end, err := hs.Wait(context.Background())
		if err != nil {
			t.Error(err)
		}
		heldEnd <- end
	}()
	pw.Write([]byte("<open a.txt>"))

	out, pool, end := runOnce(t, d.Socket(), localRun(t, root, auditDir), "<open a.txt> <open boom.txt> <open a.txt>")
	if pool != "warm" || end.Kind != "internal" || !strings.Contains(end.Message, "internal error (a bug of llm-runtime) in a session on "+root+": boom: <open boom.txt>") || end.Session == "" {
		t.Fatalf("pool %s, end %+v", pool, end)
	}
	if !strings.Contains(out, "=== FILE: a.txt ===\nA\n") || strings.Contains(out, "B\n") || strings.Contains(out, "=== END ===") {
		t.Fatalf("output:\n%s", out)
	}
	if e := errs.String(); !strings.Contains(e, "boom: <open boom.txt>; the daemon serves on") || !strings.Contains(e, "goroutine ") || !strings.Contains(e, "panicOn.Open") {
		t.Fatalf("error log:\n%s", e)
	}
	// Its audit session says how it ended.
	r, err := audit.OpenReader(auditDir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var recs []*audit.Record
	r.Each(audit.Filter{Session: end.Session}, func(rec *audit.Record) error { recs = append(recs, rec); return nil })
	r.Close()
	if n := len(recs); n != 2 || recs[1].Op != "session" || recs[1].Outcome != audit.Error || recs[1].Code != sandbox.CodeInternal || !strings.Contains(recs[1].Reason, "boom") {
		t.Fatalf("audit records of the session: %d %+v", n, recs)
	}

	// The held session goes on, on the old pool, to its end.
	pw.Write([]byte(" <open a.txt>"))
	pw.Close()
	if end := <-heldEnd; end.Kind != "" || end.Commands != 2 || strings.Count(held.String(), "=== FILE: a.txt ===") != 2 {
		t.Fatalf("the held session: %+v\n%s", end, held.String())
	}
	// The next run gets a new pool; the old one closed after its last session.
	if out, pool, end := runOnce(t, d.Socket(), localRun(t, root, auditDir), "<open a.txt>"); pool != "new" || end.Kind != "" || !strings.Contains(out, "\nA\n") {
		t.Fatalf("the next run: pool %s, end %+v\n%s", pool, end, out)
	}
	// A session's end reaches its client before the daemon counts it
	// ended: a wait for that, not a speed check.
	deadline := time.Now().Add(time.Minute)
	for d.Status().Sessions != 0 || !strings.Contains(log.String(), "Pool closed: "+root+" (local): a session on it ended in an internal error") {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v; the old pool was not closed:\n%s", d.Status(), log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := d.Status(); len(st.Pools) != 1 || st.Served != 3 || st.Pools[0].Runs != 1 {
		t.Fatalf("status: %+v", st)
	}
}
