//go:build wasip1

// Command redact is a transform guest that masks secrets in what the model
// is shown: AWS access keys, GitHub tokens, private-key blocks, and the
// values of password=, secret:, token= and similar assignments.
package main

import (
	"regexp"
	"strings"

	"github.com/llm-runtime/llm-runtime/guests/guest"
	"github.com/llm-runtime/llm-runtime/guests/transform"
)

func main() {}

type rule struct {
	re   *regexp.Regexp
	repl string
	// keep, if set, leaves a match as it is: one an earlier rule already
	// redacted, such as the value of api_key=AKIA..., so that its marker
	// stays whole ([REDACTED aws-access-key], not [REDACTED] aws-access-key]).
	keep func(groups []string) bool
}

// marker starts every redaction's text.
const marker = "[REDACTED"

var rules = []rule{
	{regexp.MustCompile(`-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?-----END ([A-Z0-9 ]*)PRIVATE KEY-----`), "-----BEGIN ${1}PRIVATE KEY-----\n[REDACTED private key]\n-----END ${2}PRIVATE KEY-----", nil},
	{regexp.MustCompile(`\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b`), "[REDACTED aws-access-key]", nil},
	{regexp.MustCompile(`\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b`), "[REDACTED github-token]", nil},
	{regexp.MustCompile(`\bgithub_pat_[A-Za-z0-9_]{22,255}\b`), "[REDACTED github-token]", nil},
	{regexp.MustCompile(`(?i)\b((?:[a-z0-9_]*_)?(?:password|passwd|pwd|secret|token|api_?key|access_?key))(\s*[:=]\s*)(["']?)([^\s"'#]{3,})(["']?)`), "${1}${2}${3}[REDACTED]${5}",
		func(g []string) bool { return strings.HasPrefix(g[4], marker) }},
}

func init() {
	transform.Handle(func(r guest.TransformRequest) guest.TransformResult {
		out, changes := r.Output, 0
		for _, ru := range rules {
			out = ru.re.ReplaceAllStringFunc(out, func(m string) string {
				groups := ru.re.FindStringSubmatch(m)
				if ru.keep != nil && ru.keep(groups) {
					return m
				}
				changes++
				return ru.re.ReplaceAllString(m, ru.repl)
			})
		}
		return guest.TransformResult{Output: out, Changes: changes}
	})
}
