// Package wasm runs policy and transform guests: WebAssembly modules, in
// any language, that see each operation before it runs (policy: allow,
// deny or rewrite it) and each result before the model does (transform:
// rewrite it, for example to mask secrets). It is built on wazero.
//
// # ABI, version 2
//
// A guest exports:
//
//	llmrt_abi_version() -> i32              2 (or 1: see below)
//	llmrt_alloc(size i32) -> i32            a buffer of size bytes in guest memory
//	llmrt_policy(ptr i32, len i32) -> i64   optional: a policy decision
//	llmrt_transform(ptr i32, len i32) -> i64 optional: a transform
//
// and at least one of llmrt_policy and llmrt_transform. A reactor module
// (one with _initialize, as Go's -buildmode=c-shared makes) is initialised
// once. For each call the host asks llmrt_alloc for a buffer, writes the
// request there as JSON, and calls the function with its address and
// length; the function returns the reply's address in the high 32 bits and
// its length in the low 32 bits. The reply must stay valid until the next
// call into the guest.
//
// A policy request:
//
//	{"abi":2, "op":"write", "path":"src/main.go", "content":"...",
//	 "session":"20261127T140000Z-1a2b3c4d", "config":{...}}
//
// with "command" for exec and "query" for search instead of "path"; "config"
// is the module's own configuration from llm-runtime's configuration file.
// Ops are open, write (an edit too, "edit":true), list, search, exec, and
// since ABI 2 delete ("path"), move ("path", "resolved", "to",
// "to_resolved"), diff and undo ("path": the argument, a path or a
// checkpoint's number, or none). A guest that returns ABI version 1 was built before
// delete and move existed: it is never asked about them, and they are
// denied ("fail closed"), since a policy that knows no such op would
// most likely allow it by default.
// The reply is {"decision":"allow"}, {"decision":"deny","reason":"..."} or
// {"decision":"rewrite","argument":"...","reason":"..."}, where argument
// replaces the path, command or query.
//
// A transform request: {"abi":2, "op":"open", "path":"...", "output":"...",
// "session":"...", "config":{...}}; the reply: {"output":"...","changes":N}.
//
// # Safety
//
// Guests get no file system, no environment and no arguments: everything
// they need is in the request. Each call has a deadline (default 100 ms) and
// each module a memory limit (default 64 MiB). A trap, a timeout, running
// out of memory or a reply that does not parse is an error, which the
// caller turns into a denial (fail closed); the instance is thrown away and
// a fresh one made.
//
// # Speed
//
// Modules are compiled once per process, in the background, with wazero's
// compilation cache on disk, then instantiated once and called many times.
// A host with no module creates no wazero runtime at all.
package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/llm-runtime/llm-runtime/internal/paths"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// ABIVersion is the guest ABI this host speaks; it also runs guests of
// ABI 1 (see the package doc).
const ABIVersion = 2

// Export names.
const (
	ExportABIVersion = "llmrt_abi_version"
	ExportAlloc      = "llmrt_alloc"
	ExportPolicy     = "llmrt_policy"
	ExportTransform  = "llmrt_transform"
)

// Defaults of Spec.
const (
	DefaultTimeout     = 100 * time.Millisecond
	DefaultMemoryLimit = 64 << 20
)

// Spec names a module and how to run it.
type Spec struct {
	Path        string
	Config      json.RawMessage // the module's configuration, passed in every request
	Timeout     time.Duration   // per call; default 100 ms
	MemoryLimit int64           // bytes; default 64 MiB
}

// Name is the module's name in decisions and errors: its file name
// without .wasm.
func (s Spec) Name() string { return strings.TrimSuffix(filepath.Base(s.Path), ".wasm") }

// Request is a policy request.
type Request struct {
	ABI  int    `json:"abi"`
	Op   string `json:"op"`
	Path string `json:"path,omitempty"`
	// Resolved is the repository-relative path an open or write touches,
	// links resolved; the operation is refused if it would touch another.
	Resolved string `json:"resolved,omitempty"`
	Command  string `json:"command,omitempty"`
	Query    string `json:"query,omitempty"`
	Content  string `json:"content,omitempty"`
	// To and ToResolved are a move's destination, as written and
	// resolved as Resolved is (ABI 2).
	To         string `json:"to,omitempty"`
	ToResolved string `json:"to_resolved,omitempty"`
	// Edit marks a write that is an <edit>: Content is the file as the
	// edit would leave it, so a guest that judges writes judges edits too.
	Edit    bool            `json:"edit,omitempty"`
	Session string          `json:"session,omitempty"`
	Config  json.RawMessage `json:"config,omitempty"`
}

