package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FormatVersion is the "format" field of the JSON report. It changes only
// when a field is removed or changes meaning; fields may be added.
const FormatVersion = 1

// Report is the result of a bench, as --json prints it.
type Report struct {
	Format  int     `json:"format"`
	Machine Machine `json:"machine"`
	Op      Op      `json:"op"`
	Modes   []Mode  `json:"modes"`
	Repeat  int     `json:"repeat"`
	// Journal says the invocations ran with journal.enabled.
	Journal bool `json:"journal,omitempty"`
	// Rows are the rows of the table, in the order of --ops.
	Rows []Row `json:"rows"`
	// PerOp is each mode's per-operation latency over every timed run of
	// every row.
	PerOp ByMode[Latency] `json:"per_op"`
}

// Machine holds the facts of the machine the bench ran on.
type Machine struct {
	Date     string  `json:"date"` // RFC 3339, when the bench started
	CPUs     int     `json:"cpus"`
	CPUModel string  `json:"cpu_model,omitempty"`
	Platform string  `json:"platform"` // GOOS/GOARCH
	Load     float64 `json:"load_avg"` // the 1-minute load average at the start; -1 if unknown
	Docker   string  `json:"docker,omitempty"`
	Image    string  `json:"image,omitempty"`
	ImageID  string  `json:"image_id,omitempty"`
	Version  string  `json:"llm_runtime"`
}

// Row is one row of the table: invocations of Ops operations.
type Row struct {
	Ops int `json:"ops"`
	// The median time, in seconds, of a whole invocation in each mode;
	// absent for a mode not measured.
	UnpooledS *float64 `json:"unpooled_s,omitempty"`
	PooledS   *float64 `json:"pooled_s,omitempty"`
	AttachS   *float64 `json:"attach_s,omitempty"`
	ServedS   *float64 `json:"served_s,omitempty"`
	LocalS    *float64 `json:"local_s,omitempty"`
	// Speedup is unpooled_s / pooled_s; absent unless both were measured.
	Speedup *float64 `json:"speedup,omitempty"`
	// ServedSpeedup is unpooled_s / served_s; absent unless both were
	// measured.
	ServedSpeedup *float64       `json:"served_speedup,omitempty"`
	Modes         ByMode[Timing] `json:"modes"`
}

// ByMode holds one value per mode; a mode not measured is nil.
type ByMode[T any] struct {
	Unpooled *T `json:"unpooled,omitempty"`
	Pooled   *T `json:"pooled,omitempty"`
	Attach   *T `json:"attach,omitempty"`
	Served   *T `json:"served,omitempty"`
	Local    *T `json:"local,omitempty"`
}

// Get returns the value of mode m.
func (b *ByMode[T]) Get(m Mode) *T {
	switch m {
	case Unpooled:
		return b.Unpooled
	case Pooled:
		return b.Pooled
	case Attach:
		return b.Attach
	case Served:
		return b.Served
	default:
		return b.Local
	}
}

// Set sets the value of mode m.
func (b *ByMode[T]) Set(m Mode, v *T) {
	switch m {
	case Unpooled:
		b.Unpooled = v
	case Pooled:
		b.Pooled = v
	case Attach:
		b.Attach = v
	case Served:
		b.Served = v
	default:
		b.Local = v
	}
}

// Timing is one mode's measurements in one row.
type Timing struct {
	MedianS float64   `json:"median_s"` // the cell: the median of RunsS
	RunsS   []float64 `json:"runs_s"`   // each timed invocation, start to exit, in seconds
	Latency
}

// Latency is the distribution of the per-operation duration_ms that the
// invocations reported.
type Latency struct {
	P50MS   float64 `json:"p50_ms"`
	P95MS   float64 `json:"p95_ms"`
	MaxMS   float64 `json:"max_ms"`
	Samples int     `json:"samples"` // operations measured
}

