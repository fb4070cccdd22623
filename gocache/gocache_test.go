package gocache

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// client speaks to a Serve over pipes, the way cmd/go does.
type client struct {
	t    *testing.T
	w    *io.PipeWriter
	dec  *json.Decoder
	done chan struct{} // closed when Serve has returned
	err  error         // what it returned
	id   int64
}

var errServeReturned = errors.New("Serve returned")

// start runs c.Serve and reads its first message.
func start(t *testing.T, c *Cache) *client {
	t.Helper()
	reqR, reqW := io.Pipe()
	resR, resW := io.Pipe()
	cl := &client{t: t, w: reqW, dec: json.NewDecoder(resR), done: make(chan struct{})}
	go func() {
		cl.err = c.Serve(reqR, resW)
		reqR.CloseWithError(errServeReturned)
		resW.Close()
		close(cl.done)
	}()
	t.Cleanup(func() {
		reqW.Close()
		<-cl.done
	})
	var hello response
	if err := cl.dec.Decode(&hello); err != nil {
		t.Fatalf("first message: %v", err)
	}
	if hello.ID != 0 || strings.Join(hello.KnownCommands, ",") != "get,put,close" {
		t.Fatalf("first message = %+v", hello)
	}
	return cl
}

// raw sends text as it is and returns the response.
func (cl *client) raw(text string) response {
	cl.t.Helper()
	res, err := cl.tryRaw(text)
	if err != nil {
		cl.t.Fatal(err)
	}
	return res
}

func (cl *client) tryRaw(text string) (response, error) {
	var res response
	if _, err := io.WriteString(cl.w, text); err != nil {
		return res, fmt.Errorf("writing request: %v", err)
	}
	if err := cl.dec.Decode(&res); err != nil {
		return res, fmt.Errorf("reading response: %v", err)
	}
	return res, nil
}

// request sends a request as cmd/go writes it: the JSON, a blank line,
// and the body, if any, as a JSON string of its base64.
func (cl *client) request(cmd string, actionID, outputID []byte, body []byte, bodySize int64) response {
	cl.t.Helper()
	res, err := cl.tryRequest(cmd, actionID, outputID, body, bodySize)
	if err != nil {
		cl.t.Fatal(err)
	}
	return res
}

// tryRequest is request for a goroutine other than the test's.
func (cl *client) tryRequest(cmd string, actionID, outputID []byte, body []byte, bodySize int64) (response, error) {
	cl.id++
	req := map[string]any{"ID": cl.id, "Command": cmd}
	if actionID != nil {
		req["ActionID"] = actionID
	}
	if outputID != nil {
		req["OutputID"] = outputID
	}
	if bodySize != 0 {
		req["BodySize"] = bodySize
	}
	line, err := json.Marshal(req)
	if err != nil {
		return response{}, err
	}
	text := string(line) + "\n\n"
	if bodySize > 0 {
		text += `"` + base64.StdEncoding.EncodeToString(body) + "\"\n"
	}
	res, err := cl.tryRaw(text)
	if err == nil && res.ID != cl.id {
		err = fmt.Errorf("response ID %d to request %d", res.ID, cl.id)
	}
	return res, err
}

func (cl *client) put(actionID, body []byte) response {
	cl.t.Helper()
	sum := sha256.Sum256(body)
	return cl.request("put", actionID, sum[:], body, int64(len(body)))
}

func (cl *client) get(actionID []byte) response {
	cl.t.Helper()
	return cl.request("get", actionID, nil, nil, 0)
}

func (cl *client) tryPut(actionID, body []byte) (response, error) {
	sum := sha256.Sum256(body)
	return cl.tryRequest("put", actionID, sum[:], body, int64(len(body)))
}

func (cl *client) tryGet(actionID []byte) (response, error) {
	return cl.tryRequest("get", actionID, nil, nil, 0)
}

// close sends a close and returns what Serve returned.
func (cl *client) close() error {
	cl.t.Helper()
	if res := cl.request("close", nil, nil, nil, 0); res.Err != "" {
		cl.t.Fatalf("close: %s", res.Err)
	}
	<-cl.done
	return cl.err
}

func actionID(s string) []byte {
	sum := sha256.Sum256([]byte("action " + s))
	return sum[:]
}

// mustPut puts body for the action and checks the response.
func mustPut(t *testing.T, cl *client, aid, body []byte) string {
	t.Helper()
	res := cl.put(aid, body)
	if res.Err != "" || res.DiskPath == "" {
		t.Fatalf("put: %+v", res)
	}
	checkFile(t, res.DiskPath, body)
	return res.DiskPath
}