// Reply is a policy reply.
type Reply struct {
	Decision string `json:"decision"` // allow, deny or rewrite
	Reason   string `json:"reason,omitempty"`
	Argument string `json:"argument,omitempty"` // for rewrite
}

// TransformRequest is a transform request.
type TransformRequest struct {
	ABI     int             `json:"abi"`
	Op      string          `json:"op"`
	Path    string          `json:"path,omitempty"`
	Command string          `json:"command,omitempty"`
	Query   string          `json:"query,omitempty"`
	Output  string          `json:"output"`
	Session string          `json:"session,omitempty"`
	Config  json.RawMessage `json:"config,omitempty"`
}

// TransformReply is a transform reply.
type TransformReply struct {
	Output  *string `json:"output"`
	Changes int     `json:"changes"`
}

// Module is a compiled guest with at most one live instance.
type Module struct {
	spec     Spec
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	exports  map[string]bool

	mu   sync.Mutex
	inst api.Module
	abi  int32                   // the instance's ABI version
	fns  map[string]api.Function // the instance's exports, looked up once: each lookup builds a call engine
}

var (
	cacheOnce sync.Once
	cache     wazero.CompilationCache
)

func compilationCache() wazero.CompilationCache {
	cacheOnce.Do(func() {
		if dir := paths.GuestCacheDir(); dir != "" {
			if c, err := wazero.NewCompilationCacheWithDir(dir); err == nil {
				cache = c
				return
			}
		}
		cache = wazero.NewCompilationCache()
	})
	return cache
}

// Compile compiles the module at spec.Path and checks its ABI.
func Compile(ctx context.Context, spec Spec) (*Module, error) {
	if spec.Timeout <= 0 {
		spec.Timeout = DefaultTimeout
	}
	if spec.MemoryLimit <= 0 {
		spec.MemoryLimit = DefaultMemoryLimit
	}
	code, err := os.ReadFile(spec.Path)
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", spec.Name(), err)
	}
	pages := uint32(max(1, spec.MemoryLimit/65536))
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(pages).
		WithCompilationCache(compilationCache()))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	compiled, err := rt.CompileModule(ctx, code)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("guest %s: not a valid WebAssembly module: %w", spec.Name(), err)
	}
	m := &Module{spec: spec, rt: rt, compiled: compiled, exports: map[string]bool{}}
	for name := range compiled.ExportedFunctions() {
		m.exports[name] = true
	}
	if err := m.checkExports(); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return m, nil
}

func (m *Module) checkExports() error {
	var missing []string
	for _, e := range []string{ExportABIVersion, ExportAlloc} {
		if !m.exports[e] {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("guest %s: does not export %s (see guests/README.md for the ABI)", m.Name(), strings.Join(missing, ", "))
	}
	if !m.HasPolicy() && !m.HasTransform() {
		return fmt.Errorf("guest %s: exports neither %s nor %s", m.Name(), ExportPolicy, ExportTransform)
	}
	return nil
}

// Name is the module's name.
func (m *Module) Name() string { return m.spec.Name() }

// HasPolicy reports whether the module exports llmrt_policy.
func (m *Module) HasPolicy() bool { return m.exports[ExportPolicy] }

// HasTransform reports whether the module exports llmrt_transform.
func (m *Module) HasTransform() bool { return m.exports[ExportTransform] }

// Exports lists the module's exported functions.
func (m *Module) Exports() []string {
	var out []string
	for e := range m.exports {
		out = append(out, e)
	}
	return out
}

// Instantiate makes the module's instance now (it is otherwise made on
// the first call) and checks its ABI version.
func (m *Module) Instantiate(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.instantiateLocked(ctx)
}

func (m *Module) instantiateLocked(ctx context.Context) error {
	if m.inst != nil {
		return nil
	}
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions()
	inst, err := m.rt.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		return fmt.Errorf("guest %s: %w", m.Name(), err)
	}
	if init := inst.ExportedFunction("_initialize"); init != nil {
		ictx, cancel := context.WithTimeout(ctx, 10*m.spec.Timeout+time.Second)
		_, err := init.Call(ictx)
		cancel()
		if err != nil {
			inst.Close(ctx)
			return fmt.Errorf("guest %s: _initialize: %w", m.Name(), err)
		}
	}
	res, err := inst.ExportedFunction(ExportABIVersion).Call(ctx)
	if err != nil {
		inst.Close(ctx)
		return fmt.Errorf("guest %s: %s: %w", m.Name(), ExportABIVersion, err)
	}
	v := int32(res[0])
	if v != ABIVersion && v != 1 {
		inst.Close(ctx)
		return fmt.Errorf("guest %s: ABI version %d; this llm-runtime speaks %d (and 1)", m.Name(), v, ABIVersion)
	}
	m.inst, m.abi = inst, v
	m.fns = map[string]api.Function{}
	for _, name := range []string{ExportAlloc, ExportPolicy, ExportTransform} {
		if f := inst.ExportedFunction(name); f != nil {
			m.fns[name] = f
		}
	}
	return nil
}

