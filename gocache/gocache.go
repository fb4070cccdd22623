// Package gocache is a layered build cache for the go command, served
// through GOCACHEPROG (cmd/go's external cache program protocol, see
// "go doc cmd/go/internal/cacheprog").
//
// A Cache has two layers: Base, a read-only seed that this package wrote
// earlier (the standard library compiled when an image was built, say),
// and Dir, the writable directory every put goes to. A get looks in Dir,
// then in Base; an output is served from whichever layer holds it, so an
// entry put in Dir may name an output that only Base holds, and then only
// the entry is written. A seed is made by a build served with the seed's
// directory as Dir and no Base. Dir is made if it is missing; a Base
// that does not exist is none.
//
// # Protocol
//
// The program writes {"ID":0,"KnownCommands":["get","put","close"]}
// first, then answers each request, one JSON object a line, in order.
// IDs are JSON base64 strings of 32 bytes. A put with a BodySize is
// followed by its body: a JSON string of the body's base64, on a line of
// its own; the body is streamed to its file, never held in memory. A
// DiskPath is absolute, and its file stays (nothing is ever removed).
//
// # Layout
//
// Both layers have the same layout, IDs being SHA-256 sums in lowercase
// hex (64 digits) and xx the first two digits of the ID:
//
//	o/xx/<outputID>  an output: the body of a put, its SHA-256 being its name
//	a/xx/<actionID>  an action entry: JSON {"output":"<outputID>","size":N,"time":"<RFC 3339>"}
//
// Files are written to a temporary file beside their final name (a name
// that begins with ".tmp-", never a valid ID) and renamed onto it, so a
// reader never sees a torn file and several go commands may share Dir:
// writers of the same name write the same content (an output is named by
// its hash; an entry's last writer wins, and every version of it is
// whole). A crash may leave a temporary file behind, never a partial
// entry. Files are not synced: a machine that loses power may bring a
// file back short, and that is caught as below.
//
// # Hostile input
//
// The go command that speaks to the program, and anything else that can
// write Dir, may be hostile. IDs in requests must be 32 bytes; IDs read
// from entries must be 64 lowercase hex digits; every path is opened
// beneath its layer's directory through [os.Root], so no name, and no
// symbolic link, leads out of it. An entry that is damaged (not a
// regular file, a FIFO even, too long, not JSON, an output ID that is
// not one, a size that is not the size of the output, an output that is
// missing or not a regular file) is a miss, never an error and never a
// DiskPath to a wrong file: an entry in Dir is checked against its
// output by size (outputs are not rehashed on a get). A put whose body's
// SHA-256 is not its OutputID, or whose body is larger than 2 GiB,
// is refused with an error, and the stream stays in step; a put mends a
// damaged entry or output by writing over it.
package gocache

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"
)

// Cache is a layered build cache for GOCACHEPROG.
type Cache struct {
	Base string // read-only seed directory, "" for none
	Dir  string // writable directory
}

const (
	// idLen is the length of an action or output ID: a SHA-256 sum.
	idLen = sha256.Size

	// maxBodySize is the largest body a put may carry: linked test
	// binaries are the largest things the go command caches.
	maxBodySize = 2 << 30

	// maxLine bounds a request's JSON line (about 200 bytes in practice).
	maxLine = 64 << 10

	// maxEntry bounds an action entry file (about 130 bytes in practice).
	maxEntry = 4 << 10
)

// The commands of the protocol.
const (
	cmdGet   = "get"
	cmdPut   = "put"
	cmdClose = "close"
)

// response mirrors cmd/go/internal/cacheprog.Response.
type response struct {
	ID            int64
	Err           string     `json:",omitempty"`
	KnownCommands []string   `json:",omitempty"`
	Miss          bool       `json:",omitempty"`
	OutputID      []byte     `json:",omitempty"`
	Size          int64      `json:",omitempty"`
	Time          *time.Time `json:",omitempty"`
	DiskPath      string     `json:",omitempty"`
}

// entry is the JSON of an action entry file.
type entry struct {
	Output string    `json:"output"`
	Size   int64     `json:"size"`
	Time   time.Time `json:"time"`
}

// layer is one directory of the cache, opened.
type layer struct {
	root *os.Root
	abs  string // its absolute path, for DiskPath
}

// server is one Serve call.
type server struct {
	dir  *layer
	base *layer // nil for none
	br   *bufio.Reader
	bw   *bufio.Writer
	enc  *json.Encoder
}

// errStream is a request stream that cannot go on: the request line is
// not JSON with an ID, a body is not a JSON string, or r ended within one.
type errStream struct{ err error }

func (e *errStream) Error() string { return "gocache: bad request stream: " + e.err.Error() }
func (e *errStream) Unwrap() error { return e.err }

