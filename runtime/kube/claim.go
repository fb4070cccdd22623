// Package kube is the Kubernetes side of the sandbox: sessions claim a pod
// of an agent-sandbox warm pool (SandboxClaim), renew the claim's
// lifecycle while they live, and release it at the end.
//
// It talks to the API server with client-go's dynamic client, not the
// typed clientset: the typed clientset's scheme costs every llm-runtime
// process ~5 ms of init (RATIONALE.md).
package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// The resources of agent-sandbox v1.0.1 that a session touches (its API
// is v1beta1 alone; v1alpha1 is gone).
var (
	ClaimResource   = schema.GroupVersionResource{Group: "extensions.agents.x-k8s.io", Version: "v1beta1", Resource: "sandboxclaims"}
	PoolResource    = schema.GroupVersionResource{Group: "extensions.agents.x-k8s.io", Version: "v1beta1", Resource: "sandboxwarmpools"}
	SandboxResource = schema.GroupVersionResource{Group: "agents.x-k8s.io", Version: "v1beta1", Resource: "sandboxes"}
)

// PodNameAnnotation, on a Sandbox, names its pod when that is not the
// sandbox's own name (a warm pod adopted by a claim).
const PodNameAnnotation = "agents.x-k8s.io/pod-name"

// LabelSession marks the claims of llm-runtime: the value is the
// claiming process's host and pid, for people and sweeps to read.
const LabelSession = "io.llm-runtime.session"

// Claims claims sandboxes of a warm pool in a namespace.
type Claims struct {
	Client    dynamic.Interface
	Namespace string
	Pool      string // the SandboxWarmPool
	// Lease is how long a claim lives past its last renewal (its
	// lifecycle's shutdownTime, policy Delete): the backstop when the
	// session dies without releasing it.
	Lease time.Duration
}

// Claim is a session's sandbox.
type Claim struct {
	Name    string // the SandboxClaim's
	Sandbox string
	Pod     string
	Took    time.Duration // from the claim's creation to its Ready
}

// Claim creates a claim on the pool and waits until it is Ready, as long
// as ctx allows; the claim is deleted if it cannot be had. session labels
// it.
func (c *Claims) Claim(ctx context.Context, session string) (*Claim, error) {
	start := time.Now()
	if _, err := c.Client.Resource(PoolResource).Namespace(c.Namespace).Get(ctx, c.Pool, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: %s/%s (apply the output of llm-runtime kubernetes manifests, or set kubernetes.warm_pool)", ErrNoPool, c.Namespace, c.Pool)
	} else if err != nil {
		return nil, fmt.Errorf("the warm pool %s/%s: %w", c.Namespace, c.Pool, err)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": ClaimResource.GroupVersion().String(),
		"kind":       "SandboxClaim",
		"metadata": map[string]any{
			"name":      "llm-runtime-" + hex.EncodeToString(rnd[:]),
			"namespace": c.Namespace,
			"labels":    map[string]any{LabelSession: labelValue(session)},
		},
		"spec": map[string]any{
			"warmPoolRef": map[string]any{"name": c.Pool},
			"lifecycle":   c.lifecycle(),
		},
	}}
	claims := c.Client.Resource(ClaimResource).Namespace(c.Namespace)
	made, err := claims.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("claiming a sandbox of the warm pool %s/%s: %w", c.Namespace, c.Pool, err)
	}
	cl := &Claim{Name: made.GetName()}
	fail := func(err error) (*Claim, error) {
		c.Release(context.WithoutCancel(ctx), cl)
		return nil, err
	}
	for {
		got, err := claims.Get(ctx, cl.Name, metav1.GetOptions{})
		if err != nil {
			return fail(fmt.Errorf("the claim %s: %w", cl.Name, err))
		}
		sb, _, _ := unstructured.NestedString(got.Object, "status", "sandbox", "name")
		if sb != "" && ready(got) {
			cl.Sandbox = sb
			break
		}
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("the claim %s is not ready (sandbox %q): %w", cl.Name, sb, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
	s, err := c.Client.Resource(SandboxResource).Namespace(c.Namespace).Get(ctx, cl.Sandbox, metav1.GetOptions{})
	if err != nil {
		return fail(fmt.Errorf("the sandbox %s of claim %s: %w", cl.Sandbox, cl.Name, err))
	}
	cl.Pod = s.GetName()
	if p := s.GetAnnotations()[PodNameAnnotation]; p != "" {
		cl.Pod = p
	}
	cl.Took = time.Since(start)
	return cl, nil
}

// lifecycle is a claim's: deleted, with its sandbox, Lease from now.
func (c *Claims) lifecycle() map[string]any {
	return map[string]any{
		"shutdownTime":   time.Now().Add(c.Lease).UTC().Format(time.RFC3339),
		"shutdownPolicy": "Delete",
	}
}

// Renew moves the claim's shutdown time to Lease from now.
func (c *Claims) Renew(ctx context.Context, cl *Claim) error {
	patch := fmt.Sprintf(`{"spec":{"lifecycle":{"shutdownTime":%q}}}`, c.lifecycle()["shutdownTime"])
	_, err := c.Client.Resource(ClaimResource).Namespace(c.Namespace).Patch(ctx, cl.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("renewing the claim %s: %w", cl.Name, err)
	}
	return nil
}

// Release deletes the claim (its sandbox and pod go with it); a claim
// already gone is released.
func (c *Claims) Release(ctx context.Context, cl *Claim) error {
	bg := metav1.DeletePropagationBackground
	err := c.Client.Resource(ClaimResource).Namespace(c.Namespace).Delete(ctx, cl.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("releasing the claim %s: %w", cl.Name, err)
	}
	return nil
}

// ready reports whether an object's Ready condition is True.
func ready(obj *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Ready" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// labelValue makes s a valid label value: at most 63 characters of
// [A-Za-z0-9._-], starting and ending with an alphanumeric one.
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	s = strings.Trim(string(b[:min(len(b), 63)]), "-._")
	if s == "" {
		return "x"
	}
	return s
}

// ErrNoPool is Claim's error when the warm pool does not exist.
var ErrNoPool = errors.New("no such warm pool")