func latency(ms []float64) *Latency {
	l := &Latency{Samples: len(ms)}
	if len(ms) > 0 {
		l.P50MS = round(Percentile(ms, 50), 3)
		l.P95MS = round(Percentile(ms, 95), 3)
		l.MaxMS = round(Percentile(ms, 100), 3)
	}
	return l
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// columns are the timing columns of the tables: one per mode measured,
// with Improvement after With pool when both docker modes were measured.
func (r *Report) hasSpeedup() bool { return r.has(Unpooled) && r.has(Pooled) }

// hasServedSpeedup: Improvement after Served too.
func (r *Report) hasServedSpeedup() bool { return r.has(Unpooled) && r.has(Served) }

func (r *Report) has(mode Mode) bool {
	for _, m := range r.Modes {
		if m == mode {
			return true
		}
	}
	return false
}

func (r *Report) summary() string {
	runs := "runs"
	if r.Repeat == 1 {
		runs = "run"
	}
	journal := "" // every change journaled, as by default
	if !r.Journal {
		journal = ", nothing journaled (--no-journal)"
	}
	return fmt.Sprintf("workload %s, %d %s per cell%s", r.Op, r.Repeat, runs, journal)
}

const cellMeaning = "Each cell is the median time of a whole invocation, start to exit, pool start-up and teardown included"

func (r *Report) machineFacts() [][2]string {
	m := r.Machine
	cpu := strconv.Itoa(m.CPUs)
	if m.CPUModel != "" {
		cpu += " × " + m.CPUModel
	}
	load := "unknown"
	if m.Load >= 0 {
		load = strconv.FormatFloat(m.Load, 'f', 2, 64)
	}
	facts := [][2]string{
		{"Date", m.Date},
		{"CPUs", cpu},
		{"Platform", m.Platform},
		{"Load", load + " (1-minute average at the start)"},
	}
	if m.Docker != "" {
		facts = append(facts, [2]string{"Docker", m.Docker})
	}
	if m.Image != "" {
		img := m.Image
		if m.ImageID != "" {
			img += " (" + shortID(m.ImageID) + ")"
		}
		facts = append(facts, [2]string{"Image", img})
	}
	return append(facts, [2]string{"llm-runtime", m.Version})
}

// busy returns a warning when the machine was already busy as the bench
// started (a load average of half its CPUs or more), or "".
func (r *Report) busy() string {
	m := r.Machine
	if m.CPUs <= 0 || m.Load < float64(m.CPUs)/2 {
		return ""
	}
	return fmt.Sprintf("Note: the machine was busy when the bench started (load %.2f on %d CPUs); other work competes with the runs, so expect noise. Run it again on a quiet machine for figures to publish.", m.Load, m.CPUs)
}

// tables returns the two tables: whole invocations, and per operation.
func (r *Report) tables() (inv, perOp [][]string) {
	head := []string{"Operations"}
	for _, m := range r.Modes {
		head = append(head, m.Title())
		if m == Pooled && r.hasSpeedup() || m == Served && r.hasServedSpeedup() {
			head = append(head, "Improvement")
		}
	}
	inv = [][]string{head}
	perOp = [][]string{{"Operations"}}
	for _, m := range r.Modes {
		perOp[0] = append(perOp[0], m.Title())
	}
	for _, row := range r.Rows {
		line := []string{strconv.Itoa(row.Ops)}
		lat := []string{strconv.Itoa(row.Ops)}
		for _, m := range r.Modes {
			t := row.Modes.Get(m)
			if t == nil {
				line = append(line, "-")
				lat = append(lat, "-")
				continue
			}
			line = append(line, FormatSeconds(t.MedianS))
			if m == Pooled && r.hasSpeedup() {
				line = append(line, FormatSpeedup(row.Speedup))
			}
			if m == Served && r.hasServedSpeedup() {
				line = append(line, FormatSpeedup(row.ServedSpeedup))
			}
			lat = append(lat, formatLatency(&t.Latency))
		}
		inv = append(inv, line)
		perOp = append(perOp, lat)
	}
	all := []string{"all"}
	for _, m := range r.Modes {
		if l := r.PerOp.Get(m); l != nil {
			all = append(all, formatLatency(l))
		} else {
			all = append(all, "-")
		}
	}
	if len(r.Rows) > 1 {
		perOp = append(perOp, all)
	}
	return inv, perOp
}

// WriteTable writes r as aligned text tables: the pooling guide's
// "Performance Data" table, then the per-operation latencies.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	b.WriteString("llm-runtime bench: " + r.summary() + ".\n" + cellMeaning + ".\n\n")
	facts := r.machineFacts()
	width := 0
	for _, f := range facts {
		width = max(width, len(f[0]))
	}
	for _, f := range facts {
		fmt.Fprintf(&b, "  %-*s  %s\n", width+1, f[0]+":", f[1])
	}
	if w := r.busy(); w != "" {
		b.WriteString("\n" + w + "\n")
	}
	inv, perOp := r.tables()
	b.WriteString("\n")
	writeAligned(&b, inv)
	b.WriteString("\nPer operation, p50 / p95 of the duration_ms of every command of the timed runs:\n\n")
	writeAligned(&b, perOp)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown writes r as Markdown: the machine facts as a list, then
// the two tables.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("Measured by `llm-runtime bench`: " + r.summary() + ". " + cellMeaning + ".\n\n")
	for _, f := range r.machineFacts() {
		fmt.Fprintf(&b, "- %s: %s\n", f[0], mdEscape(f[1]))
	}
	if w := r.busy(); w != "" {
		b.WriteString("\n> " + w + "\n")
	}
	inv, perOp := r.tables()
	b.WriteString("\n")
	writeMarkdownTable(&b, inv)
	b.WriteString("\nPer operation, p50 / p95 of the `duration_ms` of every command of the timed runs:\n\n")
	writeMarkdownTable(&b, perOp)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeAligned writes rows as columns two spaces apart: the first column
// aligned left, the others right.
func writeAligned(b *strings.Builder, rows [][]string) {
	widths := colWidths(rows)
	for _, row := range rows {
		var line strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i == 0 {
				line.WriteString(cell + pad)
			} else {
				line.WriteString("  " + pad + cell)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

func writeMarkdownTable(b *strings.Builder, rows [][]string) {
	widths := colWidths(rows)
	for i, row := range rows {
		b.WriteString("|")
		for j, cell := range row {
			pad := strings.Repeat(" ", widths[j]-utf8.RuneCountInString(cell))
			if j == 0 {
				b.WriteString(" " + cell + pad + " |")
			} else {
				b.WriteString(" " + pad + cell + " |")
			}
		}
		b.WriteString("\n")
		if i == 0 {
			b.WriteString("|")
			for j := range row {
				if j == 0 {
					b.WriteString(" " + strings.Repeat("-", widths[j]) + " |")
				} else {
					b.WriteString(" " + strings.Repeat("-", widths[j]-1) + ": |")
				}
			}
			b.WriteString("\n")
		}
	}
}

func colWidths(rows [][]string) []int {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell), 2)
		}
	}
	return widths
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`").Replace(s)
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}

// FormatSeconds formats a duration in seconds for a table: 0.446s, 1.12s,
// 17.8s.
func FormatSeconds(s float64) string {
	switch {
	case s < 1:
		return strconv.FormatFloat(s, 'f', 3, 64) + "s"
	case s < 10:
		return strconv.FormatFloat(s, 'f', 2, 64) + "s"
	default:
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	}
}

// FormatMS formats milliseconds for a table with three significant
// digits or more: 0.432 ms, 13.6 ms, 355 ms.
func FormatMS(ms float64) string {
	switch {
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 3-min(2, digitsBefore(ms)), 64) + " ms"
	case ms < 100:
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	default:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	}
}

func digitsBefore(x float64) int {
	if x < 1 {
		return 0
	}
	return len(strconv.Itoa(int(x)))
}

// formatLatency formats a latency cell: "0.43 / 0.71 ms".
func formatLatency(l *Latency) string {
	if l.Samples == 0 {
		return "-"
	}
	p50, p95 := FormatMS(l.P50MS), FormatMS(l.P95MS)
	return strings.TrimSuffix(p50, " ms") + " / " + p95
}

// FormatSpeedup formats the improvement as the pooling guide does:
// "10.7x faster", or "-6% (overhead)" when the pool costs more than it
// saves.
func FormatSpeedup(s *float64) string {
	switch {
	case s == nil || *s <= 0:
		return "-"
	case *s >= 1:
		return strconv.FormatFloat(*s, 'f', 2, 64) + "x faster"
	default:
		return fmt.Sprintf("%+.0f%% (overhead)", (*s-1)*100)
	}
}
