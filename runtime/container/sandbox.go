package container

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/pool"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// PoolOptions are the pooling guide's settings, plus the spare delay and
// the acquire timeout.
type PoolOptions struct {
	Enabled             bool
	Size                int
	MaxUsesPerContainer int
	IdleTimeout         time.Duration
	HealthCheckInterval time.Duration
	StartupContainers   int
	SpareDelay          time.Duration
	AcquireTimeout      time.Duration
}

// Options configure a Sandbox.
type Options struct {
	Root    string // the repository on the host
	Limits  sandbox.Limits
	Image   string // from EnsureImage
	Pool    PoolOptions
	Labels  map[string]string            // extra labels on every container (tests name themselves)
	OnEvent func(pool.Event[*Container]) // pool activity, for --verbose
	Exec    *ExecOptions                 // nil: <exec> answers EXEC_DISABLED
	// Transport is how the pool's containers are reached: TransportSocket
	// (the default: a unix socket past dockerd, the attach stream where it
	// cannot work) or TransportAttach.
	Transport string
	// Workspace is WorkspaceBind (the default) or WorkspaceCopy: a replica
	// in a volume, pushed from a copy kept in StateDir
	// (paths.ExecStateDir's default when empty), holding at most CopyMaxSize bytes of content.
	Workspace   string
	StateDir    string
	CopyMaxSize int64
	OnPush      func(PushStats) // each push that changed the replica, for --verbose
}

// DefaultCopyMaxSize is the default of Options.CopyMaxSize.
const DefaultCopyMaxSize = 2 << 30

// Sandbox runs file operations in Docker containers: pooled containers
// that serve many operations each, or, with the pool disabled, a fresh
// container per operation (the baseline the pool is measured against).
type Sandbox struct {
	d    *Docker
	opts Options
	spec Spec
	pool *pool.Pool[*Container] // nil when unpooled
	destroyer
	exec    *execRunner // nil when exec is disabled
	replica *replica    // copy mode's; nil in bind mode
}

