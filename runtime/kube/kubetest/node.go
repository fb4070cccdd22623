package kubetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig is a client configuration of the cluster's admin.
func (c *Cluster) RESTConfig() *rest.Config {
	c.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		c.t.Fatal(err)
	}
	return cfg
}

// Node stands in for a node of the cluster, and for the scheduler: it
// registers a Node, binds every pod that is not bound to it, and marks the
// pods bound to it running and ready, each with an IP of its own, as a
// kubelet would once their containers run; a pod being deleted it
// finishes deleting, as a kubelet does once its containers are gone. It
// runs no container.
type Node struct {
	Name string
	t    testing.TB
	cs   *kubernetes.Clientset
	mu   sync.Mutex
	ips  map[string]string // pod UID -> IP
	next int

	// With NodeOptions.Docker: the pods' containers, by NAMESPACE/POD.
	docker     *client.Client
	labels     map[string]string
	containers map[string]string
	logs       map[string]string // the last log of removed containers
	attached   map[string]int    // attaches made, by NAMESPACE/POD
}

// NodeOptions say what a Node does beyond the API objects.
type NodeOptions struct {
	// Docker: run each pod's first container in the local Docker daemon,
	// and serve the kubelet's attach to it.
	Docker bool
	Labels map[string]string // on every container (a test's, for its cleanup)
}

// StartNode starts a Node until the test ends.
func (c *Cluster) StartNode(name string, o NodeOptions) *Node {
	t := c.t
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{Name: name, t: t, cs: cs, ips: map[string]string{}, labels: o.Labels}
	port := 0
	if o.Docker {
		port = n.runContainers()
	}
	node, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status = corev1.NodeStatus{
		Conditions:      []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
		Capacity:        corev1.ResourceList{}, Allocatable: corev1.ResourceList{},
	}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			n.step(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return n
}

// step does one round of a node's work on every pod.
func (n *Node) step(ctx context.Context) {
	pods, err := n.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		switch {
		case p.DeletionTimestamp != nil:
			n.stopContainer(p)
			zero := int64(0)
			n.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		case p.Spec.NodeName == "":
			n.cs.CoreV1().Pods(p.Namespace).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
				Target: corev1.ObjectReference{Kind: "Node", Name: n.Name}}, metav1.CreateOptions{})
		case p.Spec.NodeName == n.Name && p.Status.Phase != corev1.PodRunning:
			if err := n.startContainer(ctx, p); err != nil {
				n.t.Logf("node %s: the container of %s/%s: %v", n.Name, p.Namespace, p.Name, err)
				continue
			}
			n.run(ctx, p)
		}
	}
}

// run marks p running and ready.
func (n *Node) run(ctx context.Context, p *corev1.Pod) {
	n.mu.Lock()
	ip, ok := n.ips[string(p.UID)]
	if !ok {
		n.next++
		ip = fmt.Sprintf("10.244.%d.%d", n.next/250, 1+n.next%250)
		n.ips[string(p.UID)] = ip
	}
	n.mu.Unlock()
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.HostIP, p.Status.PodIP = "127.0.0.1", ip
	p.Status.HostIPs, p.Status.PodIPs = []corev1.HostIP{{IP: "127.0.0.1"}}, []corev1.PodIP{{IP: ip}}
	p.Status.StartTime = &now
	p.Status.Conditions = nil
	for _, c := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	p.Status.ContainerStatuses = nil
	for _, ct := range p.Spec.Containers {
		started := true
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: ct.Name, Image: ct.Image, Ready: true, Started: &started,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
	}
	if _, err := n.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		return
	}
}
