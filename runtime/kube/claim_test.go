package kube_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/rest"

	"github.com/llm-runtime/llm-runtime/runtime/kube"
)

func object(gvr schema.GroupVersionResource, kind, ns, name string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": gvr.GroupVersion().String(), "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": ns}}}
	for k, v := range fields {
		u.Object[k] = v
	}
	return u
}

// TestClaimsOnAFakeClient: the claim's life against the dynamic client's
// fake, a goroutine playing the controller: the claim carries the pool
// and a lifecycle, is taken once Ready, finds its pod by the sandbox's
// annotation, renews its shutdown time, and is deleted on release; a
// missing pool is ErrNoPool.
func TestClaimsOnAFakeClient(t *testing.T) {
	scheme := runtime.NewScheme()
	lists := map[schema.GroupVersionResource]string{kube.ClaimResource: "SandboxClaimList", kube.SandboxResource: "SandboxList", kube.PoolResource: "SandboxWarmPoolList"}
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(scheme, lists,
		object(kube.PoolResource, "SandboxWarmPool", "agents", "llm-runtime", nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The controller: a claim gets the sandbox sb-1, whose pod is pod-9.
	go func() {
		for ctx.Err() == nil {
			l, _ := dyn.Resource(kube.ClaimResource).Namespace("agents").List(ctx, metav1.ListOptions{})
			for _, c := range l.Items {
				if _, found, _ := unstructured.NestedString(c.Object, "status", "sandbox", "name"); found {
					continue
				}
				dyn.Resource(kube.SandboxResource).Namespace("agents").Create(ctx, object(kube.SandboxResource, "Sandbox", "agents", "sb-1",
					map[string]any{}), metav1.CreateOptions{})
				sb, _ := dyn.Resource(kube.SandboxResource).Namespace("agents").Get(ctx, "sb-1", metav1.GetOptions{})
				sb.SetAnnotations(map[string]string{kube.PodNameAnnotation: "pod-9"})
				dyn.Resource(kube.SandboxResource).Namespace("agents").Update(ctx, sb, metav1.UpdateOptions{})
				unstructured.SetNestedField(c.Object, "sb-1", "status", "sandbox", "name")
				unstructured.SetNestedSlice(c.Object, []any{map[string]any{"type": "Ready", "status": "True"}}, "status", "conditions")
				dyn.Resource(kube.ClaimResource).Namespace("agents").Update(ctx, &c, metav1.UpdateOptions{})
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	claims := &kube.Claims{Client: dyn, Namespace: "agents", Pool: "llm-runtime", Lease: 2 * time.Minute}
	cl, err := claims.Claim(ctx, "host/42")
	if err != nil {
		t.Fatal(err)
	}
	if cl.Sandbox != "sb-1" || cl.Pod != "pod-9" || !strings.HasPrefix(cl.Name, "llm-runtime-") {
		t.Fatalf("the claim: %+v", cl)
	}
	got, err := dyn.Resource(kube.ClaimResource).Namespace("agents").Get(ctx, cl.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool, _, _ := unstructured.NestedString(got.Object, "spec", "warmPoolRef", "name")
	policy, _, _ := unstructured.NestedString(got.Object, "spec", "lifecycle", "shutdownPolicy")
	first, _, _ := unstructured.NestedString(got.Object, "spec", "lifecycle", "shutdownTime")
	if pool != "llm-runtime" || policy != "Delete" || got.GetLabels()[kube.LabelSession] != "host-42" {
		t.Fatalf("the claim as made: %v", got.Object)
	}
	at, err := time.Parse(time.RFC3339, first)
	if err != nil || at.Before(time.Now().Add(time.Minute)) {
		t.Fatalf("its shutdown time %q: %v", first, err)
	}
	time.Sleep(1100 * time.Millisecond) // the times have a second's precision
	if err := claims.Renew(ctx, cl); err != nil {
		t.Fatal(err)
	}
	got, _ = dyn.Resource(kube.ClaimResource).Namespace("agents").Get(ctx, cl.Name, metav1.GetOptions{})
	if renewed, _, _ := unstructured.NestedString(got.Object, "spec", "lifecycle", "shutdownTime"); renewed <= first {
		t.Fatalf("renewed to %q from %q", renewed, first)
	}
	if err := claims.Release(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(kube.ClaimResource).Namespace("agents").Get(ctx, cl.Name, metav1.GetOptions{}); err == nil {
		t.Fatal("the released claim is still there")
	}
	none := &kube.Claims{Client: dyn, Namespace: "agents", Pool: "nope", Lease: time.Minute}
	if _, err := none.Claim(ctx, "x"); !errors.Is(err, kube.ErrNoPool) {
		t.Fatalf("a missing pool: %v", err)
	}
}

// TestThrottledRequestsAreRetriedAndReported: an API server that answers
// 429 is retried, after its Retry-After, by client-go, and each 429 is
// reported.
func TestThrottledRequestsAreRetriedAndReported(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"TooManyRequests","code":429}`, http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"apiVersion":"extensions.agents.x-k8s.io/v1beta1","kind":"SandboxWarmPool","metadata":{"name":"llm-runtime","namespace":"agents"}}`)
	}))
	defer srv.Close()
	var reported []string
	cfg := kube.Throttled(&rest.Config{Host: srv.URL}, func(format string, args ...any) { reported = append(reported, fmt.Sprintf(format, args...)) })
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(kube.PoolResource).Namespace("agents").Get(context.Background(), "llm-runtime", metav1.GetOptions{}); err != nil {
		t.Fatalf("the request after two 429s: %v", err)
	}
	if calls.Load() != 3 || len(reported) != 2 || !strings.Contains(reported[0], "throttled GET /apis/extensions.agents.x-k8s.io/v1beta1/namespaces/agents/sandboxwarmpools/llm-runtime (429); retrying after 1s") {
		t.Fatalf("%d calls, reported %q", calls.Load(), reported)
	}
}