// call sends a JSON request to fn and returns its JSON reply. Any failure
// throws the instance away; the next call makes a fresh one.
func (m *Module) call(ctx context.Context, fn string, req []byte) (reply []byte, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer func() {
		if err != nil && m.inst != nil {
			m.inst.Close(context.Background())
			m.inst = nil
		}
	}()
	if err := m.instantiateLocked(ctx); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, m.spec.Timeout)
	defer cancel()
	res, err := m.fns[ExportAlloc].Call(cctx, uint64(len(req)))
	if err != nil {
		return nil, m.explain(err)
	}
	ptr := uint32(res[0])
	mem := m.inst.Memory()
	if mem == nil || !mem.Write(ptr, req) {
		return nil, fmt.Errorf("guest %s: %s returned a buffer outside its memory", m.Name(), ExportAlloc)
	}
	res, err = m.fns[fn].Call(cctx, uint64(ptr), uint64(len(req)))
	if err != nil {
		return nil, m.explain(err)
	}
	rptr, rlen := uint32(res[0]>>32), uint32(res[0])
	b, ok := mem.Read(rptr, rlen)
	if !ok {
		return nil, fmt.Errorf("guest %s: its reply (%d bytes at %#x) is outside its memory", m.Name(), rlen, rptr)
	}
	return append([]byte(nil), b...), nil
}

// explain turns a failed call into an error that says what happened.
func (m *Module) explain(err error) error {
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return fmt.Errorf("guest %s: still running after %s (the per-call deadline)", m.Name(), m.spec.Timeout)
		case sys.ExitCodeContextCanceled:
			return fmt.Errorf("guest %s: cancelled", m.Name())
		}
		return fmt.Errorf("guest %s: exited with code %d (a crash, or out of its %d MiB of memory)", m.Name(), ee.ExitCode(), m.spec.MemoryLimit>>20)
	}
	return fmt.Errorf("guest %s: %v", m.Name(), err)
}

// ABI is the guest's ABI version, once it is instantiated (0 before).
func (m *Module) ABI() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int(m.abi)
}

// newOps are the ops a guest of ABI 1 does not know.
var newOps = map[string]bool{"delete": true, "move": true, "diff": true, "undo": true}

// Decide asks the module's policy about req. A guest of ABI 1 is not
// asked about an op it does not know: it is denied.
func (m *Module) Decide(ctx context.Context, req Request) (Reply, error) {
	if newOps[req.Op] {
		if err := m.Instantiate(ctx); err != nil {
			return Reply{}, err
		}
		m.mu.Lock()
		abi := m.abi
		m.mu.Unlock()
		if abi < 2 {
			return Reply{Decision: "deny", Reason: fmt.Sprintf("the policy speaks ABI %d, which has no %s: it was not asked, and an op a policy does not know is denied (rebuild it with the ABI %d guest package)", abi, req.Op, ABIVersion)}, nil
		}
	}
	req.ABI, req.Config = ABIVersion, m.spec.Config
	in, err := json.Marshal(req)
	if err != nil {
		return Reply{}, err
	}
	out, err := m.call(ctx, ExportPolicy, in)
	if err != nil {
		return Reply{}, err
	}
	var rep Reply
	if err := json.Unmarshal(out, &rep); err != nil {
		return Reply{}, fmt.Errorf("guest %s: a reply that is not JSON: %.80q", m.Name(), out)
	}
	switch rep.Decision {
	case "allow", "deny":
	case "rewrite":
		if rep.Argument == "" {
			return Reply{}, fmt.Errorf("guest %s: a rewrite without an argument", m.Name())
		}
	default:
		return Reply{}, fmt.Errorf("guest %s: decision %q; want allow, deny or rewrite", m.Name(), rep.Decision)
	}
	return rep, nil
}

// Transform asks the module to transform an output.
func (m *Module) Transform(ctx context.Context, req TransformRequest) (string, int, error) {
	req.ABI, req.Config = ABIVersion, m.spec.Config
	in, err := json.Marshal(req)
	if err != nil {
		return "", 0, err
	}
	out, err := m.call(ctx, ExportTransform, in)
	if err != nil {
		return "", 0, err
	}
	var rep TransformReply
	if err := json.Unmarshal(out, &rep); err != nil || rep.Output == nil {
		return "", 0, fmt.Errorf("guest %s: a transform reply without an output: %.80q", m.Name(), out)
	}
	return *rep.Output, rep.Changes, nil
}

// Close frees the module.
func (m *Module) Close(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inst = nil
	return m.rt.Close(ctx)
}
