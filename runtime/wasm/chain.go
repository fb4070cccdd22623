package wasm

import (
	"context"
	"fmt"
	"sync"
)

// Chain is the configured policies and transforms, in order. Start
// compiles them in the background; every call waits for that.
type Chain struct {
	ready      chan struct{}
	err        error
	policies   []*Module
	transforms []*Module
}

// Start compiles and instantiates the modules in the background and
// returns at once. With no module it returns nil: no wazero runtime is
// made at all.
func Start(ctx context.Context, policies, transforms []Spec) *Chain {
	if len(policies) == 0 && len(transforms) == 0 {
		return nil
	}
	c := &Chain{ready: make(chan struct{})}
	go func() {
		defer close(c.ready)
		var mu sync.Mutex
		var wg sync.WaitGroup
		load := func(specs []Spec, dst []*Module, want string) {
			for i, s := range specs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m, err := Compile(ctx, s)
					if err == nil && want == ExportPolicy && !m.HasPolicy() {
						err = fmt.Errorf("guest %s: configured as a policy but does not export %s", m.Name(), ExportPolicy)
					}
					if err == nil && want == ExportTransform && !m.HasTransform() {
						err = fmt.Errorf("guest %s: configured as a transform but does not export %s", m.Name(), ExportTransform)
					}
					if err == nil {
						err = m.Instantiate(ctx)
					}
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						if c.err == nil {
							c.err = err
						}
						return
					}
					dst[i] = m
				}()
			}
		}
		c.policies = make([]*Module, len(policies))
		c.transforms = make([]*Module, len(transforms))
		load(policies, c.policies, ExportPolicy)
		load(transforms, c.transforms, ExportTransform)
		wg.Wait()
	}()
	return c
}

// Wait waits for the modules and returns the first error of loading them.
func (c *Chain) Wait() error {
	<-c.ready
	return c.err
}

// Verdict is the outcome of the policies for one operation.
type Verdict struct {
	Allowed  bool
	Argument string // the argument to use: the original, or a rewrite
	Decider  string // the module that denied or last rewrote
	Reason   string
	Failed   bool // a guest failed: the denial is POLICY_ERROR, not POLICY_DENIED
}

// Decide runs the policies in order. The first deny wins; a rewrite
// changes the argument the following policies, and then the sandbox, see.
// A guest that fails denies (fail closed).
func (c *Chain) Decide(ctx context.Context, req Request) Verdict {
	v := Verdict{Allowed: true, Argument: argument(req)}
	if err := c.Wait(); err != nil {
		return Verdict{Failed: true, Reason: err.Error()}
	}
	for _, m := range c.policies {
		rep, err := m.Decide(ctx, req)
		if err != nil {
			return Verdict{Failed: true, Decider: m.Name(), Reason: err.Error()}
		}
		switch rep.Decision {
		case "deny":
			return Verdict{Decider: m.Name(), Reason: rep.Reason}
		case "rewrite":
			v.Argument, v.Decider, v.Reason = rep.Argument, m.Name(), rep.Reason
			setArgument(&req, rep.Argument)
		}
	}
	return v
}

func argument(r Request) string {
	switch {
	case r.Command != "":
		return r.Command
	case r.Query != "":
		return r.Query
	}
	return r.Path
}

func setArgument(r *Request, a string) {
	switch r.Op {
	case "exec":
		r.Command = a
	case "search":
		r.Query = a
	default:
		// The rewritten path is not resolved yet: the policies after the
		// rewrite see no Resolved, and the host resolves the new path for
		// the operation itself.
		r.Path, r.Resolved = a, ""
	}
}

// HasPolicies reports whether any policy is configured.
func (c *Chain) HasPolicies() bool { return c != nil && len(c.policies) > 0 }

// HasTransforms reports whether any transform is configured.
func (c *Chain) HasTransforms() bool { return c != nil && len(c.transforms) > 0 }

// Transform runs the transforms in order over output and returns the
// result and the total number of changes. A guest that fails is an error:
// the caller must not show the untransformed output.
func (c *Chain) Transform(ctx context.Context, req TransformRequest) (string, int, string, error) {
	if err := c.Wait(); err != nil {
		return "", 0, "", err
	}
	total := 0
	var by string
	for _, m := range c.transforms {
		out, n, err := m.Transform(ctx, req)
		if err != nil {
			return "", 0, m.Name(), err
		}
		if n > 0 {
			by = m.Name()
		}
		req.Output = out
		total += n
	}
	return req.Output, total, by, nil
}

// Close frees every module.
func (c *Chain) Close() {
	if c == nil {
		return
	}
	<-c.ready
	ctx := context.Background()
	for _, m := range append(c.policies, c.transforms...) {
		if m != nil {
			m.Close(ctx)
		}
	}
}
