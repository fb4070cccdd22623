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
)

// runContainers makes the node run each pod's first container in the
// local Docker daemon, hardened as the pod asks (its user, a read-only root,
// no capability, no network; its volumes as tmpfs of that user), and
// serve the kubelet's attach to it, so that an attach through the API
// server reaches the process. It returns the port of the node's kubelet
// endpoint.
func (n *Node) runContainers() int {
	n.t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		n.t.Fatal(err)
	}
	n.docker = cli
	n.containers = map[string]string{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(n.serveAttach))
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

// serveAttach serves /attach/NAMESPACE/POD[/UID]/CONTAINER, as a kubelet.
func (n *Node) serveAttach(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 4 || parts[0] != "attach" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	ns, pod, ctr := parts[1], parts[2], parts[len(parts)-1]
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	remotecommand.ServeAttach(w, r, attacher{n}, ns+"/"+pod, "", ctr, opts, 10*time.Minute, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

type attacher struct{ n *Node }

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
		OpenStdin: true, StdinOnce: false, NetworkDisabled: true,
	}, HostConfig: &dcontainer.HostConfig{
		NetworkMode: "none", ReadonlyRootfs: true, CapDrop: []string{"ALL"}, SecurityOpt: []string{"no-new-privileges"},
		Tmpfs: tmpfs, LogConfig: dcontainer.LogConfig{Type: "none"},
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
		n.docker.ContainerRemove(context.Background(), id, client.ContainerRemoveOptions{Force: true})
	}
}
