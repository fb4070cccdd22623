package container

// Copy mode: the sandbox's containers see no directory of the host. Their
// /workspace is a Docker volume, the replica, that the host keeps up to
// date over the agent's own protocol from the mirror's copy of the
// repository (sandbox/mirror.go: what the rules let a sandbox see, kept
// current by inotify). Reads, lists, searches and resolves run in the
// container on the replica; writes and edits are applied on the host, to
// the repository, by the rules of <write> (sandbox.Workspace), and reach
// the replica with the next push. So nothing in a container ever reaches
// the host's repository, and it works where bind mounts cannot: a remote
// Docker host.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/internal/paths"
	"github.com/llm-runtime/llm-runtime/runtime/container/agent"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// Workspaces: how a sandbox container sees the repository.
const (
	WorkspaceBind = "bind" // the repository, bind-mounted
	WorkspaceCopy = "copy" // a replica in a volume, pushed by the host
)

// VolumePrefix starts the name of every volume of ours.
const VolumePrefix = "llm-runtime-ws-"

// On a replica's volume: the repository it copies, and the directory on
// the host of the copy it is pushed from (by whose path it is named).
const (
	LabelRoot  = "io.llm-runtime.root"
	LabelState = "io.llm-runtime.state"
)

// DefaultWorkspace is the workspace mode a Docker daemon gets when none is
// set: bind on this machine's unix socket, copy anywhere else (a bind
// mount there would name a directory of another machine).
func (d *Docker) DefaultWorkspace() string {
	if d.Local() {
		return WorkspaceBind
	}
	return WorkspaceCopy
}

// A push frame carries at most pushBatch bytes of content (a larger file
// goes alone) and pushEntries bytes of entries (its JSON header is at most
// 1 MiB). A file larger than maxPushFile, which one frame cannot carry, is
// left out of the replica.
const (
	pushBatch   = 32 << 20
	pushEntries = 512 << 10
	maxPushFile = 255 << 20
)

// PushStats says what the last push cost: the files it made (directories
// and links included) and removed, the bytes of content it sent, and how
// long it took, the sync of the copy with the repository included.
type PushStats struct {
	Files, Removed int
	Bytes          int64
	Took           time.Duration
	Owned          bool // the volume was new, and was given to this user first
}

// String is the push as --verbose shows it.
func (p PushStats) String() string {
	s := fmt.Sprintf("Replica: pushed %d objects (%s of content), removed %d, in %s", p.Files, sandbox.FormatSize(p.Bytes), p.Removed, p.Took.Round(10*time.Microsecond))
	if p.Owned {
		s += fmt.Sprintf("; the new volume was given to uid %d first", os.Getuid())
	}
	return s
}

// replica keeps a volume, the replica, up to date with a mirror's copy of
// the repository: the workspace of a copy-mode sandbox's containers, or of
// its exec containers (whose commands change it: pull brings their
// changes back into the copy).
type replica struct {
	d        *Docker
	volume   string
	image    string             // the sandbox image, for ownVolume
	ws       *sandbox.Workspace // the repository, for writes and edits
	mirror   *sandbox.Mirror
	dir      string // the mirror's directory, where the record is kept
	maxSize  int64  // the most content the replica may hold
	standIns bool   // excluded names have empty stand-ins
	onPush   func(PushStats)
	idle     *resting // nil: the mirror's owner rests it (exec's)
	// record is what the last run left in the volume, by its own account:
	// an object of the volume that is still what it recorded (Untouched)
	// is taken as pushed; any other is pushed again.
	record map[string]sandbox.CopyEntry

	mu      sync.Mutex
	pushed  map[string]sandbox.CopyEntry // what the volume holds; nil: ask the agent
	changes uint64                       // the mirror's Changes() that pushed matches
	stale   bool                         // a pull changed pushed: push whatever Changes says
	last    PushStats
}

// replicaSlots is how many replicas of one repository one user may use at
// once (by as many runs at the same time).
const replicaSlots = 16

