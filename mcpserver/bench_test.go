package mcpserver_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/mcpserver"
	"github.com/llm-runtime/llm-runtime/runner"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// BenchmarkReadFile4KiB is a tools/call read_file of 4 KiB in process, a
// JSON-RPC line in and a line out over the server's own stdio transport,
// with the local sandbox and no audit: the MCP layer's own cost.
func BenchmarkReadFile4KiB(b *testing.B) {
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "4k.txt"), []byte(strings.Repeat(strings.Repeat("x", 63)+"\n", 64)), 0o644)
	sb, err := sandbox.NewLocal(dir, sandbox.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	srv := mcpserver.New(mcpserver.Options{Runner: &runner.Runner{Sandbox: sb, FrontEnd: "mcp"}, Root: dir})
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Run(ctx, &mcpserver.StdioTransport{In: inR, Out: outW})
	lines := bufio.NewReaderSize(outR, 1<<20)
	call := func(msg string) string {
		io.WriteString(inW, msg+"\n")
		line, err := lines.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		return line
	}
	call(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}`)
	io.WriteString(inW, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")
	read := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"4k.txt"}}}`
	b.ReportAllocs()
	for b.Loop() {
		if line := call(read); !strings.Contains(line, `"total_lines":64`) {
			b.Fatal(line)
		}
	}
	inW.Close()
}
