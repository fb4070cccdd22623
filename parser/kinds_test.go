package parser

import (
	"slices"
	"strings"
	"testing"
)

func TestKindsAreEveryCommandTheParserFinds(t *testing.T) {
	got := Kinds()
	if len(got) != len(kinds) {
		t.Fatalf("Kinds() = %v, the parser knows %v", got, kinds)
	}
	for _, k := range kinds {
		if !slices.Contains(got, k) {
			t.Errorf("Kinds() lacks %q", k)
		}
		in := "<" + string(k) + " x>"
		if hasBody(k) {
			in += "y</" + string(k) + ">"
		}
		cmd, err := New(strings.NewReader(in), Options{}).Next()
		if err != nil || cmd.Kind != k {
			t.Errorf("%s parsed as %+v, %v", in, cmd, err)
		}
	}
}
