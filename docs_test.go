package llmruntime_test

// The documentation holds together: every relative link in README.md,
// SECURITY.md, RATIONALE.md and docs/*.md leads to a file of the
// repository, and to a heading of it when it names an anchor; and the
// configuration reference documents every setting of the config package,
// and nothing else as a setting.

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/llm-runtime/llm-runtime/config"
)

// docFiles are the Markdown files whose links are checked.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md", "SECURITY.md", "RATIONALE.md"}
	more, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(more) == 0 {
		t.Fatal("docs/ holds no .md file")
	}
	return append(files, more...)
}

// mdLine is a line of a Markdown file outside fenced code blocks, with its
// inline code spans taken out.
type mdLine struct {
	n    int // from 1
	text string
}

var fence = regexp.MustCompile("^ {0,3}(```|~~~)")

// prose returns the lines of a Markdown document that are neither in a
// fenced code block nor indented code (four spaces or a tab after a blank
// line or another indented code line), with inline code removed.
func prose(doc string) []mdLine {
	var out []mdLine
	inFence, inIndented, prevBlank := "", false, true
	for i, line := range strings.Split(doc, "\n") {
		if m := fence.FindStringSubmatch(line); m != nil {
			switch {
			case inFence == "":
				inFence = m[1]
			case inFence == m[1]:
				inFence = ""
			}
			prevBlank = false
			continue
		}
		if inFence != "" {
			continue
		}
		blank := strings.TrimSpace(line) == ""
		indented := strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t")
		switch {
		case blank:
			// a blank line neither starts nor ends indented code
		case indented && (prevBlank || inIndented):
			inIndented = true
		default:
			inIndented = false
		}
		prevBlank = blank
		if inIndented || blank {
			continue
		}
		out = append(out, mdLine{i + 1, stripCode(line)})
	}
	return out
}

// stripCode removes inline code spans (`x`, “x“) from a line.
func stripCode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '`' {
			b.WriteByte(s[i])
			i++
			continue
		}
		n := 0
		for i+n < len(s) && s[i+n] == '`' {
			n++
		}
		ticks := s[i : i+n]
		end := -1
		for j := i + n; j < len(s); {
			k := strings.Index(s[j:], ticks)
			if k < 0 {
				break
			}
			k += j
			if k+n < len(s) && s[k+n] == '`' { // a longer run: not the closer
				for k < len(s) && s[k] == '`' {
					k++
				}
				j = k
				continue
			}
			end = k
			break
		}
		if end < 0 { // no closer: the backticks are literal
			b.WriteString(ticks)
			i += n
			continue
		}
		b.WriteString("code") // keeps a heading's words apart
		i = end + n
	}
	return b.String()
}