// mustHit gets the action and checks that it is body, at a path under dir.
func mustHit(t *testing.T, cl *client, aid, body []byte, dir string) {
	t.Helper()
	res := cl.get(aid)
	sum := sha256.Sum256(body)
	if res.Err != "" || res.Miss || !bytes.Equal(res.OutputID, sum[:]) || res.Size != int64(len(body)) || res.Time == nil {
		t.Fatalf("get: %+v", res)
	}
	if !strings.HasPrefix(res.DiskPath, dir+string(filepath.Separator)) {
		t.Errorf("DiskPath %s is not under %s", res.DiskPath, dir)
	}
	checkFile(t, res.DiskPath, body)
}

func mustMiss(t *testing.T, cl *client, aid []byte) {
	t.Helper()
	if res := cl.get(aid); res.Err != "" || !res.Miss || res.DiskPath != "" {
		t.Fatalf("get: %+v, want a miss", res)
	}
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	if !filepath.IsAbs(path) {
		t.Errorf("DiskPath %s is not absolute", path)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s holds %q, want %q", path, got, want)
	}
}

// files lists the files under dir, relative, with slashes.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var list []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			list = append(list, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func noTemporaries(t *testing.T, dir string) {
	t.Helper()
	for _, f := range files(t, dir) {
		if strings.Contains(f, ".tmp-") {
			t.Errorf("temporary file left: %s", f)
		}
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func TestPutThenGet(t *testing.T) {
	dir := t.TempDir()
	cl := start(t, &Cache{Dir: dir})
	aid := actionID("a")
	body := []byte("the compiled package")
	mustMiss(t, cl, aid)
	p := mustPut(t, cl, aid, body)
	sum := sha256.Sum256(body)
	out := hexOf(sum[:])
	if want := filepath.Join(dir, "o", out[:2], out); p != want {
		t.Errorf("put's DiskPath = %s, want %s", p, want)
	}
	mustHit(t, cl, aid, body, dir)

	// The layout of the package doc.
	a := hexOf(aid)
	data, err := os.ReadFile(filepath.Join(dir, "a", a[:2], a))
	if err != nil {
		t.Fatal(err)
	}
	var e entry
	if err := json.Unmarshal(data, &e); err != nil || e.Output != out || e.Size != int64(len(body)) || e.Time.IsZero() {
		t.Errorf("entry %s: %+v, %v", data, e, err)
	}

	// An empty body has no body line; a second put of the same replaces.
	empty := actionID("empty")
	mustPut(t, cl, empty, nil)
	mustHit(t, cl, empty, nil, dir)
	mustPut(t, cl, aid, []byte("another output"))
	mustHit(t, cl, aid, []byte("another output"), dir)

	if err := cl.close(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	noTemporaries(t, dir)
}

func TestLargeBody(t *testing.T) {
	dir := t.TempDir()
	cl := start(t, &Cache{Dir: dir})
	body := bytes.Repeat([]byte("0123456789abcdef"), 300<<10) // 4.8 MB, several buffers
	body[12345] = 'x'
	mustPut(t, cl, actionID("large"), body)
	mustHit(t, cl, actionID("large"), body, dir)
}

func TestServeEnds(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		ok          bool
	}{
		{"end", "", true},
		{"end after blank lines", "\n\n  \n", true},
		{"end within a body", `{"ID":1,"Command":"put","BodySize":3}` + "\n\n\"AAA", false},
		{"end before a body", `{"ID":1,"Command":"put","BodySize":3}` + "\n\n", false},
		{"not JSON", "hello\n", false},
		{"not an object", "null\n", false},
		{"ID not a number", `{"ID":"1","Command":"get"}` + "\n", false},
		{"body not a string", `{"ID":1,"Command":"put","BodySize":3}` + "\n\n{}\n", false},
		{"line too long", `{"ID":1,"Command":"get","X":"` + strings.Repeat("x", maxLine) + "\"}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := (&Cache{Dir: t.TempDir()}).Serve(strings.NewReader(tc.input), &out)
			if (err == nil) != tc.ok {
				t.Errorf("Serve = %v", err)
			}
			if !strings.HasPrefix(out.String(), `{"ID":0,"KnownCommands":["get","put","close"]}`+"\n") {
				t.Errorf("output %q", out.String())
			}
		})
	}
}

