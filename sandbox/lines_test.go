package sandbox_test

import (
	"testing"

	"github.com/llm-runtime/llm-runtime/sandbox"
)

func TestParseRangeSplitsTheSuffixOffThePath(t *testing.T) {
	for _, c := range []struct {
		arg, path string
		lines     *sandbox.Lines
		code      string
	}{
		{"flag.go", "flag.go", nil, ""},
		{"flag.go:120-180", "flag.go", &sandbox.Lines{Start: 120, End: 180}, ""},
		{"flag.go:120-", "flag.go", &sandbox.Lines{Start: 120}, ""},
		{"flag.go:7", "flag.go", &sandbox.Lines{Start: 7, End: 7}, ""},
		{"notes:1-2:1-", "notes:1-2", &sandbox.Lines{Start: 1}, ""},
		{"a:b", "a:b", nil, ""},
		{"c:/x", "c:/x", nil, ""},
		{"weird:", "weird:", nil, ""},
		{"x:-5", "x:-5", nil, ""},
		{":3", ":3", nil, ""},
		{"f.go:0-3", "", nil, sandbox.CodeInvalidRange},
		{"f.go:9-3", "", nil, sandbox.CodeInvalidRange},
		{"f.go:1-2-3", "", nil, sandbox.CodeInvalidRange},
	} {
		path, lines, err := sandbox.ParseRange(c.arg)
		if c.code != "" {
			if e := sandbox.AsError(err); e == nil || e.Code != c.code {
				t.Errorf("%q: %v, want %s", c.arg, err, c.code)
			}
			continue
		}
		if err != nil || path != c.path || (lines == nil) != (c.lines == nil) || lines != nil && *lines != *c.lines {
			t.Errorf("%q: %q %+v %v, want %q %+v", c.arg, path, lines, err, c.path, c.lines)
		}
	}
}
