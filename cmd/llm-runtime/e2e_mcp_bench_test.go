package main

// Benchmarks of 'llm-runtime mcp' through the binary, with the go-sdk's
// client over stdio:
//
//	go test ./cmd/llm-runtime -run '^$' -bench MCP -benchtime 2000x
//
// BenchmarkMCPReadFile reports the p50 and p99 of a warm tools/call
// read_file of 4 KiB and the server's resident memory after the calls;
// BenchmarkMCPFirstResult the time from starting the process to the
// first tool result.

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

func benchRepo(b *testing.B) string {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "4k.txt"), []byte(strings.Repeat(strings.Repeat("x", 63)+"\n", 64)), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

func benchConnect(b *testing.B, dir, sb string) (*mcp.ClientSession, *exec.Cmd) {
	cmd := exec.Command(binary, "mcp", "--root", dir, "--sandbox", sb)
	cmd.Env = append(cleanEnv(), os.Getenv("MCP_BENCH_ENV"))
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "0"}, nil).Connect(context.Background(), &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return cs, cmd
}

func readOnce(b *testing.B, cs *mcp.ClientSession) {
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "4k.txt"}})
	if err != nil || res.IsError {
		b.Fatalf("read_file: %v %v", err, res)
	}
}

// BenchmarkMCPReadFile speaks JSON-RPC over the server's standard streams
// itself, a line out and a line back, so that what it measures is the
// server (a client's own JSON costs more than the server's, with the
// go-sdk's client).
func BenchmarkMCPReadFile(b *testing.B) {
	for _, sb := range []string{"docker", "local"} {
		b.Run(sb, func(b *testing.B) {
			if sb == "docker" {
				dockertest.Require(b)
			}
			cmd := exec.Command(binary, "mcp", "--root", benchRepo(b), "--sandbox", sb)
			cmd.Env = append(cleanEnv(), os.Getenv("MCP_BENCH_ENV"))
			in, _ := cmd.StdinPipe()
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			defer func() { in.Close(); cmd.Wait() }()
			lines := bufio.NewReaderSize(out, 1<<20)
			call := func(msg string, want string) {
				if _, err := io.WriteString(in, msg+"\n"); err != nil {
					b.Fatal(err)
				}
				line, err := lines.ReadString('\n')
				if err != nil || !strings.Contains(line, want) {
					b.Fatalf("%v: %.300s", err, line)
				}
			}
			call(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}`, `"serverInfo"`)
			io.WriteString(in, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")
			read := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"4k.txt"}}}`
			for range 20 { // warm: the pool's container, the caches
				call(read, `"total_lines":64`)
			}
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				call(read, `"total_lines":64`)
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(rssMB(cmd.Process.Pid), "rss-MB")
		})
	}
}

func BenchmarkMCPFirstResult(b *testing.B) {
	for _, sb := range []string{"docker", "local"} {
		b.Run(sb, func(b *testing.B) {
			if sb == "docker" {
				dockertest.Require(b)
			}
			dir := benchRepo(b)
			for range b.N {
				cs, _ := benchConnect(b, dir, sb)
				readOnce(b, cs)
				b.StopTimer()
				cs.Close()
				b.StartTimer()
			}
		})
	}
}

// rssMB is a process's resident memory (VmRSS) in MB.
func rssMB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}