func TestRefusedRequestsKeepTheStreamInStep(t *testing.T) {
	dir := t.TempDir()
	cl := start(t, &Cache{Dir: dir})
	body := []byte("body")
	sum := sha256.Sum256(body)
	aid := actionID("x")
	other := sha256.Sum256([]byte("other"))
	for _, tc := range []struct {
		name  string
		req   func() response
		inErr string
	}{
		{"wrong output ID", func() response { return cl.request("put", aid, other[:], body, 4) }, "SHA-256"},
		{"body shorter than BodySize", func() response { return cl.request("put", aid, sum[:], body, 5) }, "BodySize"},
		{"body longer than BodySize", func() response { return cl.request("put", aid, sum[:], body, 3) }, "BodySize"},
		{"BodySize too large", func() response { return cl.request("put", aid, sum[:], body, maxBodySize+1) }, "larger"},
		{"negative BodySize", func() response { return cl.request("put", aid, sum[:], nil, -1) }, "negative"},
		{"body not base64", func() response {
			cl.id++
			return cl.raw(fmt.Sprintf(`{"ID":%d,"Command":"put","ActionID":%q,"OutputID":%q,"BodySize":4}`+"\n\n\"!!!!!!\"\n",
				cl.id, base64.StdEncoding.EncodeToString(aid), base64.StdEncoding.EncodeToString(sum[:])))
		}, "body"},
		{"unknown command", func() response { return cl.request("get2", aid, nil, body, 4) }, "unknown command"},
		{"get with a body", func() response { return cl.request("get", aid, nil, body, 4) }, "body"},
		{"put without IDs", func() response { return cl.request("put", nil, nil, body, 4) }, "ActionID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.req()
			if res.ID != cl.id || !strings.Contains(res.Err, tc.inErr) || res.DiskPath != "" {
				t.Errorf("response %+v, want an error with %q", res, tc.inErr)
			}
			// Nothing was stored, and the next request is read as one.
			mustMiss(t, cl, aid)
		})
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("files in Dir after refused puts: %v", got)
	}
	mustPut(t, cl, aid, body)
	mustHit(t, cl, aid, body, dir)
}

func TestHostileIDs(t *testing.T) {
	dir := t.TempDir()
	cl := start(t, &Cache{Dir: dir})
	body := []byte("body")
	sum := sha256.Sum256(body)
	// IDs are bytes in the protocol: what is not 32 of them is refused,
	// for a get and for a put.
	for _, id := range [][]byte{
		[]byte("../"),
		[]byte("../../../../../../../../etc/passwd"),
		bytes.Repeat([]byte{0xab}, 31),
		bytes.Repeat([]byte{0xab}, 33),
		[]byte{},
	} {
		if res := cl.get(id); res.Err == "" || res.Miss || res.DiskPath != "" {
			t.Errorf("get of ActionID %q: %+v", id, res)
		}
		if res := cl.request("put", id, sum[:], body, 4); res.Err == "" || res.DiskPath != "" {
			t.Errorf("put of ActionID %q: %+v", id, res)
		}
		if res := cl.request("put", actionID("a"), id, body, 4); res.Err == "" || res.DiskPath != "" {
			t.Errorf("put of OutputID %q: %+v", id, res)
		}
	}
	// An ID that is not base64 at all, such as a path or hex: refused,
	// the stream kept.
	for _, field := range []string{`"../../x"`, `"` + strings.Repeat("AB", 32) + `"`, `"` + hexOf(sum[:]) + `"`, `7`} {
		cl.id++
		res := cl.raw(fmt.Sprintf(`{"ID":%d,"Command":"get","ActionID":%s}`+"\n\n", cl.id, field))
		if res.ID != cl.id || res.Err == "" || res.DiskPath != "" {
			t.Errorf("get of ActionID %s: %+v", field, res)
		}
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("files in Dir: %v", got)
	}
	mustPut(t, cl, actionID("a"), body)
}

func TestValidID(t *testing.T) {
	good := strings.Repeat("0123456789abcdef", 4)
	if !validID(good) {
		t.Errorf("validID(%q) = false", good)
	}
	for _, bad := range []string{
		strings.ToUpper(good),
		good[:63] + "A",
		good[:63],
		good + "0",
		"../" + good[3:],
		good[:62] + "/x",
		good[:63] + "g",
		"",
	} {
		if validID(bad) {
			t.Errorf("validID(%q) = true", bad)
		}
	}
}