// Serve speaks the GOCACHEPROG protocol on r (requests from cmd/go) and w (responses) until a close request or r's end.
func (c *Cache) Serve(r io.Reader, w io.Writer) error {
	s, err := c.open()
	if err != nil {
		return err
	}
	defer s.close()
	s.br = bufio.NewReaderSize(r, 64<<10)
	s.bw = bufio.NewWriterSize(w, 4<<10)
	s.enc = json.NewEncoder(s.bw)
	if err := s.reply(&response{ID: 0, KnownCommands: []string{cmdGet, cmdPut, cmdClose}}); err != nil {
		return err
	}
	for {
		line, err := s.readLine()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		res, done, err := s.handle(line)
		if err != nil {
			return err
		}
		if err := s.reply(res); err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// open opens the layers: Dir is made if it is missing; a Base that does
// not exist is no Base.
func (c *Cache) open() (*server, error) {
	if c.Dir == "" {
		return nil, errors.New("gocache: no Dir")
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("gocache: %w", err)
	}
	dir, err := openLayer(c.Dir)
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir}
	if c.Base != "" {
		base, err := openLayer(c.Base)
		if errors.Is(err, fs.ErrNotExist) {
			return s, nil
		}
		if err != nil {
			dir.root.Close()
			return nil, err
		}
		s.base = base
	}
	return s, nil
}

func openLayer(dir string) (*layer, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("gocache: %w", err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("gocache: %w", err)
	}
	return &layer{root: root, abs: abs}, nil
}

func (s *server) close() {
	s.dir.root.Close()
	if s.base != nil {
		s.base.root.Close()
	}
}

func (s *server) reply(res *response) error {
	if err := s.enc.Encode(res); err != nil {
		return fmt.Errorf("gocache: writing response: %w", err)
	}
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("gocache: writing response: %w", err)
	}
	return nil
}

// readLine returns the next line that is not blank, without its newline;
// io.EOF at the end of r.
func (s *server) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := s.br.ReadSlice('\n')
		if len(line)+len(chunk) > maxLine {
			return nil, &errStream{fmt.Errorf("request line longer than %d bytes", maxLine)}
		}
		line = append(line, chunk...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(bytes.TrimSpace(line)) == 0:
			return nil, io.EOF
		case err != nil && err != io.EOF:
			return nil, &errStream{err}
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			return t, nil
		}
		line = line[:0]
	}
}

// handle answers the request on line, reading its body if it has one.
// done says the request was a close; an error is the stream's end.
func (s *server) handle(line []byte) (res *response, done bool, err error) {
	// The ID and the body's size first: with them the request can be
	// answered and the stream kept in step whatever else is wrong.
	var hdr struct {
		ID       int64
		BodySize int64
	}
	if line[0] != '{' {
		return nil, false, &errStream{errors.New("request is not a JSON object")}
	}
	if err := json.Unmarshal(line, &hdr); err != nil {
		return nil, false, &errStream{err}
	}
	res = &response{ID: hdr.ID}
	var req struct {
		Command  string
		ActionID []byte
		OutputID []byte
	}
	if err := json.Unmarshal(line, &req); err != nil {
		return s.refuse(res, hdr.BodySize, fmt.Errorf("bad request: %v", err))
	}
	switch req.Command {
	case cmdGet:
		if hdr.BodySize != 0 {
			return s.refuse(res, hdr.BodySize, errors.New("get with a body"))
		}
		if len(req.ActionID) != idLen {
			res.Err = fmt.Sprintf("ActionID has %d bytes, not %d", len(req.ActionID), idLen)
			return res, false, nil
		}
		s.get(res, req.ActionID)
		return res, false, nil
	case cmdPut:
		if err := s.put(res, req.ActionID, req.OutputID, hdr.BodySize); err != nil {
			return nil, false, err
		}
		return res, false, nil
	case cmdClose:
		if hdr.BodySize != 0 {
			return s.refuse(res, hdr.BodySize, errors.New("close with a body"))
		}
		return res, true, nil
	}
	return s.refuse(res, hdr.BodySize, fmt.Errorf("unknown command %q", req.Command))
}

// refuse answers with the error, after reading past the request's body.
func (s *server) refuse(res *response, bodySize int64, err error) (*response, bool, error) {
	if bodySize > 0 {
		if _, ferr := s.readBody(bodySize, io.Discard); ferr != nil {
			return nil, false, ferr
		}
	}
	res.Err = err.Error()
	return res, false, nil
}