// openCopy opens a copy of the repository at root kept in stateDir
// (paths.ExecStateDir's default when empty) for the rules of limits: the repository's
// workspace, and the first of the mirrors PREFIX-0, PREFIX-1... that no
// other process holds. It returns the repository's state directory too.
func openCopy(stateDir, root string, limits sandbox.Limits, prefix, what string) (base string, ws *sandbox.Workspace, m *sandbox.Mirror, dir string, err error) {
	if stateDir, err = paths.ExecStateDir(stateDir); err != nil {
		return "", nil, nil, "", err
	}
	base = RepoStateDir(stateDir, root)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", nil, nil, "", fmt.Errorf("%s's state: %v", what, err)
	}
	os.Chmod(base, 0o700) // it holds the copy: only its owner may look in (the state directory itself may be shared)
	if b, err := os.ReadFile(filepath.Join(base, "root")); err != nil || string(b) != root+"\n" {
		os.WriteFile(filepath.Join(base, "root"), []byte(root+"\n"), 0o600)
	}
	if ws, err = sandbox.OpenWorkspace(root, limits); err != nil {
		return "", nil, nil, "", err
	}
	var skip []sandbox.FileID
	if id, err := sandbox.IDOf(stateDir); err == nil {
		skip = append(skip, id)
	}
	for i := 0; ; i++ {
		dir = filepath.Join(base, prefix+"-"+strconv.Itoa(i))
		m, err = sandbox.OpenMirror(ws, dir, root, skip)
		if !errors.Is(err, sandbox.ErrMirrorBusy) {
			break
		}
		if i == replicaSlots-1 {
			err = fmt.Errorf("%d runs on this repository are using %s already", replicaSlots, what)
			break
		}
	}
	if err != nil {
		ws.Close()
		return "", nil, nil, "", fmt.Errorf("%s's copy of the repository: %v", what, err)
	}
	return base, ws, m, dir, nil
}

// openReplica opens the copy a copy-mode sandbox pushes from (replica-N in
// the state directory, beside exec's copies) and its volume.
func openReplica(ctx context.Context, d *Docker, root, stateDir, image string, limits sandbox.Limits, maxSize int64, extra map[string]string) (*replica, error) {
	_, ws, m, dir, err := openCopy(stateDir, root, limits, "replica", "copy mode")
	if err != nil {
		return nil, err
	}
	r, err := newReplica(ctx, d, image, ws, m, dir, root, extra)
	if err != nil {
		m.Close()
		ws.Close()
		return nil, err
	}
	r.standIns, r.maxSize = true, maxSize
	return r, nil
}

// rests makes the replica release its mirror's watches after d with no
// refresh.
func (r *replica) rests(d time.Duration) {
	r.idle = newResting(d, func() {
		if r.mu.TryLock() { // else a refresh runs, and sets the timer again when it ends
			r.mirror.Rest()
			r.mu.Unlock()
		}
	})
}

// newReplica is the replica of mirror m, whose directory is dir, in its
// volume, which it creates if it is missing. It takes over what was
// recorded of the volume when the last run closed it (and removes the
// record, so that a crash leaves none).
func newReplica(ctx context.Context, d *Docker, image string, ws *sandbox.Workspace, m *sandbox.Mirror, dir, root string, extra map[string]string) (*replica, error) {
	r := &replica{d: d, image: image, ws: ws, mirror: m, dir: dir, volume: VolumeName(dir), maxSize: DefaultCopyMaxSize}
	if _, err := d.ensureVolume(ctx, r.volume, "replica", root, dir, extra); err != nil {
		return nil, err
	}
	if f, err := os.Open(filepath.Join(dir, "replica")); err == nil {
		var rec map[string]sandbox.CopyEntry
		if gob.NewDecoder(f).Decode(&rec) == nil {
			r.record = rec
		}
		f.Close()
		os.Remove(filepath.Join(dir, "replica"))
	}
	return r, nil
}

// VolumeName names the volume of the replica pushed from dir (a replica-N
// or copy-N directory of the state directory): by this machine, this user
// and dir, so that users and machines sharing a Docker host never share a
// replica.
func VolumeName(dir string) string {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host + "\x00" + strconv.Itoa(os.Getuid()) + "\x00" + dir))
	return VolumePrefix + hex.EncodeToString(sum[:8])
}