// TestDamagedEntries: a damaged entry in Dir is a miss, or Base's entry
// when Base has one; never an error, never a wrong DiskPath.
func TestDamagedEntries(t *testing.T) {
	base := t.TempDir()
	baseBody := []byte("from base")
	seed := start(t, &Cache{Dir: base})
	body := []byte("from dir")
	sum := sha256.Sum256(body)
	out := hexOf(sum[:])
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "x"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	entryJSON := func(output string, size int64) string {
		return fmt.Sprintf(`{"output":%q,"size":%d,"time":"2025-01-02T03:04:05Z"}`, output, size)
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, entryPath, outputPath string)
		inBase bool
		noMend bool // a put cannot write through the damage
	}{
		{"not JSON", write("{\"output\":"), false, false},
		{"empty", write(""), false, false},
		{"too long", write(entryJSON(out, 8) + strings.Repeat(" ", maxEntry)), false, false},
		{"wrong size", write(entryJSON(out, 9)), false, false},
		{"negative size", write(entryJSON(out, -1)), false, false},
		{"uppercase output ID", write(entryJSON(strings.ToUpper(out), 8)), false, false},
		{"output ID a path", write(entryJSON("../../../../../../"+out[18:], 8)), false, false},
		{"output ID too short", write(entryJSON(out[:62], 8)), false, false},
		{"missing output", func(t *testing.T, _, o string) { remove(t, o) }, false, false},
		{"output a directory", func(t *testing.T, _, o string) { remove(t, o); mkdir(t, o) }, false, false},
		{"output a symlink", func(t *testing.T, _, o string) { remove(t, o); symlink(t, filepath.Join(outside, "x"), o) }, false, false},
		{"entry a directory", func(t *testing.T, e, _ string) { remove(t, e); mkdir(t, e) }, false, false},
		{"entry a symlink out", func(t *testing.T, e, _ string) {
			remove(t, e)
			p := filepath.Join(outside, "entry")
			os.WriteFile(p, []byte(entryJSON(out, 8)), 0o644)
			symlink(t, p, e)
		}, false, false},
		{"entry dir a symlink out", func(t *testing.T, e, _ string) {
			d := filepath.Dir(e)
			moved := filepath.Join(outside, "moved")
			if err := os.Rename(d, moved); err != nil {
				t.Fatal(err)
			}
			symlink(t, moved, d)
		}, false, true}, // the entry's directory leads out of Dir
		{"not JSON, Base has it", write("garbage"), true, false},
		{"wrong size, Base has it", write(entryJSON(out, 7)), true, false},
		{"missing output, Base has it", func(t *testing.T, _, o string) { remove(t, o) }, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aid := actionID(tc.name)
			c := &Cache{Dir: t.TempDir()}
			if tc.inBase {
				mustPut(t, seed, aid, baseBody)
				c.Base = base
			}
			cl := start(t, c)
			mustPut(t, cl, aid, body)
			a := hexOf(aid)
			tc.damage(t, filepath.Join(c.Dir, "a", a[:2], a), filepath.Join(c.Dir, "o", out[:2], out))
			if tc.inBase {
				mustHit(t, cl, aid, baseBody, base)
			} else {
				mustMiss(t, cl, aid)
			}
			if tc.noMend {
				// A put cannot write through a link out of Dir.
				if res := cl.put(aid, body); res.Err == "" {
					t.Errorf("put through a link out of Dir: %+v", res)
				}
				mustMiss(t, cl, aid)
				return
			}
			// A put mends it.
			mustPut(t, cl, aid, body)
			mustHit(t, cl, aid, body, c.Dir)
		})
	}
}

