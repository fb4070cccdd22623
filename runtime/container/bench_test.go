package container_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/internal/pairbench"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// percentiles reports the p50 and p95 of the timed runs, in microseconds,
// beside the mean that ns/op gives.
func percentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*95/100].Microseconds()), "p95-µs")
}

// transports are the sub-benchmarks of a pooled benchmark.
var transports = []string{container.TransportSocket, container.TransportAttach}

func benchOpen(b *testing.B, size int, pooled bool) {
	if !pooled {
		benchOpenOver(b, size, pooled, "")
		return
	}
	for _, tr := range transports {
		b.Run(tr, func(b *testing.B) { benchOpenOver(b, size, pooled, tr) })
	}
}

// fileSandbox is a sandbox of a repository holding f.txt, size bytes, on
// a pool of size containers (0: unpooled) that are never recycled. The
// caller closes it: a benchmark function may run several times.
func fileSandbox(b *testing.B, size, containers int, transport string) *container.Sandbox {
	return fileSandboxIn(b, size, containers, transport, container.WorkspaceBind)
}

// fileSandboxIn is fileSandbox with the workspace mode given.
func fileSandboxIn(b *testing.B, size, containers int, transport, workspace string) *container.Sandbox {
	env := dockertest.Require(b)
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "f.txt"), bytes.Repeat([]byte("x"), size), 0o644)
	sb, err := container.NewSandbox(env.Docker, container.Options{Root: dir, Image: env.Image, Labels: env.Labels, Transport: transport, Workspace: workspace, StateDir: b.TempDir(),
		Limits: sandbox.Limits{MaxFileSize: 2 << 20},
		Pool: container.PoolOptions{Enabled: containers > 0, Size: max(1, containers), StartupContainers: max(1, containers),
			MaxUsesPerContainer: 1 << 30, AcquireTimeout: time.Minute}})
	if err != nil {
		b.Fatal(err)
	}
	return sb
}

func benchOpenOver(b *testing.B, size int, pooled bool, transport string) {
	containers := 0
	if pooled {
		containers = 1
	}
	sb := fileSandbox(b, size, containers, transport)
	defer sb.Close()
	timeOpens(b, sb)
}

// timeOpens times opens of f.txt on sb, after one that starts the
// container.
func timeOpens(b *testing.B, sb *container.Sandbox) {
	ctx := context.Background()
	if _, err := sb.Open(ctx, "f.txt"); err != nil { // warm up: the container is started
		b.Fatal(err)
	}
	var d []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := sb.Open(ctx, "f.txt"); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	percentiles(b, d)
}

func BenchmarkPooledOpen4KiB(b *testing.B)   { benchOpen(b, 4<<10, true) }
func BenchmarkPooledOpen1MiB(b *testing.B)   { benchOpen(b, 1<<20, true) }
func BenchmarkUnpooledOpen4KiB(b *testing.B) { benchOpen(b, 4<<10, false) }

// BenchmarkPooledReadsParallel4 is the host's ceiling: 4 goroutines
// reading 4 KiB through a pool of 4 containers; reads/s is the figure.
func BenchmarkPooledReadsParallel4(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr, func(b *testing.B) {
			sb := fileSandbox(b, 4<<10, 4, tr)
			defer sb.Close()
			ctx := context.Background()
			// Warm up: all four containers started and used.
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 20 {
						sb.Open(ctx, "f.txt")
					}
				}()
			}
			wg.Wait()
			b.SetParallelism(4 / max(1, runtime.GOMAXPROCS(0)))
			start := time.Now()
			selfBefore, allBefore := cpuTimes(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := sb.Open(ctx, "f.txt"); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reads/s")
			// Where the CPU goes: this process (the host side: the
			// pool, framing, the syscalls) against the whole machine
			// (the agents, the kernel, and with attach dockerd and the
			// shims).
			selfAfter, allAfter := cpuTimes(b)
			b.ReportMetric(float64((selfAfter-selfBefore).Microseconds())/float64(b.N), "host-cpu-µs/read")
			b.ReportMetric(float64((allAfter-allBefore).Microseconds())/float64(b.N), "machine-cpu-µs/read")
		})
	}
}

// cpuTimes are the CPU time of this process and of the whole machine
// (every CPU's busy time, from /proc/stat), so far.
func cpuTimes(b *testing.B) (self, all time.Duration) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	st, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Skip("no /proc/stat")
	}
	var user, nice, sys, idle, iowait, irq, softirq, steal uint64
	fmt.Sscanf(string(st), "cpu %d %d %d %d %d %d %d %d", &user, &nice, &sys, &idle, &iowait, &irq, &softirq, &steal)
	ticks := user + nice + sys + irq + softirq + steal
	return self, time.Duration(ticks) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// BenchmarkPooledWrite4KiB is a <write> of 4 KiB over the file it wrote