// close saves what the volume holds, for the next run, and closes the
// copy: the mirror and, when it is the replica's own, the workspace.
func (r *replica) close(own bool) {
	if r.idle != nil {
		r.idle.busy()
	}
	r.mirror.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pushed != nil {
		var b bytes.Buffer
		if gob.NewEncoder(&b).Encode(r.pushed) == nil {
			tmp := filepath.Join(r.dir, "replica.tmp")
			if os.WriteFile(tmp, b.Bytes(), 0o600) == nil {
				os.Rename(tmp, filepath.Join(r.dir, "replica"))
			}
		}
	}
	if own {
		r.mirror.Close()
		r.ws.Close()
	}
}

// ensureVolume creates the volume name unless it exists, and says whether
// it did.
func (d *Docker) ensureVolume(ctx context.Context, name, role, root, state string, extra map[string]string) (created bool, err error) {
	if _, err := d.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err == nil {
		return false, nil
	} else if !cerrdefs.IsNotFound(err) {
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	labels := d.Labels(role)
	delete(labels, LabelOwnerPID) // it outlives the run
	delete(labels, LabelStarted)
	labels[LabelRoot], labels[LabelState] = root, state
	for k, v := range extra {
		labels[k] = v
	}
	if _, err := d.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: labels}); err != nil {
		return false, fmt.Errorf("%w: creating the volume %s: %v", ErrUnavailable, name, err)
	}
	return true, nil
}

// Volumes lists our volumes on this daemon, optionally only those with the
// label key=value.
func (d *Docker) Volumes(ctx context.Context, key, value string) ([]volume.Volume, error) {
	f := make(client.Filters).Add("label", LabelApp+"=1")
	if key != "" {
		f.Add("label", key+"="+value)
	}
	l, err := d.cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return l.Items, nil
}

// RemoveVolume removes a volume of ours, and says whether there was one;
// one in use by a container is left, with an error.
func (d *Docker) RemoveVolume(ctx context.Context, name string) (bool, error) {
	_, err := d.cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("removing the volume %s: %v", name, err)
	}
	return true, nil
}

// ownVolume gives a new volume's root, which is root's, to this user: a
// one-off container of the sandbox image, as root with CAP_CHOWN alone,
// runs the agent's --own-workspace.
func (d *Docker) ownVolume(ctx context.Context, image, volume string) error {
	err := d.oneOff(ctx, image, []string{"--own-workspace", fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())}, []string{"CHOWN"},
		mount.Mount{Type: mount.TypeVolume, Source: volume, Target: "/workspace"})
	if err != nil {
		return fmt.Errorf("owning the volume %s: %w", volume, err)
	}
	return nil
}

// AgentVolumePrefix starts the name of the volumes that hold the agent
// binary for copy mode's exec containers, by the sandbox image's tag.
const AgentVolumePrefix = "llm-runtime-agent-"

// agentVolume returns the volume that holds the agent of the sandbox image
// (its binary, at llm-runtime), for exec containers of any image to mount
// read-only where nothing of the host can be mounted; the first call for
// an image fills it, with a one-off container of that image, as root with
// no capability (a new volume's root is root's), running the agent's
// --install-agent.
func (d *Docker) agentVolume(ctx context.Context, image string, extra map[string]string) (string, error) {
	_, tag, _ := strings.Cut(image, ":")
	name := AgentVolumePrefix + tag
	created, err := d.ensureVolume(ctx, name, "agent", "", "", extra)
	if err != nil || !created {
		return name, err
	}
	if err := d.oneOff(ctx, image, []string{"--install-agent", "/out"}, nil, mount.Mount{Type: mount.TypeVolume, Source: name, Target: "/out"}); err != nil {
		d.RemoveVolume(context.WithoutCancel(ctx), name)
		return "", fmt.Errorf("filling the volume %s: %w", name, err)
	}
	return name, nil
}

