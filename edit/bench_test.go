package edit

import (
	"fmt"
	"strings"
	"testing"
)

// goLike returns about size bytes of Go-like source: small functions, each
// with a unique name, their bodies alike.
func goLike(size int) string {
	var b strings.Builder
	b.WriteString("package bench\n\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "// f%d adds to x.\nfunc f%d(x int) (int, error) {\n\tif x < 0 {\n\t\treturn 0, errNegative\n\t}\n\treturn x + %d, nil\n}\n\n", i, i, i)
	}
	return b.String()
}

// BenchmarkApply3Blocks100KiB applies three blocks, near the start, the
// middle and the end of a 100 KiB file, diff included.
func BenchmarkApply3Blocks100KiB(b *testing.B) {
	content := []byte(goLike(100 << 10))
	funcs := strings.Count(string(content), "\nfunc ")
	var blocks []Block
	for _, i := range []int{3, funcs / 2, funcs - 3} {
		blocks = append(blocks, Block{
			Search:  []string{fmt.Sprintf("func f%d(x int) (int, error) {", i), "\tif x < 0 {"},
			Replace: []string{fmt.Sprintf("func f%d(x int) (int, error) {", i), "\tif x <= 0 {", "\t\tlog.Print(x)"},
		})
	}
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		res, err := Apply("bench.go", content, blocks)
		if err != nil || res.Diff == "" {
			b.Fatal(err)
		}
	}
}

// BenchmarkNoMatch1MiB measures the search for the closest lines when a
// five-line SEARCH misses in a 1 MiB file.
func BenchmarkNoMatch1MiB(b *testing.B) {
	content := []byte(goLike(1 << 20))
	search := []string{"func f5000(x int) (int, error) {", "\tif x < 0 {", "\t\treturn 0, errNegativ", "\t}", "\treturn x + 5000, nil"}
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		_, err := Apply("bench.go", content, []Block{{Search: search}})
		if ne, ok := err.(*NoMatchError); !ok || ne.Closest[1].Text != search[0] {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiff400KiB diffs a 400 KiB file against itself with three lines
// changed far apart.
func BenchmarkDiff400KiB(b *testing.B) {
	old := goLike(400 << 10)
	new := strings.Replace(old, "return x + 10, nil", "return x + 11, nil", 1)
	new = strings.Replace(new, "func f5000(", "func g5000(", 1)
	new = strings.Replace(new, "// f9000 adds to x.\n", "", 1)
	b.SetBytes(int64(len(old)))
	for b.Loop() {
		if d, _ := Diff("bench.go", []byte(old), []byte(new), 0); d == "" {
			b.Fatal("no diff")
		}
	}
}