// last, in a pooled container over the socket transport, without and with
// the journal's record (the agent reads what the file held and sends it
// to the host, which journals it while the agent writes the new content
// beside the file, and renames it into place once the record is durable),
// one after the other in each iteration, so that both meet the same load
// and disk. It reports each one's p50 and p95, the p50s' difference, and
// journal-µs, the host's part: the record made durable.
func BenchmarkPooledWrite4KiB(b *testing.B) {
	sb := fileSandbox(b, 0, 1, container.TransportSocket)
	defer sb.Close()
	content := bytes.Repeat([]byte("func main() {\n\treturn\n}\n"), 4<<10/24+1)[:4<<10]
	ctx := context.Background()
	for _, name := range []string{"plain.txt", "journaled.txt"} { // warm up: the container is started
		if _, err := sb.Write(ctx, name, content); err != nil {
			b.Fatal(err)
		}
	}
	p := pairbench.New(b)
	for i := 0; b.Loop(); i++ {
		binary.LittleEndian.PutUint64(content, uint64(i)) // new content each time
		for k, name := range []string{"plain.txt", "journaled.txt"} {
			p.Time(k == 1, ctx, func(ctx context.Context) error {
				_, err := sb.Write(ctx, name, content)
				return err
			})
		}
	}
	p.Report()
}

// BenchmarkExecTrue runs `true` in pre-started exec containers: each
// iteration uses a container started while the last one ran.
func BenchmarkExecTrue(b *testing.B) {
	env := dockertest.Require(b)
	benchExecTrue(b, env, env.Docker, container.WorkspaceBind)
}

func benchExecTrue(b *testing.B, env dockertest.Env, docker *container.Docker, workspace string) {
	t := &testing.T{}
	sb := execSandboxOn(t, env, docker, workspace, b.TempDir(), container.ExecOptions{})
	ctx := context.Background()
	var d []time.Duration
	for b.Loop() {
		time.Sleep(400 * time.Millisecond) // let the next container start, as a model's think time would
		start := time.Now()
		if _, err := sb.Exec(ctx, "true"); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	b.StopTimer()
	percentiles(b, d)
	sb.Close()
}

// BenchmarkExecTrueBackToBack runs `true` twice in a row, as a client
// that runs go build and then go test does, after a pause in which the
// pool refills (a model's think time), and beside them, in the same
// iteration, bwrap's `true` (what sandbox-runtime and Codex spawn per
// command), when bwrap is on the PATH: the p50 of the first exec, of the
// second, and of bwrap, and the second's ratio to bwrap.
func BenchmarkExecTrueBackToBack(b *testing.B) {
	env := dockertest.Require(b)
	t := &testing.T{}
	sb := execSandboxOn(t, env, env.Docker, container.WorkspaceBind, b.TempDir(), container.ExecOptions{})
	defer sb.Close()
	bwrap, _ := exec.LookPath("bwrap")
	ctx := context.Background()
	var first, second, peer []time.Duration
	for b.Loop() {
		time.Sleep(time.Second) // think time: the pool refills
		for _, d := range []*[]time.Duration{&first, &second} {
			start := time.Now()
			if _, err := sb.Exec(ctx, "true"); err != nil {
				b.Fatal(err)
			}
			*d = append(*d, time.Since(start))
		}
		if bwrap != "" {
			start := time.Now()
			if out, err := exec.Command(bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all", "--die-with-parent", "true").CombinedOutput(); err != nil {
				b.Fatalf("bwrap: %v\n%s", err, out)
			}
			peer = append(peer, time.Since(start))
		}
	}
	b.StopTimer()
	p50 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Microseconds())
	}
	b.ReportMetric(p50(first), "first-p50-µs")
	b.ReportMetric(p50(second), "second-p50-µs")
	if len(peer) > 0 {
		b.ReportMetric(p50(peer), "bwrap-p50-µs")
		b.ReportMetric(p50(second)/p50(peer), "second/bwrap")
	}
}

// BenchmarkExecWritable10k runs a writable exec that changes 3 files in a
// repository of 10,000 (500 directories of 20 files of 2-4 KB): what the
// copy costs on top of BenchmarkExecTrue is its Sync before the command
// and its Finish after. Execs without and with a journal record of the
// changeset (a checkpoint of its own) alternate, as in
// BenchmarkPooledWrite4KiB.
func BenchmarkExecWritable10k(b *testing.B) {
	env := dockertest.Require(b)
	benchExecWritable10k(b, env, env.Docker, container.WorkspaceBind)
}

func benchExecWritable10k(b *testing.B, env dockertest.Env, docker *container.Docker, workspace string) {
	dir := b.TempDir()
	for d := range 500 {
		for i := range 20 {
			p := filepath.Join(dir, fmt.Sprintf("pkg%03d/sub/f%02d.go", d, i))
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, bytes.Repeat([]byte("x"), 2000+i*100), 0o644)
		}
	}
	t := &testing.T{}
	sb := execSandboxOn(t, env, docker, workspace, dir, container.ExecOptions{Writable: true})
	ctx := context.Background()
	if _, err := sb.Exec(ctx, "true"); err != nil { // the first copy
		b.Fatal(err)
	}
	p := pairbench.New(b)
	n := 0
	for b.Loop() {
		for k := range 2 {
			time.Sleep(400 * time.Millisecond)
			n++
			cmd := fmt.Sprintf("sed -i s/^/%d/ pkg001/sub/f01.go pkg002/sub/f02.go pkg003/sub/f03.go", n)
			p.Time(k == 1, ctx, func(ctx context.Context) error {
				res, err := sb.Exec(ctx, cmd)
				if err == nil && len(res.Changes) != 3 {
					err = fmt.Errorf("changes: %+v", res.Changes)
				}
				return err
			})
		}
	}
	b.StopTimer()
	p.Report()
	sb.Close()
}