// get fills res for the action: from Dir's entry if it is whole, else
// from Base's, else a miss.
func (s *server) get(res *response, actionID []byte) {
	name := idPath("a", hex.EncodeToString(actionID))
	for _, l := range []*layer{s.dir, s.base} {
		if l == nil {
			continue
		}
		e, ok := readEntry(l, name)
		if !ok {
			continue
		}
		// An entry of Dir may name an output of Base; one of Base, only
		// its own.
		outputs := []*layer{l}
		if l == s.dir && s.base != nil {
			outputs = append(outputs, s.base)
		}
		for _, o := range outputs {
			if p, ok := o.output(e.Output, e.Size); ok {
				res.OutputID, _ = hex.DecodeString(e.Output)
				res.Size = e.Size
				if !e.Time.IsZero() {
					t := e.Time
					res.Time = &t
				}
				res.DiskPath = p
				return
			}
		}
	}
	res.Miss = true
}

// readEntry reads and checks the action entry name of l.
func readEntry(l *layer, name string) (entry, bool) {
	data, ok := readSmall(l.root, name, maxEntry)
	if !ok {
		return entry{}, false
	}
	var e entry
	if err := json.Unmarshal(data, &e); err != nil {
		return entry{}, false
	}
	if !validID(e.Output) || e.Size < 0 || e.Size > maxBodySize {
		return entry{}, false
	}
	return e, true
}