func write(content string) func(t *testing.T, entryPath, outputPath string) {
	return func(t *testing.T, entryPath, _ string) {
		if err := os.WriteFile(entryPath, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func remove(t *testing.T, p string) {
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, p string) {
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	if err := os.Symlink(target, p); err != nil {
		t.Skipf("no symlinks: %v", err)
	}
}

// snapshot is the files of dir and their contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range files(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		m[f] = string(data)
	}
	return m
}

// readOnly makes dir and what is under it read-only for the test.
func readOnly(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			os.Chmod(p, 0o555)
		}
		return nil
	})
	t.Cleanup(func() {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}

func TestBase(t *testing.T) {
	base := t.TempDir()
	seed := start(t, &Cache{Dir: base})
	inBase := []byte("std package")
	shadowed := []byte("old")
	mustPut(t, seed, actionID("base"), inBase)
	mustPut(t, seed, actionID("shadowed"), shadowed)
	if err := seed.close(); err != nil {
		t.Fatal(err)
	}
	readOnly(t, base)
	before := snapshot(t, base)

	dir := filepath.Join(t.TempDir(), "not yet made")
	cl := start(t, &Cache{Base: base, Dir: dir})
	// A hit in Base, served from Base, nothing written to Dir.
	mustHit(t, cl, actionID("base"), inBase, base)
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("a hit in Base wrote Dir: %v", got)
	}
	// An entry in Dir shadows Base's.
	newer := []byte("new")
	mustPut(t, cl, actionID("shadowed"), newer)
	mustHit(t, cl, actionID("shadowed"), newer, dir)
	// A put whose output Base holds writes only the entry, and points at
	// Base's output.
	res := cl.put(actionID("same output"), inBase)
	if res.Err != "" || !strings.HasPrefix(res.DiskPath, base+string(filepath.Separator)) {
		t.Errorf("put of an output Base holds: %+v", res)
	}
	mustHit(t, cl, actionID("same output"), inBase, base)
	// ... and its body is still checked.
	sum := sha256.Sum256(inBase)
	if res := cl.request("put", actionID("lie"), sum[:], []byte("std packagf"), int64(len(inBase))); res.Err == "" {
		t.Errorf("put of a body that is not the output Base holds: %+v", res)
	}
	mustMiss(t, cl, actionID("lie"))
	mustMiss(t, cl, actionID("nowhere"))
	if err := cl.close(); err != nil {
		t.Fatal(err)
	}

	want := []string{}
	for _, a := range []string{"shadowed", "same output"} {
		h := hexOf(actionID(a))
		want = append(want, "a/"+h[:2]+"/"+h)
	}
	s := sha256.Sum256(newer)
	h := hexOf(s[:])
	want = append(want, "o/"+h[:2]+"/"+h)
	if got := files(t, dir); !sameSet(got, want) {
		t.Errorf("Dir holds %v, want %v", got, want)
	}
	after := snapshot(t, base)
	if !maps.Equal(before, after) {
		t.Errorf("Base changed: %v, then %v", before, after)
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestMissingBaseIsNone(t *testing.T) {
	cl := start(t, &Cache{Base: filepath.Join(t.TempDir(), "none"), Dir: t.TempDir()})
	mustMiss(t, cl, actionID("a"))
	if err := cl.close(); err != nil {
		t.Fatal(err)
	}
	if err := (&Cache{}).Serve(strings.NewReader(""), io.Discard); err == nil {
		t.Error("Serve without a Dir succeeded")
	}
}

// TestConcurrentPuts: several go commands put the same entries and
// others at once, each through its own Serve on the same Dir.
func TestConcurrentPuts(t *testing.T) {
	dir := t.TempDir()
	const writers, rounds = 8, 20
	same := bytes.Repeat([]byte("same content "), 10000)
	var wg sync.WaitGroup
	clients := make([]*client, writers)
	for i := range clients {
		clients[i] = start(t, &Cache{Dir: dir})
	}
	errs := make(chan error, writers*rounds*3)
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				// No Fatal here, off the test's goroutine: errors are sent.
				res, err := cl.tryPut(actionID("same"), same)
				if err != nil || res.Err != "" || res.DiskPath == "" {
					errs <- fmt.Errorf("writer %d: put: %+v, %v", i, res, err)
					return
				}
				own := []byte(fmt.Sprintf("writer %d round %d", i, r))
				if res, err := cl.tryPut(actionID(string(own)), own); err != nil || res.Err != "" {
					errs <- fmt.Errorf("writer %d: put: %+v, %v", i, res, err)
					return
				}
				res, err = cl.tryGet(actionID("same"))
				if err != nil || res.Miss || res.Err != "" || res.Size != int64(len(same)) {
					errs <- fmt.Errorf("writer %d: get: %+v, %v", i, res, err)
					return
				}
				if got, err := os.ReadFile(res.DiskPath); err != nil || !bytes.Equal(got, same) {
					errs <- fmt.Errorf("writer %d: DiskPath %s: %d bytes, %v", i, res.DiskPath, len(got), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	cl := clients[0]
	mustHit(t, cl, actionID("same"), same, dir)
	for i := range writers {
		for r := range rounds {
			own := []byte(fmt.Sprintf("writer %d round %d", i, r))
			mustHit(t, cl, actionID(string(own)), own, dir)
		}
	}
	for _, cl := range clients {
		if err := cl.close(); err != nil {
			t.Fatal(err)
		}
	}
	noTemporaries(t, dir)
}
