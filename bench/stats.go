package bench

import (
	"math"
	"slices"
)

// Median returns the median of xs (the mean of the two middle values when
// there is an even number of them), or 0 for none. xs is not modified.
func Median(xs []float64) float64 { return Percentile(xs, 50) }

// Percentile returns the p-th percentile (0 <= p <= 100) of xs, linearly
// interpolated between the two nearest ranks (the "type 7" definition of
// R and NumPy's default), or 0 for none. Percentile(xs, 50) is the median.
// xs is not modified.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	p = math.Max(0, math.Min(100, p))
	h := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

// Speedup is how many times faster pooled is than unpooled: unpooled /
// pooled; above 1 the pool wins, below 1 it costs. It is 0 when either
// time is not positive.
func Speedup(unpooled, pooled float64) float64 {
	if unpooled <= 0 || pooled <= 0 {
		return 0
	}
	return unpooled / pooled
}

// round rounds x to the given number of decimals.
func round(x float64, decimals int) float64 {
	f := math.Pow(10, float64(decimals))
	return math.Round(x*f) / f
}
