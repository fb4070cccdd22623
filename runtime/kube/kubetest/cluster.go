// Package kubetest gives tests a real Kubernetes control plane on
// loopback: etcd, kube-apiserver and kube-controller-manager (its garbage
// collector and service accounts), built from the Go module proxy by
// tools/k8s/build-binaries.sh (make k8s-binaries), with
// kubernetes-sigs/agent-sandbox's CRDs applied and, on request, its
// controller running against it. There is no scheduler and no kubelet:
// what a node does, a test does itself.
//
// A test that needs it calls Require: it skips with a reason when the
// binaries are not built, and fails instead when
// LLM_RUNTIME_REQUIRE_K8S=1 (make test-k8s, CI).
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Bin is where the binaries are: $LLM_RUNTIME_K8S_BIN, else
// ~/.cache/llm-runtime/k8s-bin (where build-binaries.sh puts them).
func Bin() string {
	if d := os.Getenv("LLM_RUNTIME_K8S_BIN"); d != "" {
		return d
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "llm-runtime", "k8s-bin")
}

// Cluster is a running control plane.
type Cluster struct {
	Dir        string // its files: certificates, etcd's data, logs
	Bin        string
	Server     string // https://127.0.0.1:PORT
	Kubeconfig string // a kubeconfig of a cluster admin (system:masters)
	t          testing.TB
}

// Require starts a control plane for the test, stopped when it ends, with
// agent-sandbox's CRDs established.
func Require(t testing.TB) *Cluster {
	t.Helper()
	bin := Bin()
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "crds"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			msg := fmt.Sprintf("no Kubernetes test binaries in %s (build them with make k8s-binaries): %v", bin, err)
			if os.Getenv("LLM_RUNTIME_REQUIRE_K8S") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	c := &Cluster{Dir: t.TempDir(), Bin: bin, t: t}
	c.start()
	// What a cluster does that this one would otherwise not: delete what
	// an object owned when it goes (the garbage collector), and give every
	// namespace its default service account.
	c.daemon("kube-controller-manager", "--kubeconfig", c.Kubeconfig, "--controllers", "garbagecollector,serviceaccount",
		"--leader-elect=false", "--secure-port=0", "--use-service-account-credentials=false")
	c.applyCRDs()
	return c
}

// freePort returns a port of loopback nothing listens on (just now).
func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// daemon starts a program of the control plane, its output in DIR/NAME.log,
// and stops it when the test ends.
func (c *Cluster) daemon(name string, args ...string) *exec.Cmd {
	c.t.Helper()
	logf, err := os.Create(filepath.Join(c.Dir, name+".log"))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(c.Bin, name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	return cmd
}

// Log returns what a program of the control plane printed.
func (c *Cluster) Log(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, name+".log"))
	return string(b)
}