// readSmall reads the regular file name beneath root if it has at most
// max bytes. It opens before it looks: a file looked at and then opened
// may be another, renamed onto the name by a concurrent writer.
func readSmall(root *os.Root, name string, max int64) ([]byte, bool) {
	// Non-blocking, so that opening a FIFO put in the file's place
	// cannot hang the build; what is not a regular file is not read.
	f, err := root.OpenFile(name, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > max {
		return nil, false
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil || int64(len(data)) > max {
		return nil, false
	}
	return data, true
}

// output returns the path of l's output id when it is a regular file of
// size bytes.
func (l *layer) output(id string, size int64) (string, bool) {
	name := idPath("o", id)
	fi, err := l.root.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != size {
		return "", false
	}
	return filepath.Join(l.abs, filepath.FromSlash(name)), true
}

// put reads the request's body, checks it against outputID and stores
// it and the action's entry in Dir, filling res. An error is the
// stream's end; a refused put is res.Err.
func (s *server) put(res *response, actionID, outputID []byte, size int64) error {
	var refusal error
	switch {
	case size < 0:
		// No body follows a size that is not positive.
		res.Err = fmt.Sprintf("negative BodySize %d", size)
		return nil
	case size > maxBodySize:
		refusal = fmt.Errorf("BodySize %d is larger than %d", size, maxBodySize)
	case len(actionID) != idLen:
		refusal = fmt.Errorf("ActionID has %d bytes, not %d", len(actionID), idLen)
	case len(outputID) != idLen:
		refusal = fmt.Errorf("OutputID has %d bytes, not %d", len(outputID), idLen)
	}
	if refusal != nil {
		_, _, err := s.refuse(res, size, refusal)
		return err
	}
	out := hex.EncodeToString(outputID)
	h := sha256.New()

	// An output that Base already holds is not copied: the body is only
	// checked.
	if s.base != nil {
		if p, ok := s.base.output(out, size); ok {
			if bad, fatal := s.body(size, h); fatal != nil || bad != nil {
				res.Err = errString(bad)
				return fatal
			}
			if err := checkSum(h, outputID); err != nil {
				res.Err = err.Error()
				return nil
			}
			return s.putEntry(res, actionID, out, size, p)
		}
	}

	name := idPath("o", out)
	tmp, f, err := s.dir.create(path.Dir(name))
	if err != nil {
		return s.refuseAfter(res, size, err)
	}
	defer func() {
		if f != nil {
			f.Close()
			s.dir.root.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	if bad, fatal := s.body(size, io.MultiWriter(bw, h)); fatal != nil || bad != nil {
		res.Err = errString(bad)
		return fatal
	}
	if err := bw.Flush(); err != nil {
		res.Err = err.Error()
		return nil
	}
	if err := checkSum(h, outputID); err != nil {
		res.Err = err.Error()
		return nil
	}
	if err := f.Close(); err != nil {
		f = nil
		s.dir.root.Remove(tmp)
		res.Err = err.Error()
		return nil
	}
	f = nil
	if err := s.dir.rename(tmp, name, size); err != nil {
		res.Err = err.Error()
		return nil
	}
	return s.putEntry(res, actionID, out, size, filepath.Join(s.dir.abs, filepath.FromSlash(name)))
}

// body reads a body of size bytes into w (nothing when size is 0), as
// readBody does.
func (s *server) body(size int64, w io.Writer) (bad, fatal error) {
	if size == 0 {
		return nil, nil
	}
	return s.readBody(size, w)
}

// refuseAfter reads past the body and answers with err.
func (s *server) refuseAfter(res *response, size int64, err error) error {
	_, _, ferr := s.refuse(res, size, err)
	return ferr
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func checkSum(h hash.Hash, want []byte) error {
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("body's SHA-256 is %x, not the OutputID %x", got, want)
	}
	return nil
}

// putEntry writes the action's entry to Dir and fills res.
func (s *server) putEntry(res *response, actionID []byte, out string, size int64, diskPath string) error {
	data, err := json.Marshal(entry{Output: out, Size: size, Time: time.Now().UTC()})
	if err != nil {
		return err
	}
	data = append(data, '\n')
	name := idPath("a", hex.EncodeToString(actionID))
	if err := s.dir.writeFile(name, data); err != nil {
		res.Err = err.Error()
		return nil
	}
	res.DiskPath = diskPath
	return nil
}

// create makes a new temporary file in the directory dir of l.
func (l *layer) create(dir string) (string, *os.File, error) {
	if err := l.root.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	for {
		var b [8]byte
		rand.Read(b[:])
		name := path.Join(dir, ".tmp-"+hex.EncodeToString(b[:]))
		f, err := l.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		return name, f, nil
	}
}

// rename moves tmp onto name. Should that fail, a whole file of the same
// size already there (a concurrent writer's) will do; anything else in
// the way (a directory, say) is removed and the rename tried again.
func (l *layer) rename(tmp, name string, size int64) error {
	err := l.root.Rename(tmp, name)
	if err == nil {
		return nil
	}
	fi, lerr := l.root.Lstat(name)
	if lerr == nil && fi.Mode().IsRegular() && fi.Size() == size {
		l.root.Remove(tmp)
		return nil
	}
	if lerr == nil && !fi.Mode().IsRegular() {
		l.root.RemoveAll(name)
		if err = l.root.Rename(tmp, name); err == nil {
			return nil
		}
	}
	l.root.Remove(tmp)
	return err
}

// writeFile writes data to name through a temporary file.
func (l *layer) writeFile(name string, data []byte) error {
	tmp, f, err := l.create(path.Dir(name))
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		l.root.Remove(tmp)
		return err
	}
	return l.rename(tmp, name, int64(len(data)))
}

// readBody reads a body: a JSON string of the base64 of size bytes, and
// writes the bytes to w. fatal is an *errStream: the stream cannot go
// on. bad is an error of the body alone (not base64, not size bytes, or
// w's error), read to its end.
func (s *server) readBody(size int64, w io.Writer) (bad, fatal error) {
	c, err := s.skipSpace()
	if err != nil {
		return nil, &errStream{fmt.Errorf("reading body: %w", err)}
	}
	if c != '"' {
		return nil, &errStream{fmt.Errorf("body begins with %q, not a JSON string", c)}
	}
	s.br.ReadByte()
	q := &quoted{br: s.br}
	n, err := io.Copy(w, io.LimitReader(base64.NewDecoder(base64.StdEncoding, q), size+1))
	if _, derr := io.Copy(io.Discard, q); derr != nil || q.err != nil {
		return nil, &errStream{fmt.Errorf("reading body: %w", errors.Join(q.err, derr))}
	}
	if err != nil {
		return fmt.Errorf("body: %w", err), nil
	}
	if n != size {
		if n > size {
			return fmt.Errorf("body is longer than BodySize %d", size), nil
		}
		return fmt.Errorf("body has %d bytes, not BodySize %d", n, size), nil
	}
	return nil, nil
}

// skipSpace skips JSON white space and returns the next byte, unread.
func (s *server) skipSpace() (byte, error) {
	for {
		b, err := s.br.Peek(1)
		if err == io.EOF {
			return 0, io.ErrUnexpectedEOF
		}
		if err != nil {
			return 0, err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			s.br.ReadByte()
		default:
			return b[0], nil
		}
	}
}

// quoted reads the rest of a JSON string up to its closing quote, which
// it consumes. The base64 that cmd/go writes needs no escapes; a
// backslash is left to the base64 decoder to refuse.
type quoted struct {
	br   *bufio.Reader
	done bool
	err  error // the stream's error
}

func (q *quoted) Read(p []byte) (int, error) {
	if q.done {
		return 0, io.EOF
	}
	if q.err != nil {
		return 0, q.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if q.br.Buffered() == 0 {
		if _, err := q.br.Peek(1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			q.err = err
			return 0, err
		}
	}
	buf, _ := q.br.Peek(min(len(p), q.br.Buffered()))
	if i := bytes.IndexByte(buf, '"'); i >= 0 {
		n := copy(p, buf[:i])
		q.br.Discard(i + 1)
		q.done = true
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
	n := copy(p, buf)
	q.br.Discard(n)
	return n, nil
}

// idPath is the name of an ID's file in a layer: kind/xx/id.
func idPath(kind, id string) string {
	return kind + "/" + id[:2] + "/" + id
}

// validID says whether s is an ID: 64 lowercase hex digits.
func validID(s string) bool {
	if len(s) != 2*idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
