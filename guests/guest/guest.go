//go:build wasip1

// Package guest is the core of llm-runtime's guest ABI for Go guests: the
// ABI version marker, the allocator, and the request and reply types.
// A guest imports github.com/llm-runtime/llm-runtime/guests/policy or
// .../guests/transform (or both) and registers its handler in init; see
// guests/README.md.
package guest

import "unsafe"

// ABIVersion is the version of the ABI this package implements.
const ABIVersion = 2

// Request is what a policy sees of an operation.
type Request struct {
	Op   string `json:"op"`             // open, write (an edit too), list, search, exec, delete or move
	Path string `json:"path,omitempty"` // open, write, delete, and move's source: relative to the repository, as the model wrote it
	// Resolved, for open and write: the repository-relative path of the
	// file the operation touches, links, ".", ".." and "//" resolved
	// (since llm-runtime 0.2; ABI 1 still: older hosts leave it empty).
	// The host refuses the operation if it would touch another file by the
	// time it runs, so a decision on Resolved holds. Decide on both.
	Resolved string `json:"resolved,omitempty"`
	Command  string `json:"command,omitempty"` // exec
	Query    string `json:"query,omitempty"`   // search
	Content  string `json:"content,omitempty"` // write
	// To and ToResolved, for move: where it goes, as written and resolved
	// (ABI 2; a guest of ABI 1 is never asked about delete and move: the
	// host denies them, as a policy that knows no such op would most
	// likely allow it).
	To         string `json:"to,omitempty"`
	ToResolved string `json:"to_resolved,omitempty"`
	// Edit marks a write that is an <edit>: Content is then the whole file
	// as the edit would leave it (since llm-runtime 0.3; ABI 1 still).
	Edit    bool   `json:"edit,omitempty"`
	Session string `json:"session,omitempty"`
	Config  []byte `json:"config,omitempty"` // the module's configuration
}

// Decision is a policy's answer.
type Decision struct {
	Decision string `json:"decision"` // allow, deny or rewrite
	Reason   string `json:"reason,omitempty"`
	Argument string `json:"argument,omitempty"` // for rewrite: the new path, command or query
}

// Allow lets the operation run.
func Allow() Decision { return Decision{Decision: "allow"} }

// Deny refuses the operation; the reason is shown to the model.
func Deny(reason string) Decision { return Decision{Decision: "deny", Reason: reason} }

// Rewrite runs the operation with a new argument instead.
func Rewrite(argument, reason string) Decision {
	return Decision{Decision: "rewrite", Argument: argument, Reason: reason}
}

// TransformRequest is what a transform sees of a result.
type TransformRequest struct {
	Op      string `json:"op"`
	Path    string `json:"path,omitempty"`
	Command string `json:"command,omitempty"`
	Query   string `json:"query,omitempty"`
	Output  string `json:"output"` // the text the model would see
	Session string `json:"session,omitempty"`
	Config  []byte `json:"config,omitempty"`
}

// TransformResult is a transform's answer.
type TransformResult struct {
	Output  string `json:"output"`
	Changes int    `json:"changes"`
}

var (
	in  []byte // the host writes each request here
	out []byte // the last reply; valid until the next call
)

//go:wasmexport llmrt_abi_version
func abiVersion() int32 { return ABIVersion }

//go:wasmexport llmrt_alloc
func alloc(size int32) int32 {
	if int(size) > cap(in) {
		in = make([]byte, size)
	}
	in = in[:size]
	if size == 0 {
		in = make([]byte, 1)[:0]
		return int32(uintptr(unsafe.Pointer(unsafe.SliceData(in))))
	}
	return int32(uintptr(unsafe.Pointer(&in[0])))
}

func reply(b []byte) int64 {
	out = b
	return int64(uintptr(unsafe.Pointer(&out[0])))<<32 | int64(len(out))
}

// CallPolicy decodes the request at ptr, runs fn and returns the packed
// reply. The policy package uses it; guests do not.
func CallPolicy(ptr, size int32, fn func(Request) Decision) int64 {
	req, err := decodeRequest(in[:size])
	d := Deny("guest: " + errSyntax.Error())
	if err == nil {
		d = fn(req)
	}
	return reply(d.appendJSON(out[:0]))
}

// CallTransform is CallPolicy for transforms. A request that does not
// decode gets a reply without an output, which the host refuses.
func CallTransform(ptr, size int32, fn func(TransformRequest) TransformResult) int64 {
	req, err := decodeTransformRequest(in[:size])
	if err != nil {
		return reply(append(out[:0], `{"error":"bad request"}`...))
	}
	return reply(fn(req).appendJSON(out[:0]))
}