func (c *Cluster) start() {
	t := c.t
	t.Helper()
	client, peer, secure := freePort(t), freePort(t), freePort(t)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(client)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	c.daemon("etcd", "--data-dir", filepath.Join(c.Dir, "etcd"), "--name", "default",
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL, "--log-level", "warn")
	ca, caKey := c.certificates()
	c.daemon("kube-apiserver",
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", strconv.Itoa(secure),
		"--endpoint-reconciler-type", "none", // a loopback advertise address
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--cert-dir", filepath.Join(c.Dir, "serving"),
		"--client-ca-file", filepath.Join(c.Dir, "ca.crt"),
		"--service-account-key-file", filepath.Join(c.Dir, "sa.key"),
		"--service-account-signing-key-file", filepath.Join(c.Dir, "sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--authorization-mode", "RBAC")
	c.Server = "https://127.0.0.1:" + strconv.Itoa(secure)
	c.writeKubeconfig(ca, caKey)
	c.waitReady()
}

// certificates writes a CA (ca.crt) and the service account key (sa.key).
func (c *Cluster) certificates() (*x509.Certificate, *rsa.PrivateKey) {
	t := c.t
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "llm-runtime test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	writePEM(t, filepath.Join(c.Dir, "ca.crt"), "CERTIFICATE", der)
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(c.Dir, "sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(sa))
	return ca, key
}

func writePEM(t testing.TB, path, kind string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeKubeconfig writes a kubeconfig for a client certificate of
// system:masters, trusting whatever serving certificate the API server
// made itself (it is on loopback, started by this test).
func (c *Cluster) writeKubeconfig(ca *x509.Certificate, caKey *rsa.PrivateKey) {
	t := c.t
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(c.Dir, "admin.crt"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(c.Dir, "admin.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	cfg := map[string]any{
		"apiVersion": "v1", "kind": "Config", "current-context": "test",
		"clusters": []any{map[string]any{"name": "test", "cluster": map[string]any{"server": c.Server, "insecure-skip-tls-verify": true}}},
		"users":    []any{map[string]any{"name": "admin", "user": map[string]any{"client-certificate": filepath.Join(c.Dir, "admin.crt"), "client-key": filepath.Join(c.Dir, "admin.key")}}},
		"contexts": []any{map[string]any{"name": "test", "context": map[string]any{"cluster": "test", "user": "admin"}}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitReady waits for /readyz, for as long as a loaded machine needs.
func (c *Cluster) waitReady() {
	t := c.t
	cert, err := tls.LoadX509KeyPair(filepath.Join(c.Dir, "admin.crt"), filepath.Join(c.Dir, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}}}}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		res, err := hc.Get(c.Server + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server is not ready: %v\netcd:\n%s\nkube-apiserver:\n%s", err, tail(c.Log("etcd")), tail(c.Log("kube-apiserver")))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

// Kubectl runs kubectl against the cluster, with stdin, and returns its
// standard output; a failure is the error, with what it printed.
func (c *Cluster) Kubectl(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.Bin, "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

// MustKubectl is Kubectl that fails the test.
func (c *Cluster) MustKubectl(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.Kubectl(stdin, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// applyCRDs applies agent-sandbox's CRDs (v1.0.1's serve v1beta1 alone,
// with no conversion webhook; one, if a CRD names it, is taken out: there
// is no webhook here), and waits until they are established.
func (c *Cluster) applyCRDs() {
	t := c.t
	files, _ := filepath.Glob(filepath.Join(c.Bin, "crds", "*.yaml"))
	if len(files) == 0 {
		t.Fatalf("no CRDs in %s", filepath.Join(c.Bin, "crds"))
	}
	var all bytes.Buffer
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd map[string]any
		if err := yaml.Unmarshal(b, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		spec := crd["spec"].(map[string]any)
		delete(spec, "conversion")
		names = append(names, "crd/"+crd["metadata"].(map[string]any)["name"].(string))
		out, err := yaml.Marshal(crd)
		if err != nil {
			t.Fatal(err)
		}
		all.WriteString("---\n")
		all.Write(out)
	}
	c.MustKubectl(all.String(), "apply", "--server-side", "-f", "-")
	// Not kubectl wait --for condition=established: for a CRD whose
	// status the API server has not written yet, it fails at once
	// (".status.conditions accessor error: <nil>"), which a loaded
	// machine showed in CI. Each is asked until it says Established.
	deadline := time.Now().Add(2 * time.Minute)
	for _, name := range names {
		for {
			out, err := c.Kubectl("", "get", name, "-o", `jsonpath={.status.conditions[?(@.type=="Established")].status}`)
			if err == nil && strings.TrimSpace(out) == "True" {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s is not established after 2 minutes: %q %v", name, out, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// StartController runs agent-sandbox's controller, its extensions (claims,
// templates, warm pools) enabled, against the cluster until the test ends.
func (c *Cluster) StartController() {
	c.t.Helper()
	if _, err := os.Stat(filepath.Join(c.Bin, "agent-sandbox-controller")); err != nil {
		c.t.Fatalf("no agent-sandbox controller in %s (make k8s-binaries): %v", c.Bin, err)
	}
	c.daemon("agent-sandbox-controller", "--kubeconfig", c.Kubeconfig, "--extensions",
		"--leader-elect=false", "--metrics-bind-address=0", "--health-probe-bind-address=0")
}

// Namespace makes a namespace, and waits for its default service account
// (the ServiceAccount admission wants it for any pod).
func (c *Cluster) Namespace(name string) {
	c.t.Helper()
	c.MustKubectl("", "create", "namespace", name)
	c.Await(func(s string) bool { return s == "default" }, "-n", name, "get", "serviceaccount", "default", "-o", "jsonpath={.metadata.name}")
}

// Await runs kubectl args until its output satisfies ok, for as long as a
// loaded machine needs, and returns it.
func (c *Cluster) Await(ok func(string) bool, args ...string) string {
	c.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := c.Kubectl("", args...)
		if err == nil && ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("kubectl %s: %q %v\nagent-sandbox-controller:\n%s\nkube-controller-manager:\n%s", strings.Join(args, " "), out, err, tail(c.Log("agent-sandbox-controller")), tail(c.Log("kube-controller-manager")))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Registry starts a container registry (distribution's) on loopback until
// the test ends, and returns its address, 127.0.0.1:PORT (Docker pushes to
// a loopback registry over plain HTTP).
func Registry(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(Bin(), "registry")
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("no registry in %s (build it with make k8s-binaries): %v", Bin(), err)
		if os.Getenv("LLM_RUNTIME_REQUIRE_K8S") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	config := "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: " + filepath.Join(dir, "data") + "\nhttp:\n  addr: " + addr + "\nlog:\n  level: warn\n"
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Dir: dir, Bin: Bin(), t: t}
	c.daemon("registry", "serve", filepath.Join(dir, "config.yml"))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry does not answer: %v\n%s", err, c.Log("registry"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
