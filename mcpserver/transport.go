package mcpserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// MaxMessage is the longest JSON-RPC message the transport reads; a longer
// line is answered with a parse error and skipped.
const MaxMessage = 64 << 20

// StdioTransport is MCP's stdio transport, newline-delimited JSON-RPC, that
// outlives bad input: a line that is not JSON, or not a JSON-RPC message,
// gets the protocol's own error (parse error, invalid request) and the next
// line is read, where the SDK's transport would close the session.
type StdioTransport struct {
	In  io.ReadCloser
	Out io.WriteCloser
}

// Connect implements mcp.Transport.
func (t *StdioTransport) Connect(context.Context) (mcp.Connection, error) {
	c := &lineConn{in: t.In, out: t.Out, msgs: make(chan readResult), closed: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

type readResult struct {
	msg jsonrpc.Message
	err error
}

type lineConn struct {
	in        io.ReadCloser
	out       io.WriteCloser
	wmu       sync.Mutex
	msgs      chan readResult
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *lineConn) readLoop() {
	br := bufio.NewReaderSize(c.in, 64<<10)
	for {
		line, err := readLine(br, MaxMessage)
		if len(bytes.TrimSpace(line)) > 0 || errors.Is(err, errTooLong) {
			var msg jsonrpc.Message
			if errors.Is(err, errTooLong) {
				c.reject(nil, jsonrpc.CodeParseError, fmt.Sprintf("a message longer than %d bytes", MaxMessage))
				err = nil
			} else if msg = c.decode(line); msg != nil {
				select {
				case c.msgs <- readResult{msg: msg}:
				case <-c.closed:
					return
				}
			}
		}
		if err != nil {
			select {
			case c.msgs <- readResult{err: err}:
			case <-c.closed:
			}
			return
		}
	}
}

var errTooLong = errors.New("line too long")

// readLine reads one line, without its terminator; a line over max is
// read to its end and dropped, with errTooLong.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	long := false
	for {
		chunk, err := br.ReadSlice('\n')
		if long || len(line)+len(chunk) > max {
			long, line = true, nil
		} else {
			line = append(line, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if long {
			return nil, errTooLong // an EOF after it comes with the next read
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

// decode returns the message of a line, or answers it with the
// protocol's error and returns nil.
func (c *lineConn) decode(line []byte) jsonrpc.Message {
	if !json.Valid(line) {
		c.reject(nil, jsonrpc.CodeParseError, "parse error: the line is not JSON")
		return nil
	}
	msg, err := jsonrpc.DecodeMessage(line)
	if err == nil {
		return msg
	}
	// Valid JSON, not a message: answer with its id if it has one.
	var probe struct {
		ID json.RawMessage `json:"id"`
	}
	var id any
	if json.Unmarshal(line, &probe) == nil && len(probe.ID) > 0 {
		json.Unmarshal(probe.ID, &id)
		switch id.(type) {
		case string, float64:
		default:
			id = nil
		}
	}
	c.reject(id, jsonrpc.CodeInvalidRequest, "invalid request: "+err.Error())
	return nil
}

// reject writes an error response to a message that cannot be handled.
func (c *lineConn) reject(id any, code int64, msg string) {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": msg}})
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.out.Write(append(b, '\n'))
}

// Read implements mcp.Connection.
func (c *lineConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	select {
	case r := <-c.msgs:
		return r.msg, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.closed:
		return nil, io.EOF
	}
}

// Write implements mcp.Connection.
func (c *lineConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	b, err := encode(msg)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.closed:
		return io.ErrClosedPipe
	default:
	}
	_, err = c.out.Write(append(b, '\n'))
	return err
}

// encode is jsonrpc.EncodeMessage, but a successful response's result,
// already JSON (the SDK marshalled it), is copied as it is rather than
// scanned and compacted once more: for a tool result of a few KiB that
// pass was a third of the server's time.
func encode(msg jsonrpc.Message) ([]byte, error) {
	r, ok := msg.(*jsonrpc.Response)
	if !ok || r.Error != nil || len(r.Result) == 0 {
		return jsonrpc.EncodeMessage(msg)
	}
	id, err := json.Marshal(r.ID.Raw())
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(r.Result)+len(id)+40)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"result":`...)
	b = append(b, r.Result...)
	return append(b, '}'), nil
}

// Close implements mcp.Connection.
func (c *lineConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.in.Close()
	})
	return nil
}

// SessionID implements mcp.Connection.
func (c *lineConn) SessionID() string { return "" }
