package kubetest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	dcontainer "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// runContainers makes the node run each pod's first container in the
// local Docker daemon, hardened as the pod asks (its user, a read-only root,
// no capability, no network; its volumes as tmpfs of that user; its input
// open only if the pod's container has stdin), its output kept as a
// kubelet keeps a container's log, and serve the kubelet's attach, exec
// and containerLogs, so that an attach, an exec or a log request through
// the API server reaches the container. It returns the port of the node's
// kubelet endpoint.
func (n *Node) runContainers() int {
	n.t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		n.t.Fatal(err)
	}
	n.docker = cli
	n.containers = map[string]string{}
	n.logs, n.attached = map[string]string{}, map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("/attach/", n.serveAttach)
	mux.HandleFunc("/exec/", n.serveExec)
	mux.HandleFunc("/containerLogs/", n.serveLogs)
	srv := httptest.NewUnstartedServer(mux)
	srv.StartTLS()
	n.t.Cleanup(func() {
		srv.Close()
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, id := range n.containers {
			cli.ContainerRemove(context.Background(), id, client.ContainerRemoveOptions{Force: true})
		}
		cli.Close()
	})
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// streamRequest parses a kubelet's /VERB/NAMESPACE/POD[/UID]/CONTAINER
// request; on a bad one it answers it, and ok is false.
func streamRequest(w http.ResponseWriter, r *http.Request, verb string) (pod, ctr string, opts *remotecommand.Options, ok bool) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 4 || parts[0] != verb {
		http.Error(w, "not found", http.StatusNotFound)
		return "", "", nil, false
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return "", "", nil, false
	}
	return parts[1] + "/" + parts[2], parts[len(parts)-1], opts, true
}

// serveAttach serves /attach/NAMESPACE/POD[/UID]/CONTAINER, as a kubelet.
func (n *Node) serveAttach(w http.ResponseWriter, r *http.Request) {
	if pod, ctr, opts, ok := streamRequest(w, r, "attach"); ok {
		remotecommand.ServeAttach(w, r, attacher{n}, pod, "", ctr, opts, 10*time.Minute, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	}
}

// serveExec serves /exec/NAMESPACE/POD[/UID]/CONTAINER?command=..., as a
// kubelet.
func (n *Node) serveExec(w http.ResponseWriter, r *http.Request) {
	if pod, ctr, opts, ok := streamRequest(w, r, "exec"); ok {
		remotecommand.ServeExec(w, r, attacher{n}, pod, "", ctr, r.URL.Query()["command"], opts, 10*time.Minute, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	}
}

// serveLogs serves /containerLogs/NAMESPACE/POD/CONTAINER, as a kubelet:
// the container's output so far.
func (n *Node) serveLogs(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 4 {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	n.mu.Lock()
	id := n.containers[parts[1]+"/"+parts[2]]
	n.mu.Unlock()
	if id == "" {
		http.Error(w, "no such container", http.StatusNotFound)
		return
	}
	log, err := n.containerLog(r.Context(), id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	io.WriteString(w, log)
}

// containerLog is what container id wrote on its standard output and
// error, as the node's log holds it.
func (n *Node) containerLog(ctx context.Context, id string) (string, error) {
	rc, err := n.docker.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var b strings.Builder
	_, err = stdcopy.StdCopy(&b, &b, rc)
	return b.String(), err
}

// Attached says how many attaches to pod in namespace the node has made
// (each once its stream to the container was open).
func (n *Node) Attached(namespace, pod string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.attached[namespace+"/"+pod]
}

// Logs returns what each pod's container has written to the node's log,
// by NAMESPACE/POD: the log of a container still running, and the last
// of one removed (what a log shipper on the node would have read).
func (n *Node) Logs() map[string]string {
	n.t.Helper()
	n.mu.Lock()
	all := map[string]string{}
	for k, v := range n.logs {
		all[k] = v
	}
	running := map[string]string{}
	for k, id := range n.containers {
		running[k] = id
	}
	n.mu.Unlock()
	for k, id := range running {
		if log, err := n.containerLog(context.Background(), id); err == nil {
			all[k] = log
		}
	}
	return all
}

type attacher struct{ n *Node }

// ExecInContainer runs cmd in the pod's container with docker exec,
// copying the streams, and returns its exit code as a kubelet does.
func (a attacher) ExecInContainer(ctx context.Context, name, uid, container string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, timeout time.Duration) error {
	a.n.mu.Lock()
	id := a.n.containers[name]
	a.n.mu.Unlock()
	if id == "" {
		return fmt.Errorf("no container for %s", name)
	}
	cli := a.n.docker
	x, err := cli.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdin: in != nil, AttachStdout: out != nil, AttachStderr: errw != nil})
	if err != nil {
		return err
	}
	res, err := cli.ExecAttach(ctx, x.ID, client.ExecAttachOptions{})
	if err != nil {
		return err
	}
	hj := res.HijackedResponse
	defer hj.Close()
	stop := context.AfterFunc(ctx, func() { hj.Close() })
	defer stop()
	if in != nil {
		go func() { io.Copy(hj.Conn, in); hj.CloseWrite() }()
	}
	var sout, eout io.Writer = io.Discard, io.Discard
	if out != nil {
		sout = out
	}
	if errw != nil {
		eout = errw
	}
	if _, err := stdcopy.StdCopy(sout, eout, hj.Reader); err != nil && ctx.Err() == nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	st, err := cli.ExecInspect(context.WithoutCancel(ctx), x.ID, client.ExecInspectOptions{})
	if err != nil {
		return err
	}
	if st.ExitCode != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", st.ExitCode), Code: st.ExitCode}
	}
	return nil
}

// AttachContainer copies between the streams and the pod's container; the
// container's input stays open when the attach ends (stdinOnce false).
func (a attacher) AttachContainer(ctx context.Context, name, uid, container string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	a.n.mu.Lock()
	id := a.n.containers[name]
	a.n.mu.Unlock()
	if id == "" {
		return fmt.Errorf("no container for %s", name)
	}
	res, err := a.n.docker.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: in != nil, Stdout: out != nil, Stderr: errw != nil})
	if err != nil {
		return err
	}
	a.n.mu.Lock()
	a.n.attached[name]++
	a.n.mu.Unlock()
	hj := res.HijackedResponse
	defer hj.Close()
	stop := context.AfterFunc(ctx, func() { hj.Close() })
	defer stop()
	if in != nil {
		go io.Copy(hj.Conn, in)
	}
	var eout io.Writer = io.Discard
	if errw != nil {
		eout = errw
	}
	var sout io.Writer = io.Discard
	if out != nil {
		sout = out
	}
	_, err = stdcopy.StdCopy(sout, eout, hj.Reader)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// startContainer runs pod's first container in Docker, once.
