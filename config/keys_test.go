package config

import (
	"slices"
	"strings"
	"testing"
)

// Keys is what the loader accepts: each guest list is read from a file,
// and the keys the loader suggests at the top of a file are exactly the
// first components of Keys, no more and no fewer.
func TestKeysAreTheKeysAFileMayHold(t *testing.T) {
	for _, k := range guestLists {
		if !slices.Contains(Keys(), k) {
			t.Errorf("Keys() lacks the guest list %q", k)
		}
		if _, err := Parse("f.yaml", []byte(k+": []\n")); err != nil {
			t.Errorf("%s: []: %v", k, err)
		}
	}
	var want []string
	for _, k := range Keys() {
		first, _, _ := strings.Cut(k, ".")
		if !slices.Contains(want, first) {
			want = append(want, first)
		}
	}
	_, err := Parse("f.yaml", []byte("no_such_key: 1\n"))
	if err == nil {
		t.Fatal("an unknown key was accepted")
	}
	_, list, ok := strings.Cut(err.Error(), "known keys here: ")
	if !ok {
		t.Fatalf("the error names no known keys: %v", err)
	}
	if got := strings.Split(list, ", "); !slices.Equal(got, want) {
		t.Errorf("the loader knows %q at the top of a file, Keys() gives %q", got, want)
	}
}