// NewSandbox starts the sandbox. With pooling on, it returns at once while
// the start-up containers are created in parallel; the first operation
// runs as soon as one is ready.
func NewSandbox(d *Docker, opts Options) (*Sandbox, error) {
	s := &Sandbox{d: d, opts: opts, spec: Spec{
		Image:     opts.Image,
		Workspace: opts.Root,
		Limits:    opts.Limits,
		Role:      "io",
		Labels:    opts.Labels,
		Socket:    opts.Transport != TransportAttach,
	}}
	switch opts.Workspace {
	case "", WorkspaceBind:
	case WorkspaceCopy:
		if opts.Exec != nil {
			x := *opts.Exec
			x.Copy, x.CopyMaxSize = opts.Image, opts.CopyMaxSize
			opts.Exec = &x
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r, err := openReplica(ctx, d, opts.Root, opts.StateDir, opts.Image, opts.Limits, cmp.Or(opts.CopyMaxSize, DefaultCopyMaxSize), opts.Labels)
		cancel()
		if err != nil {
			return nil, err
		}
		r.onPush = opts.OnPush
		r.rests(restAfter(opts.Pool.IdleTimeout))
		s.replica = r
		s.spec.Workspace, s.spec.Volume = "", r.volume
	default:
		return nil, fmt.Errorf("unknown workspace mode %q (bind or copy)", opts.Workspace)
	}
	if opts.Pool.Enabled {
		p, err := pool.New(pool.Config[*Container]{
			Create:              func(ctx context.Context) (*Container, error) { return d.Start(ctx, s.spec) },
			Destroy:             s.destroyer.destroy,
			Check:               func(ctx context.Context, c *Container) error { _, err := c.Ping(ctx); return err },
			MaxSize:             opts.Pool.Size,
			MinSize:             opts.Pool.StartupContainers,
			SpareDelay:          opts.Pool.SpareDelay,
			MaxUses:             opts.Pool.MaxUsesPerContainer,
			IdleTimeout:         opts.Pool.IdleTimeout,
			HealthCheckInterval: opts.Pool.HealthCheckInterval,
			AcquireTimeout:      opts.Pool.AcquireTimeout,
			OnEvent:             opts.OnEvent,
		})
		if err != nil {
			return nil, err
		}
		s.pool = p
	}
	if opts.Exec != nil {
		xo := *opts.Exec
		xo.Rest = cmp.Or(xo.Rest, restAfter(opts.Pool.IdleTimeout))
		x, err := newExecRunner(d, opts.Root, opts.Limits, opts.Labels, xo)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.exec = x
	}
	return s, nil
}

// Stat returns the pool's statistics (zero when unpooled).
func (s *Sandbox) Stat() pool.Stat {
	if s.pool == nil {
		return pool.Stat{}
	}
	return s.pool.Stat()
}

// Close destroys every container and waits until they are gone.
func (s *Sandbox) Close() error {
	if s.pool != nil {
		s.destroyer.closing.Store(true)
		s.pool.Close()
	}
	if s.exec != nil {
		s.exec.close()
	}
	if s.replica != nil {
		s.replica.close(true)
	}
	return nil
}

// Volume is the replica's volume in copy mode, "" in bind mode.
func (s *Sandbox) Volume() string {
	if s.replica == nil {
		return ""
	}
	return s.replica.volume
}

// LastPush says what copy mode's last push to the replica cost.
func (s *Sandbox) LastPush() PushStats {
	if s.replica == nil {
		return PushStats{}
	}
	s.replica.mu.Lock()
	defer s.replica.mu.Unlock()
	return s.replica.last
}

// read runs a read-only operation in a container, on a replica brought up
// to date first in copy mode; it is retried like Open.
func (s *Sandbox) read(ctx context.Context, fn func(c *Container) error) error {
	return s.do(ctx, true, func(c *Container) error {
		if s.replica != nil {
			if err := s.replica.refresh(ctx, c.Conn); err != nil {
				return err
			}
		}
		return fn(c)
	})
}

// do runs fn in a container. A container whose stream broke is destroyed,
// never reused; retry says whether fn is safe to run again in another
// container when that happens. Every idle container may have died at once
// (docker kill, a daemon restart), so an idempotent operation is tried on
// up to size+1 containers, the last of them freshly created.
func (s *Sandbox) do(ctx context.Context, retry bool, fn func(c *Container) error) error {
	for attempt := 0; ; attempt++ {
		err, broken := s.once(ctx, fn)
		if !broken || !retry || attempt > s.opts.Pool.Size || ctx.Err() != nil {
			return err
		}
	}
}

func (s *Sandbox) once(ctx context.Context, fn func(c *Container) error) (err error, broken bool) {
	timing := sandbox.TimingFrom(ctx)
	start := time.Now()
	if s.pool == nil {
		c, err := s.d.Start(ctx, s.spec)
		timing.Wait += time.Since(start)
		if err != nil {
			return unavailable(err), false
		}
		timing.Container, timing.Pooled = c.Name, false
		defer c.Destroy()
		err = fn(c)
		return err, c.Err() != nil
	}
	r, err := s.acquire(ctx)
	timing.Wait += time.Since(start)
	if err != nil {
		return err, false
	}
	c := r.Value()
	timing.Container, timing.Pooled = c.Name, true
	// A panic in fn (a bug, which llm-runtime serve recovers from, ending
	// that session alone) leaves the container in a state no one knows:
	// it is destroyed, never kept in use for ever or handed out again.
	returned := false
	defer func() {
		if !returned {
			r.Destroy()
		}
	}()
	err = fn(c)
	returned = true
	if c.Err() != nil {
		r.Destroy()
		return err, true
	}
	r.Release()
	return err, false
}

// acquire returns a pooled container that has not stopped. A container
// found dead while idle was never sent anything, so skipping it loses no
// operation, writes included.
func (s *Sandbox) acquire(ctx context.Context) (*pool.Resource[*Container], error) {
	for attempt := 0; ; attempt++ {
		r, err := s.pool.Acquire(ctx)
		switch {
		case errors.Is(err, pool.ErrExhausted):
			// Full and busy, or waiting on a container still being
			// created: the advice differs.
			if st := s.pool.Stat(); st.InUse < s.opts.Pool.Size {
				return nil, sandbox.Errorf(CodePoolExhausted, "%v: none was ready within container_pool.acquire_timeout (%s), %d being created; Docker is slow to start containers (a loaded machine?): raise container_pool.acquire_timeout",
					err, s.opts.Pool.AcquireTimeout, st.Creating)
			}
			return nil, sandbox.Errorf(CodePoolExhausted, "%v (container_pool.size is %d; raise it, or container_pool.acquire_timeout)", err, s.opts.Pool.Size)
		case errors.Is(err, pool.ErrClosed):
			return nil, sandbox.Errorf(sandbox.CodeCanceled, "the sandbox is closed")
		case err != nil:
			return nil, unavailable(err)
		}
		select {
		case <-r.Value().Exited():
			r.Destroy()
			if attempt > s.opts.Pool.Size {
				return nil, sandbox.Errorf(CodeDockerUnavailable, "sandbox containers keep stopping")
			}
		default:
			return r, nil
		}
	}
}

func unavailable(err error) error {
	var se *sandbox.Error
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return sandbox.AsError(err)
	}
	return &sandbox.Error{Code: CodeDockerUnavailable, Message: fmt.Sprintf("no sandbox container: %v", err), Err: err}
}

