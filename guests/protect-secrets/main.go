//go:build wasip1

// Command protect-secrets is a policy guest that denies open, write,
// delete and move of credential files (.env*, *.pem, *.key, id_rsa* and
// the like) and exec of
// network tools (curl, wget, ssh, nc...). Both lists are configurable:
//
//	policies:
//	  - module: guests/protect-secrets/protect-secrets.wasm
//	    config: {paths: [".env*", "*.pem"], commands: [curl, wget]}
//
// A list given in the configuration replaces the default one.
package main

import (
	"path"
	"strings"

	"github.com/llm-runtime/llm-runtime/guests/guest"
	"github.com/llm-runtime/llm-runtime/guests/policy"
)

func main() {}

type config struct {
	Paths    []string
	Commands []string
}

var (
	defaultPaths = []string{".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
		"id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".npmrc", ".pypirc", ".htpasswd",
		"credentials", "credentials.json", "*.tfstate", "secrets.yaml", "secrets.yml"}
	defaultCommands = []string{"curl", "wget", "ssh", "scp", "sftp", "nc", "ncat", "netcat", "telnet", "ftp", "rsync", "socat"}
)

// rules are the compiled lists; compiled once per configuration, since
// a guest lives for many calls.
type rules struct {
	key      string
	paths    []glob
	commands map[string]bool
	err      error
}

var cached *rules

func load(raw []byte) *rules {
	if cached != nil && cached.key == string(raw) {
		return cached
	}
	cfg := config{Paths: defaultPaths, Commands: defaultCommands}
	r := &rules{key: string(raw), commands: map[string]bool{}}
	if paths, ok, err := guest.StringList(raw, "paths"); err != nil {
		r.err = err
	} else if ok {
		cfg.Paths = paths
	}
	if cmds, ok, err := guest.StringList(raw, "commands"); err != nil {
		r.err = err
	} else if ok {
		cfg.Commands = cmds
	}
	for _, p := range cfg.Paths {
		r.paths = append(r.paths, compileGlob(strings.ToLower(p)))
	}
	for _, c := range cfg.Commands {
		r.commands[c] = true
	}
	cached = r
	return r
}

func init() {
	policy.Handle(func(r guest.Request) guest.Decision {
		rules := load(r.Config)
		if rules.err != nil {
			return guest.Deny("protect-secrets: bad configuration: " + rules.err.Error())
		}
		switch r.Op {
		case "open", "write", "delete", "move":
			// The path as written, and the file it names once links are
			// resolved: a link to .env is .env; a move's both ends.
			for _, name := range []string{r.Path, r.Resolved, r.To, r.ToResolved} {
				if name == "" {
					continue
				}
				if p, ok := secretPath(name, rules.paths); ok {
					what := r.Path
					if name != r.Path {
						what += " (" + name + ")"
					}
					return guest.Deny(what + " looks like a credential file (" + p + ")")
				}
			}
		case "exec":
			if c, ok := networkTool(r.Command, rules.commands); ok {
				return guest.Deny(c + " reaches the network; it is not allowed")
			}
		}
		return guest.Allow()
	})
}

// glob is a pattern; the common shapes (exact, a*, *b, a*b) are matched
// without path.Match, which is slow in a guest.
type glob struct {
	pat      string
	pre, suf string
	simple   bool
	star     bool
}

func compileGlob(p string) glob {
	g := glob{pat: p}
	if strings.ContainsAny(p, "?[\\") || strings.Count(p, "*") > 1 {
		return g
	}
	g.simple = true
	if i := strings.IndexByte(p, '*'); i >= 0 {
		g.star, g.pre, g.suf = true, p[:i], p[i+1:]
	}
	return g
}

func (g *glob) match(s string) bool {
	switch {
	case !g.simple:
		ok, _ := path.Match(g.pat, s)
		return ok
	case !g.star:
		return s == g.pat
	}
	return len(s) >= len(g.pre)+len(g.suf) && strings.HasPrefix(s, g.pre) && strings.HasSuffix(s, g.suf)
}

// secretPath matches every component of p against the patterns, ignoring
// case, so a secret inside a directory is caught too. It allocates nothing
// for a lower-case path: an allocation costs ~1.6 µs in a guest.
func secretPath(p string, patterns []glob) (string, bool) {
	rest := strings.ToLower(p)
	for rest != "" {
		comp, after, _ := strings.Cut(rest, "/")
		rest = after
		for i := range patterns {
			if patterns[i].match(comp) {
				return patterns[i].pat, true
			}
		}
	}
	return "", false
}

// networkTool looks at the first word of every command in a line (after
// |, &&, ||, ; and a leading path) for a denied tool.
func networkTool(line string, tools map[string]bool) (string, bool) {
	for _, sep := range []string{"&&", "||", "|", ";", "$(", "`", "(", ")"} {
		line = strings.ReplaceAll(line, sep, "\n")
	}
	for _, cmd := range strings.Split(line, "\n") {
		words := strings.Fields(cmd)
		for len(words) > 0 && (strings.Contains(words[0], "=") || words[0] == "sudo" || words[0] == "env" || words[0] == "exec") {
			words = words[1:]
		}
		if len(words) == 0 {
			continue
		}
		if name := strings.Trim(path.Base(words[0]), `"'`); tools[name] {
			return name, true
		}
	}
	return "", false
}