// oneOff runs a container of the sandbox image as root, hardened but for
// the capabilities caps, with args after its entrypoint (the agent) and
// the mounts given, waits for it to exit 0, and removes it.
func (d *Docker) oneOff(ctx context.Context, image string, args, caps []string, mounts ...mount.Mount) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	cfg, hc := oneOffConfig(image, args, caps, mounts, d.Labels("one-off"))
	cr, err := d.cli.ContainerCreate(cctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc})
	if err != nil {
		return fmt.Errorf("%w: creating a container: %v", ErrUnavailable, err)
	}
	defer d.cli.ContainerRemove(context.WithoutCancel(ctx), cr.ID, client.ContainerRemoveOptions{Force: true})
	wait := d.cli.ContainerWait(cctx, cr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := d.cli.ContainerStart(cctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	select {
	case res := <-wait.Result:
		if res.StatusCode != 0 {
			return fmt.Errorf("%w: exit code %d", ErrUnavailable, res.StatusCode)
		}
	case err := <-wait.Error:
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// The limits of a one-off container: it runs the agent binary once, for
// a chown or a copy of itself, and needs little; a flaw in either would
// get no more than this.
const (
	oneOffPIDs   = 16
	oneOffMemory = 64 << 20
)

// oneOffConfig is a one-off container's configuration: root in the
// container (for CAP_CHOWN) with only caps, no network, the profile, a
// read-only root and small limits.
func oneOffConfig(image string, args, caps []string, mounts []mount.Mount, labels map[string]string) (*container.Config, *container.HostConfig) {
	pids := int64(oneOffPIDs)
	return &container.Config{
			Image:           image,
			Cmd:             args,
			Labels:          labels,
			NetworkDisabled: true,
			User:            "0:0",
		}, &container.HostConfig{
			NetworkMode:    "none",
			ReadonlyRootfs: true,
			CapDrop:        []string{"ALL"},
			CapAdd:         caps,
			SecurityOpt:    securityOpts(),
			Resources:      container.Resources{Ulimits: ulimits(), PidsLimit: &pids, Memory: oneOffMemory, MemorySwap: oneOffMemory, NanoCPUs: 1e9},
			Mounts:         mounts,
			LogConfig:      container.LogConfig{Type: "none"},
		}
}

// refresh brings the replica up to date through c: it syncs the mirror
// with the repository (cheap when inotify saw nothing) and, when the copy
// changed since the last push (or this is the first, and the volume may
// hold anything), pushes what differs. A failed push leaves the replica
// unknown, to be listed again by the next.
func (r *replica) refresh(ctx context.Context, c *agent.Conn) error {
	if r.idle != nil {
		r.idle.busy()
		defer r.idle.idle() // after the unlock
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	stop := context.AfterFunc(ctx, r.mirror.Interrupt)
	defer stop()
	if _, err := r.mirror.Sync(); err != nil {
		if e := sandbox.AsError(err); e.Code == sandbox.CodeResourceLimit {
			return e
		}
		return sandbox.Errorf(sandbox.CodeSandboxError, "copy mode: bringing the copy of the repository up to date: %v", err)
	}
	changes := r.mirror.Changes()
	if r.pushed != nil && changes == r.changes && !r.stale {
		return nil
	}
	stats := PushStats{}
	if r.pushed == nil {
		m, owned, err := c.Manifest(ctx)
		if err == nil && !owned && r.d == nil {
			err = sandbox.Errorf(sandbox.CodeSandboxError, "copy mode: the agent cannot write its workspace (a pod's fsGroup must be its user's group)")
		} else if err == nil && !owned {
			stats.Owned = true
			if err = r.d.ownVolume(ctx, r.image, r.volume); err == nil {
				m, owned, err = c.Manifest(ctx)
			}
			if err == nil && !owned {
				err = sandbox.Errorf(sandbox.CodeSandboxError, "copy mode: the volume %s is not this user's", r.volume)
			}
		}
		if err != nil {
			return err
		}
		r.pushed = make(map[string]sandbox.CopyEntry, len(m))
		for _, e := range m {
			if old, ok := r.record[e.Path]; !ok || !old.Untouched(e) {
				e.Mtime = -1 // not known to be what was pushed: push it again
			}
			r.pushed[e.Path] = e
		}
		r.record = nil
	}
	all := r.mirror.Entries(r.standIns)
	want := all[:0]
	var total int64
	for _, e := range all {
		if e.IsFile() && e.Size > maxPushFile {
			continue
		}
		total += e.Size
		want = append(want, e)
	}
	if total > r.maxSize {
		return sandbox.Errorf(sandbox.CodeResourceLimit, "copy mode: the files the sandbox may read come to %s, over sandbox_copy_max_size (%s)", sandbox.FormatSize(total), sandbox.FormatSize(r.maxSize))
	}
	wanted := make(map[string]bool, len(want))
	for _, e := range want {
		wanted[e.Path] = true
	}
	var push agent.Push
	for p := range r.pushed {
		if !wanted[p] {
			push.Remove = append(push.Remove, p)
		}
	}
	// Only the topmost of what goes: the rest goes with it.
	remove := topmost(push.Remove, wanted)
	push.Remove = nil
	var body []byte
	var entries int
	send := func() error {
		if len(push.Remove) == 0 && len(push.Put) == 0 {
			return nil
		}
		made, err := c.Unpack(ctx, push, body)
		if err != nil {
			r.pushed = nil
			return err
		}
		for _, p := range push.Remove {
			for q := range r.pushed {
				if q == p || strings.HasPrefix(q, p+"/") {
					delete(r.pushed, q)
				}
			}
		}
		for _, e := range made {
			r.pushed[e.Path] = e
		}
		stats.Removed += len(push.Remove)
		stats.Files += len(push.Put)
		stats.Bytes += int64(len(body))
		push, body, entries = agent.Push{}, body[:0], 0
		return nil
	}
	for _, p := range remove {
		if entries+len(p)+8 > pushEntries {
			if err := send(); err != nil {
				return err
			}
		}
		entries += len(p) + 8
		push.Remove = append(push.Remove, p)
	}
	for _, e := range want {
		if old, ok := r.pushed[e.Path]; ok && e.Same(old) {
			continue
		}
		size := len(e.Path) + len(e.Link) + 64
		if entries > 0 && (int64(len(body))+e.Size > pushBatch || entries+size > pushEntries) {
			if err := send(); err != nil {
				return err
			}
		}
		entries += size
		if e.IsFile() && !e.Excluded {
			var err error
			if body, err = r.mirror.ReadCopy(e.Path, e.Size, body); err != nil {
				r.pushed = nil
				return sandbox.Errorf(sandbox.CodeSandboxError, "copy mode: %v", err)
			}
		}
		push.Put = append(push.Put, e)
	}
	if err := send(); err != nil {
		return err
	}
	r.changes, r.stale = changes, false
	stats.Took = time.Since(start)
	r.last = stats
	if r.onPush != nil {
		r.onPush(stats)
	}
	return nil
}

// forget makes the replica unknown: the next refresh lists it again and
// pushes again every object (a command may have changed any, and set its
// modification time back).
func (r *replica) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pushed, r.record = nil, nil
}

// maxPull is the most content one fetch brings back; a file larger than
// it comes back hollow (its size alone), which Finish refuses as a file of
// holes.
const maxPull = 64 << 20

// pull brings what a command changed in the replica, by c's agent, into
// the copy (tree: the mirror's tree), for the mirror's Finish to judge
// and apply or discard as it would a command's changes in the copy itself:
// every object of the replica that is not still what was pushed
// (Untouched) is made again in the copy as it is in the replica, its
// content fetched, set-id bits, FIFOs and links included, and whatever is
// gone from the replica is removed from the copy. Each is then marked to
// be pushed again, so that the next command gets the copy as Finish left
// it. A pull that fails forgets the replica.
func (r *replica) pull(ctx context.Context, c *agent.Conn, tree *sandbox.Workspace) (err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		if err != nil {
			r.pushed, r.record = nil, nil
		}
	}()
	if r.pushed == nil {
		return sandbox.Errorf(sandbox.CodeSandboxError, "copy mode: the replica is unknown")
	}
	m, _, err := c.Manifest(ctx)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(m))
	var changed []sandbox.CopyEntry
	for _, e := range m {
		seen[e.Path] = true
		if old, ok := r.pushed[e.Path]; ok && old.Untouched(e) {
			continue
		}
		switch {
		case e.IsDir(), e.IsLink(), e.IsFile(), e.Mode&unix.S_IFMT == unix.S_IFIFO:
			changed = append(changed, e)
		}
	}
	var gone []string
	for p := range r.pushed {
		if !seen[p] {
			gone = append(gone, p)
		}
	}
	keep := map[string]bool{}
	for p := range seen {
		keep[p] = true
	}
	gone = topmost(gone, keep)
	// Past the bounds of a changeset, none of it comes back (the replica
	// is pushed again whole): Finish would apply none of it.
	b := r.mirror.Bounds()
	if len(changed)+len(gone) > b.MaxChanges {
		return sandbox.Errorf(sandbox.CodeResourceLimit, "the command changed more than %d files and directories (exec.max_changes): none of its changes were applied", b.MaxChanges)
	}
	for _, e := range changed {
		if _, ok := r.pushed[e.Path]; !ok {
			if depth := strings.Count(e.Path, "/") + 1; depth > b.MaxDepth {
				return sandbox.Errorf(sandbox.CodeResourceLimit, "the command made a path %d levels deep, more than exec.max_depth (%d): none of its changes were applied", depth, b.MaxDepth)
			}
		}
	}
	// Fetch the content of the changed files, a batch at a time.
	var put []sandbox.CopyEntry
	var body []byte
	var batch []string
	var size int64
	fetch := func() error {
		if len(batch) == 0 {
			return nil
		}
		got, content, err := c.Fetch(ctx, batch, maxPull)
		if err != nil {
			return err
		}
		put, body = append(put, got...), append(body, content...)
		batch, size = batch[:0], 0
		return nil
	}
	for _, e := range changed {
		if !e.IsFile() {
			put = append(put, e)
			continue
		}
		if e.Size > maxPull && !e.Sparse {
			e.Sparse = true // hollow: Finish refuses it
			put = append(put, e)
			continue
		}
		if size+e.Size > maxPull {
			if err := fetch(); err != nil {
				return err
			}
		}
		batch, size = append(batch, e.Path), size+e.Size
	}
	if err := fetch(); err != nil {
		return err
	}
	sortPut(put)
	if _, err := tree.Unpack(gone, put, body); err != nil {
		return err
	}
	for _, p := range gone {
		for q := range r.pushed {
			if q == p || strings.HasPrefix(q, p+"/") {
				delete(r.pushed, q)
			}
		}
	}
	for _, e := range put {
		e.Mtime = -1 // what the command left: the next push puts the copy's back
		r.pushed[e.Path] = e
	}
	r.stale = len(put)+len(gone) > 0
	return nil
}

// sortPut orders objects to make so that a directory comes before what it
// holds (by path, component by component).
func sortPut(es []sandbox.CopyEntry) {
	slices.SortFunc(es, func(a, b sandbox.CopyEntry) int {
		return strings.Compare(strings.ReplaceAll(a.Path, "/", "\x00"), strings.ReplaceAll(b.Path, "/", "\x00"))
	})
}

// Replica is copy mode's replica for a workspace that is not a Docker
// volume (a Kubernetes pod's emptyDir): a copy of the repository in the
// state directory, pushed to an agent before each read, with the
// repository's workspace for writes and edits.
type Replica struct{ r *replica }

// OpenReplica opens a replica of the repository at root for the rules of
// limits, its copy in stateDir (paths.ExecStateDir's default when empty), holding at most
// maxSize bytes of content (0: DefaultCopyMaxSize).
func OpenReplica(root, stateDir string, limits sandbox.Limits, maxSize int64) (*Replica, error) {
	_, ws, m, dir, err := openCopy(stateDir, root, limits, "replica", "copy mode")
	if err != nil {
		return nil, err
	}
	r := &replica{ws: ws, mirror: m, dir: dir, standIns: true, maxSize: cmp.Or(maxSize, DefaultCopyMaxSize)}
	r.rests(restAfter(0))
	return &Replica{r: r}, nil
}

// Refresh brings the agent's workspace up to date with the repository.
func (r *Replica) Refresh(ctx context.Context, c *agent.Conn) error { return r.r.refresh(ctx, c) }

// Forget makes the agent's workspace unknown: the next Refresh lists it
// (a new pod's is empty).
func (r *Replica) Forget() { r.r.forget() }

// Workspace is the repository's, for writes and edits.
func (r *Replica) Workspace() *sandbox.Workspace { return r.r.ws }

// LastPush says what the last push cost.
func (r *Replica) LastPush() PushStats {
	r.r.mu.Lock()
	defer r.r.mu.Unlock()
	return r.r.last
}

// Close closes the copy.
func (r *Replica) Close() { r.r.close(true) }

// parentPath is the directory of rel, "" at the root.
func parentPath(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

// topmost keeps, of paths, those whose parents stay (are wanted or are
// the root): removing them removes the rest.
func topmost(paths []string, wanted map[string]bool) []string {
	out := paths[:0]
	for _, p := range paths {
		if parent := parentPath(p); parent == "" || wanted[parent] {
			out = append(out, p)
		}
	}
	return out
}
