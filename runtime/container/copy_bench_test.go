package container_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// pushRepo lays out the repository of the figure: 1,700 files in
// 85 directories, 24 MB in all, of sizes from 100 bytes to 64 KiB.
func pushRepo(b *testing.B) string {
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	const files, total = 1700, 24 << 20
	for i := range files {
		size := 100 + rng.IntN(2*total/files-200)
		p := filepath.Join(dir, fmt.Sprintf("pkg%02d/sub%d/file%04d.go", i%17, i%5, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		buf := make([]byte, size)
		for j := range buf {
			buf[j] = byte('a' + rng.IntN(26))
		}
		os.WriteFile(p, buf, 0o644)
	}
	return dir
}

// copyDocker is the local daemon seen as a remote one, for the copy-mode
// benchmarks.
func copyDocker(b *testing.B) *container.Docker {
	b.Setenv("DOCKER_HOST", dockertest.RemoteHost(b))
	d, err := container.Connect(context.Background(), "test")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// BenchmarkCopyExecTrue is BenchmarkExecTrue in copy mode, on a "remote"
// Docker host: the push of the copy, the command, and the pull of what it
// changed (nothing).
func BenchmarkCopyExecTrue(b *testing.B) {
	env := dockertest.Require(b)
	benchExecTrue(b, env, copyDocker(b), container.WorkspaceCopy)
}

// BenchmarkCopyExecWritable10k is BenchmarkExecWritable10k in copy mode:
// 3 files changed by the command come back, are applied, and go back.
func BenchmarkCopyExecWritable10k(b *testing.B) {
	env := dockertest.Require(b)
	benchExecWritable10k(b, env, copyDocker(b), container.WorkspaceCopy)
}

// BenchmarkCopyPush measures copy mode's push to a replica on a "remote"
// Docker host (loopback TCP): the first of a repository (an empty volume,
// no copy yet), and the next run's with one file changed. ms-push is the
// push alone, the copy's sync with the repository included; the
// container's start is not in it.
func BenchmarkCopyPush(b *testing.B) {
	env := dockertest.Require(b)
	b.Setenv("DOCKER_HOST", dockertest.RemoteHost(b))
	d, err := container.Connect(context.Background(), "test")
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	dir := pushRepo(b)
	ctx := context.Background()
	open := func(stateDir string) *container.Sandbox {
		sb, err := container.NewSandbox(d, container.Options{Root: dir, Image: env.Image, Labels: env.Labels, Workspace: container.WorkspaceCopy, StateDir: stateDir,
			Limits: sandbox.Limits{}, Pool: container.PoolOptions{Enabled: true, Size: 1, StartupContainers: 1, MaxUsesPerContainer: 1 << 30, AcquireTimeout: time.Minute}})
		if err != nil {
			b.Fatal(err)
		}
		return sb
	}
	report := func(b *testing.B, pushes []container.PushStats) {
		var ms float64
		for _, p := range pushes {
			ms += float64(p.Took.Microseconds()) / 1000
		}
		b.ReportMetric(ms/float64(len(pushes)), "ms-push")
		b.ReportMetric(float64(pushes[0].Files), "files")
		b.ReportMetric(float64(pushes[0].Bytes)/1e6, "MB")
	}
	b.Run("first", func(b *testing.B) {
		var pushes []container.PushStats
		for b.Loop() {
			b.StopTimer()
			sb := open(b.TempDir())
			b.StartTimer()
			if _, err := sb.Resolve(ctx, "."); err != nil {
				b.Fatal(err)
			}
			pushes = append(pushes, sb.LastPush())
			b.StopTimer()
			v := sb.Volume()
			sb.Close()
			dockertest.Gone(env.Docker, dockertest.LabelTest, env.Labels[dockertest.LabelTest], time.Minute)
			env.Docker.RemoveVolume(ctx, v)
			b.StartTimer()
		}
		report(b, pushes)
	})
	b.Run("one-changed", func(b *testing.B) {
		stateDir := b.TempDir()
		sb := open(stateDir)
		if _, err := sb.Resolve(ctx, "."); err != nil {
			b.Fatal(err)
		}
		sb.Close()
		var pushes []container.PushStats
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			os.WriteFile(filepath.Join(dir, "pkg00/sub0/file0000.go"), fmt.Appendf(nil, "package changed // %d\n", i), 0o644)
			sb := open(stateDir)
			b.StartTimer()
			if _, err := sb.Resolve(ctx, "."); err != nil {
				b.Fatal(err)
			}
			pushes = append(pushes, sb.LastPush())
			b.StopTimer()
			sb.Close()
			b.StartTimer()
		}
		report(b, pushes)
	})
}

// BenchmarkCopyOpen4K is a read in copy mode on a warm pool, where
// nothing changed since the last push: what copy mode adds to a read is
// the check that the copy is current (inotify said nothing).
func BenchmarkCopyOpen4K(b *testing.B) {
	sb := fileSandboxIn(b, 4<<10, 1, "", container.WorkspaceCopy)
	defer sb.Close()
	timeOpens(b, sb)
}
