package kubetest

import (
	"context"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/tools/remotecommand"
)

// Attach attaches to container of pod in namespace through the API
// server, as `kubectl attach` does (WebSocket), with the streams given
// (nil: not asked for), no TTY, until the attach ends or ctx is done; the
// channel gets the attach's end.
func (c *Cluster) Attach(ctx context.Context, namespace, pod, container string, stdin io.Reader, stdout, stderr io.Writer) <-chan error {
	c.t.Helper()
	cfg := c.RESTConfig()
	q := url.Values{"container": {container}, "tty": {"false"}}
	for name, on := range map[string]bool{"stdin": stdin != nil, "stdout": stdout != nil, "stderr": stderr != nil} {
		if on {
			q.Set(name, "true")
		}
	}
	u := strings.TrimSuffix(cfg.Host, "/") + "/api/v1/namespaces/" + url.PathEscape(namespace) + "/pods/" + url.PathEscape(pod) + "/attach?" + q.Encode()
	exec, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u)
	if err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	}()
	return done
}

// ServiceAccountKubeconfig makes the service account name in namespace
// and returns a kubeconfig that authenticates as it (a token of an hour):
// the identity of a test that must hold only the rights it is given.
func (c *Cluster) ServiceAccountKubeconfig(namespace, name string) string {
	c.t.Helper()
	c.MustKubectl("", "-n", namespace, "create", "serviceaccount", name)
	token := strings.TrimSpace(c.MustKubectl("", "-n", namespace, "create", "token", name, "--duration", "1h"))
	cfg := map[string]any{
		"apiVersion": "v1", "kind": "Config", "current-context": name,
		"clusters": []any{map[string]any{"name": "test", "cluster": map[string]any{"server": c.Server, "insecure-skip-tls-verify": true}}},
		"users":    []any{map[string]any{"name": name, "user": map[string]any{"token": token}}},
		"contexts": []any{map[string]any{"name": name, "context": map[string]any{"cluster": "test", "user": name, "namespace": namespace}}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	path := filepath.Join(c.Dir, "kubeconfig-"+namespace+"-"+name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}