var (
	atxHeading = regexp.MustCompile(`^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	// [text](target "title"), ![alt](target); text may hold one level of [].
	inlineLink = regexp.MustCompile(`!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]*(?:\([^()\s]*\)[^()\s<>]*)*)>?(?:\s+"[^"]*")?\s*\)`)
	refDef     = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$`)
	linkText   = regexp.MustCompile(`!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)`)
	scheme     = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// anchors returns the anchors GitHub gives the headings of a Markdown
// document: the heading's text, lowercased, with everything but letters,
// digits, spaces, '-' and '_' dropped and spaces turned to '-'; a
// repeated anchor gets -1, -2... in order.
func anchors(doc string) map[string]bool {
	// Headings are read with their inline code: `llm-runtime serve` gives
	// its words. prose() replaces code spans, so read the raw line here.
	raw := strings.Split(doc, "\n")
	seen := map[string]int{}
	out := map[string]bool{}
	for _, l := range prose(doc) {
		m := atxHeading.FindStringSubmatch(raw[l.n-1])
		if m == nil {
			continue
		}
		text := linkText.ReplaceAllString(m[1], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(text)) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			seen[a]++
			a = fmt.Sprintf("%s-%d", a, n)
		} else {
			seen[a] = 1
		}
		out[a] = true
	}
	return out
}

// link is one relative link of a document.
type link struct {
	file   string // the document, from the repository root
	line   int
	target string // as written
}

func links(file, doc string) []link {
	var out []link
	for _, l := range prose(doc) {
		for _, m := range inlineLink.FindAllStringSubmatch(l.text, -1) {
			out = append(out, link{file, l.n, m[1]})
		}
		if m := refDef.FindStringSubmatch(l.text); m != nil {
			out = append(out, link{file, l.n, m[1]})
		}
	}
	return out
}

func TestEveryRelativeLinkInTheDocsLeadsToAFileAndHeadingOfTheRepository(t *testing.T) {
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	docAnchors := map[string]map[string]bool{} // by path from the root
	anchorsOf := func(rel string) (map[string]bool, error) {
		if a, ok := docAnchors[rel]; ok {
			return a, nil
		}
		b, err := os.ReadFile(filepath.FromSlash(rel))
		if err != nil {
			return nil, err
		}
		docAnchors[rel] = anchors(string(b))
		return docAnchors[rel], nil
	}
	checked := 0
	for _, file := range docFiles(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		file = filepath.ToSlash(file)
		for _, l := range links(file, string(b)) {
			where := fmt.Sprintf("%s:%d: the link to %q", l.file, l.line, l.target)
			if l.target == "" {
				t.Errorf("%s: an empty target", where)
				continue
			}
			if scheme.MatchString(l.target) {
				continue // http(s), mailto: not checked
			}
			checked++
			pathPart, frag, _ := strings.Cut(l.target, "#")
			p, err := url.PathUnescape(pathPart)
			if err != nil {
				t.Errorf("%s: a bad escape in its path: %v", where, err)
				continue
			}
			if strings.HasPrefix(p, "/") {
				t.Errorf("%s: an absolute path; give it relative to %s", where, l.file)
				continue
			}
			target := l.file // a bare #anchor is in the same file
			if p != "" {
				target = filepath.ToSlash(filepath.Join(filepath.Dir(l.file), p))
			}
			abs := filepath.Join(root, filepath.FromSlash(target))
			if rel, err := filepath.Rel(root, abs); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				t.Errorf("%s: it leaves the repository (%s); the docs must stand alone", where, target)
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s: there is no %s", where, target)
				continue
			}
			if frag == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			a, err := anchorsOf(target)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if !a[frag] {
				t.Errorf("%s: no heading of %s gives the anchor #%s%s", where, target, frag, near(frag, a))
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found: the link finder is broken")
	}
}

// near suggests the anchors of a with a word in common with want.
func near(want string, a map[string]bool) string {
	var close []string
	for k := range a {
		for _, w := range strings.Split(want, "-") {
			if len(w) > 3 && strings.Contains(k, w) {
				close = append(close, "#"+k)
				break
			}
		}
	}
	if len(close) == 0 {
		return ""
	}
	slices.Sort(close)
	if len(close) > 5 {
		close = close[:5]
	}
	return " (did you mean " + strings.Join(close, ", ") + "?)"
}

// settingRows are the rows of the settings tables of docs/configuration.md:
// every table whose first column is headed "key". Each row's first cell is
// one setting's key in backticks.
type settingRow struct {
	line  int
	key   string
	cells []string
}

var keyCell = regexp.MustCompile("^`([a-z0-9_]+(?:\\.[a-z0-9_]+)*)`$")

func settingRows(t *testing.T, doc string) []settingRow {
	var rows []settingRow
	inTable := false
	for i, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		cells := splitRow(line)
		switch {
		case !inTable && strings.EqualFold(cells[0], "key"):
			inTable = true
		case !inTable:
			// another table
		case strings.Trim(cells[0], "-: ") == "":
			// the separator row
		default:
			m := keyCell.FindStringSubmatch(cells[0])
			if m == nil {
				t.Errorf("docs/configuration.md:%d: the first cell of a settings row must be one key in backticks, not %q", i+1, cells[0])
				continue
			}
			rows = append(rows, settingRow{i + 1, m[1], cells})
		}
	}
	return rows
}

// splitRow splits a table row at its unescaped pipes.
func splitRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteString(`\|`)
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

func TestTheConfigurationDocListsEverySettingOfConfigAndNoOther(t *testing.T) {
	const file = "docs/configuration.md"
	b, err := os.ReadFile(filepath.FromSlash(file))
	if err != nil {
		t.Fatal(err)
	}
	rows := settingRows(t, string(b))
	if len(rows) == 0 {
		t.Fatalf("%s has no settings table (a table whose first column is headed `key`)", file)
	}
	known := config.Keys()
	env := map[string]string{}
	for _, s := range config.Settings() {
		env[s.Key] = s.Env()
	}
	documented := map[string]int{}
	for _, r := range rows {
		if at, twice := documented[r.key]; twice {
			t.Errorf("%s:%d: `%s` is documented twice (first at line %d)", file, r.line, r.key, at)
			continue
		}
		documented[r.key] = r.line
		if !slices.Contains(known, r.key) {
			t.Errorf("%s:%d: `%s` is documented as a setting, but the config package knows no such key (config.Keys)", file, r.line, r.key)
			continue
		}
		if v := env[r.key]; v != "" && !strings.Contains(strings.Join(r.cells[1:], "|"), "`"+v+"`") {
			t.Errorf("%s:%d: `%s`: its row does not name its environment variable `%s`", file, r.line, r.key, v)
		}
	}
	for _, k := range known {
		if _, ok := documented[k]; !ok {
			t.Errorf("%s: the setting `%s` of the config package is not documented: add a row for it to the settings table", file, k)
		}
	}
}