func (n *Node) startContainer(ctx context.Context, p *corev1.Pod) error {
	key := p.Namespace + "/" + p.Name
	n.mu.Lock()
	_, ok := n.containers[key]
	n.mu.Unlock()
	if ok || n.docker == nil {
		return nil
	}
	ct := p.Spec.Containers[0]
	user := "65534:65534"
	if sc := p.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil {
		user = fmt.Sprintf("%d:%d", *sc.RunAsUser, *sc.RunAsUser)
		if sc.RunAsGroup != nil {
			user = fmt.Sprintf("%d:%d", *sc.RunAsUser, *sc.RunAsGroup)
		}
	}
	uid, gid, _ := strings.Cut(user, ":")
	tmpfs := map[string]string{}
	for _, m := range ct.VolumeMounts {
		tmpfs[m.MountPath] = "rw,nosuid,nodev,size=256m,mode=0700,uid=" + uid + ",gid=" + gid
	}
	labels := map[string]string{"io.llm-runtime": "1", "io.llm-runtime.test-pod": key}
	for k, v := range n.labels {
		labels[k] = v
	}
	// Not cancellable: a create cancelled in flight (the test ending) may
	// still happen on the daemon, and then only its id lets us remove it.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer ccancel()
	cr, err := n.docker.ContainerCreate(cctx, client.ContainerCreateOptions{Config: &dcontainer.Config{
		Image: ct.Image, Cmd: ct.Args, User: user, Labels: labels,
		OpenStdin: ct.Stdin, StdinOnce: ct.StdinOnce, NetworkDisabled: true,
	}, HostConfig: &dcontainer.HostConfig{
		NetworkMode: "none", ReadonlyRootfs: true, CapDrop: []string{"ALL"}, SecurityOpt: []string{"no-new-privileges"},
		Tmpfs: tmpfs, LogConfig: dcontainer.LogConfig{Type: "json-file"},
	}})
	if err != nil {
		return err
	}
	if _, err := n.docker.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		n.docker.ContainerRemove(context.Background(), cr.ID, client.ContainerRemoveOptions{Force: true})
		return err
	}
	n.mu.Lock()
	n.containers[key] = cr.ID
	n.mu.Unlock()
	return nil
}

// stopContainer removes pod's container, if it has one.
func (n *Node) stopContainer(p *corev1.Pod) {
	if n.docker == nil {
		return
	}
	key := p.Namespace + "/" + p.Name
	n.mu.Lock()
	id := n.containers[key]
	delete(n.containers, key)
	n.mu.Unlock()
	if id != "" {
		// Its log, as the node held it when the pod went (what a log
		// shipper would have read), then the container.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n.docker.ContainerKill(ctx, id, client.ContainerKillOptions{})
		if log, err := n.containerLog(ctx, id); err == nil {
			n.mu.Lock()
			n.logs[key] = log
			n.mu.Unlock()
		}
		n.docker.ContainerRemove(context.Background(), id, client.ContainerRemoveOptions{Force: true})
	}
}