// Open implements sandbox.Sandbox. A read is retried once in a fresh
// container if its container dies under it.
func (s *Sandbox) Open(ctx context.Context, path string) (f *sandbox.File, err error) {
	err = s.read(ctx, func(c *Container) error {
		f, err = c.Open(ctx, path)
		return err
	})
	return f, err
}

// Write implements sandbox.Sandbox. In copy mode it is applied on the
// host, to the repository, by the rules of a write; the replica gets it
// with the next push. A write is never retried: if the
// container dies mid-write the error says so, and the file is either the
// old one or the new one, never a mix (the write is a rename).
func (s *Sandbox) Write(ctx context.Context, path string, content []byte) (w *sandbox.WriteResult, err error) {
	if s.replica != nil {
		return s.replica.ws.WriteWith(path, content, sandbox.OptionsFrom(ctx))
	}
	err = s.do(ctx, false, func(c *Container) error {
		w, err = c.Write(ctx, path, content)
		return err
	})
	return w, err
}

// Edit implements sandbox.Sandbox. It is never retried, like Write.
func (s *Sandbox) Edit(ctx context.Context, path string, body []byte) (r *sandbox.EditResult, err error) {
	if s.replica != nil {
		return s.replica.ws.EditWith(path, body, sandbox.OptionsFrom(ctx))
	}
	err = s.do(ctx, false, func(c *Container) error {
		r, err = c.Edit(ctx, path, body)
		return err
	})
	return r, err
}

// Delete implements sandbox.Sandbox, in copy mode on the host like Write;
// it is never retried.
func (s *Sandbox) Delete(ctx context.Context, path string) (r *sandbox.DeleteResult, err error) {
	if s.replica != nil {
		return s.replica.ws.DeleteWith(path, sandbox.OptionsFrom(ctx))
	}
	err = s.do(ctx, false, func(c *Container) error {
		r, err = c.Delete(ctx, path)
		return err
	})
	return r, err
}

// Move implements sandbox.Sandbox, in copy mode on the host like Write;
// it is never retried.
func (s *Sandbox) Move(ctx context.Context, src, dst string) (r *sandbox.MoveResult, err error) {
	if s.replica != nil {
		return s.replica.ws.MoveWith(src, dst, sandbox.OptionsFrom(ctx))
	}
	err = s.do(ctx, false, func(c *Container) error {
		r, err = c.Move(ctx, src, dst)
		return err
	})
	return r, err
}

// List implements sandbox.Sandbox; it is retried like Open.
func (s *Sandbox) List(ctx context.Context, path string, recursive bool) (r *sandbox.ListResult, err error) {
	err = s.read(ctx, func(c *Container) error {
		r, err = c.List(ctx, path, recursive)
		return err
	})
	return r, err
}

// Search implements sandbox.Sandbox; it is retried like Open.
func (s *Sandbox) Search(ctx context.Context, q parser.Query) (r *sandbox.SearchResult, err error) {
	err = s.read(ctx, func(c *Container) error {
		r, err = c.Search(ctx, q)
		return err
	})
	return r, err
}

// Resolve implements sandbox.Sandbox; it is retried like Open.
func (s *Sandbox) Resolve(ctx context.Context, path string) (rel string, err error) {
	err = s.read(ctx, func(c *Container) error {
		rel, err = c.Resolve(ctx, path)
		return err
	})
	return rel, err
}

// Exec implements sandbox.Sandbox.
func (s *Sandbox) Exec(ctx context.Context, command string) (*sandbox.ExecResult, error) {
	if s.exec == nil {
		return nil, sandbox.Errorf(sandbox.CodeExecDisabled, "exec is disabled; enable it with exec.enabled: true (or --exec)")
	}
	return s.exec.run(ctx, command)
}
