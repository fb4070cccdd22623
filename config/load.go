package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load returns the defaults overlaid with the file at path; "" means no
// file. Unknown keys, duplicate keys and bad values are errors that name
// the file, the line and the key.
func Load(path string) (*Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Source: path, Msg: "cannot read the configuration file: " + errText(err)}
	}
	if err := c.apply(path, data); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse overlays the defaults with YAML data; name is used in errors.
func Parse(name string, data []byte) (*Config, error) {
	c := Default()
	if err := c.apply(name, data); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) apply(name string, data []byte) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" { // an empty file: all defaults
			return nil
		}
		return yamlError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return &Error{Source: fmt.Sprintf("%s:%d", name, extra.Line), Msg: "a second YAML document; the file holds one"}
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	return c.mapping(name, "", root)
}

// mapping applies the keys of a YAML mapping found under prefix.
func (c *Config) mapping(file, prefix string, n *yaml.Node) error {
	at := func(n *yaml.Node) string { return fmt.Sprintf("%s:%d", file, n.Line) }
	if n.Kind != yaml.MappingNode {
		what := "the file"
		if prefix != "" {
			what = strings.TrimSuffix(prefix, ".")
		}
		return &Error{Source: at(n), Key: strings.TrimSuffix(prefix, "."), Msg: fmt.Sprintf("%s must be a mapping of keys to values", what)}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		if seen[k.Value] {
			return &Error{Source: at(k), Key: key, Msg: "set twice"}
		}
		seen[k.Value] = true
		if s, ok := lookup(key); ok {
			if err := c.node(file, s, v); err != nil {
				return err
			}
			continue
		}
		if isSection(key) {
			if err := c.mapping(file, key+".", v); err != nil {
				return err
			}
			continue
		}
		if key == "policies" || key == "transforms" {
			guests, err := guestList(file, key, v)
			if err != nil {
				return err
			}
			if key == "policies" {
				c.Policies = guests
			} else {
				c.Transforms = guests
			}
			continue
		}
		return &Error{Source: at(k), Key: key, Msg: "unknown key; " + suggest(prefix, k.Value)}
	}
	return nil
}

// node applies one setting's value.
func (c *Config) node(file string, s Setting, v *yaml.Node) error {
	src := fmt.Sprintf("%s:%d", file, v.Line)
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	var text string
	switch {
	case s.List && v.Kind == yaml.SequenceNode:
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode || strings.Contains(it.Value, ",") {
				return &Error{Source: fmt.Sprintf("%s:%d", file, it.Line), Key: s.Key, Msg: "each item must be a pattern without commas"}
			}
			items = append(items, it.Value)
		}
		text = strings.Join(items, ",")
		if len(items) == 0 {
			text = ""
		}
	case s.List:
		return &Error{Source: src, Key: s.Key, Msg: "must be a list, like [.git, .env]"}
	case v.Kind != yaml.ScalarNode:
		return &Error{Source: src, Key: s.Key, Msg: "must be a single value, not a list or mapping"}
	case v.Tag == "!!null":
		return &Error{Source: src, Key: s.Key, Msg: "has no value; remove the key to use the default (" + s.Default + ")"}
	default:
		text = v.Value
	}
	return c.Set(s.Key, text, src)
}

func isSection(key string) bool {
	for _, s := range settings {
		if strings.HasPrefix(s.Key, key+".") {
			return true
		}
	}
	return false
}

// suggest names the key valid under prefix nearest to name, if one is
// near, and lists them all.
func suggest(prefix, name string) string {
	var keys []string
	seen := map[string]bool{}
	for _, s := range settings {
		if rest, ok := strings.CutPrefix(s.Key, prefix); ok {
			first, _, _ := strings.Cut(rest, ".")
			if !seen[first] {
				seen[first] = true
				keys = append(keys, first)
			}
		}
	}
	if prefix == "" {
		keys = append(keys, "policies", "transforms")
	}
	return didYouMean(prefix, name, keys) + "known keys here: " + strings.Join(keys, ", ")
}

// guestList reads a list of guest modules:
//
//	policies:
//	  - module: guests/protect-secrets/protect-secrets.wasm
//	    config: {paths: [".env*"]}
//	    timeout: 100ms
//	    memory_limit: 64MiB
func guestList(file, key string, n *yaml.Node) ([]Guest, error) {
	at := func(n *yaml.Node) string { return fmt.Sprintf("%s:%d", file, n.Line) }
	if n.Kind != yaml.SequenceNode {
		return nil, &Error{Source: at(n), Key: key, Msg: "must be a list of modules, like [{module: guest.wasm}]"}
	}
	var out []Guest
	for i, item := range n.Content {
		ikey := fmt.Sprintf("%s[%d]", key, i)
		if item.Kind != yaml.MappingNode {
			return nil, &Error{Source: at(item), Key: ikey, Msg: "must be a mapping with at least module:"}
		}
		g := Guest{Source: at(item)}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], item.Content[j+1]
			switch k.Value {
			case "module":
				if v.Kind != yaml.ScalarNode || v.Value == "" {
					return nil, &Error{Source: at(v), Key: ikey + ".module", Msg: "must be the path of a .wasm file"}
				}
				g.Module = v.Value
				if !filepath.IsAbs(g.Module) {
					g.Module = filepath.Join(filepath.Dir(file), g.Module)
				}
			case "config":
				var anyv any
				if err := v.Decode(&anyv); err != nil {
					return nil, &Error{Source: at(v), Key: ikey + ".config", Msg: err.Error()}
				}
				b, err := json.Marshal(anyv)
				if err != nil {
					return nil, &Error{Source: at(v), Key: ikey + ".config", Msg: "cannot be written as JSON: " + err.Error()}
				}
				g.Config = b
			case "timeout":
				if err := positive(&g.Timeout, v.Value); err != nil {
					return nil, &Error{Source: at(v), Key: ikey + ".timeout", Msg: err.Error()}
				}
			case "memory_limit":
				if err := sizeIn(&g.MemoryLimit, v.Value, 1<<20, 4<<30); err != nil {
					return nil, &Error{Source: at(v), Key: ikey + ".memory_limit", Msg: err.Error()}
				}
			default:
				known := []string{"module", "config", "timeout", "memory_limit"}
				return nil, &Error{Source: at(k), Key: ikey + "." + k.Value, Msg: "unknown key; " + didYouMean(ikey+".", k.Value, known) + "known keys here: " + strings.Join(known, ", ")}
			}
		}
		if g.Module == "" {
			return nil, &Error{Source: at(item), Key: ikey, Msg: "has no module:"}
		}
		if _, err := os.Stat(g.Module); err != nil {
			return nil, &Error{Source: at(item), Key: ikey + ".module", Msg: "cannot read " + g.Module + ": " + errText(err)}
		}
		out = append(out, g)
	}
	return out, nil
}

// yamlError turns "yaml: line 3: did not find..." into "FILE:3: did not find...".
func yamlError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		_, rest, _ := strings.Cut(msg, ": ")
		return &Error{Source: fmt.Sprintf("%s:%d", name, line), Msg: rest}
	}
	return &Error{Source: name, Msg: msg}
}
