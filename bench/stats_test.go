package bench

import (
	"math"
	"testing"
)

func TestBenchMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{0.5, 17.8, 0.4}, 0.5},
	} {
		if got := Median(c.xs); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
	xs := []float64{3, 1, 2}
	Median(xs)
	if xs[0] != 3 || xs[1] != 1 || xs[2] != 2 {
		t.Errorf("Median sorted its argument: %v", xs)
	}
}

func TestBenchPercentile(t *testing.T) {
	// 1..100: type 7 puts p95 at rank 0.95*99 = 94.05, between 95 and 96.
	var xs []float64
	for i := 100; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	for _, c := range []struct{ p, want float64 }{
		{0, 1}, {50, 50.5}, {95, 95.05}, {100, 100}, {-5, 1}, {150, 100},
	} {
		if got := Percentile(xs, c.p); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Percentile(1..100, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile([]float64{0.4, 0.5, 350}, 95); math.Abs(got-315.05) > 1e-9 {
		t.Errorf("p95 of three = %v", got)
	}
	if got := Percentile([]float64{2}, 95); got != 2 {
		t.Errorf("p95 of one = %v", got)
	}
	if got := Percentile(nil, 95); got != 0 {
		t.Errorf("p95 of none = %v", got)
	}
}

func TestBenchSpeedup(t *testing.T) {
	for _, c := range []struct{ u, p, want float64 }{
		{75, 7, 75.0 / 7},
		{1.5, 1.6, 0.9375},
		{1, 1, 1},
		{0, 1, 0},
		{1, 0, 0},
		{-1, 1, 0},
	} {
		if got := Speedup(c.u, c.p); got != c.want {
			t.Errorf("Speedup(%v, %v) = %v, want %v", c.u, c.p, got, c.want)
		}
	}
}

func TestBenchFormats(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{FormatSeconds(0.4463), "0.446s"},
		{FormatSeconds(1.124), "1.12s"},
		{FormatSeconds(17.83), "17.8s"},
		{FormatMS(0.432), "0.432 ms"},
		{FormatMS(1.7), "1.70 ms"},
		{FormatMS(13.64), "13.6 ms"},
		{FormatMS(355.4), "355 ms"},
		{FormatSpeedup(ptr(10.714)), "10.71x faster"},
		{FormatSpeedup(ptr(1)), "1.00x faster"},
		{FormatSpeedup(ptr(0.9375)), "-6% (overhead)"},
		{FormatSpeedup(nil), "-"},
		{formatLatency(&Latency{P50MS: 0.43, P95MS: 0.71, Samples: 3}), "0.430 / 0.710 ms"},
		{formatLatency(&Latency{P50MS: 350, P95MS: 412.6, Samples: 3}), "350 / 413 ms"},
		{formatLatency(&Latency{}), "-"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func ptr(x float64) *float64 { return &x }
