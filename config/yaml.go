package config

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// YAML returns the configuration as a configuration file: every setting,
// nested by section in the order of Settings, each with its value in force
// whatever it came from, then the policies and transforms with their
// modules as absolute paths. Load reads it back to the same
// configuration, and YAML of that is the same bytes, wherever the file is
// saved.
func (c *Config) YAML() []byte {
	root := &yaml.Node{Kind: yaml.MappingNode,
		HeadComment: "llm-runtime configuration: every setting, as in force ('llm-runtime config --yaml')"}
	sections := map[string]*yaml.Node{}
	for _, s := range settings {
		parent, name := root, s.Key
		if section, rest, ok := strings.Cut(s.Key, "."); ok {
			if sections[section] == nil {
				sections[section] = &yaml.Node{Kind: yaml.MappingNode}
				root.Content = append(root.Content, scalarNode(section), sections[section])
			}
			parent, name = sections[section], rest
		}
		var v *yaml.Node
		if s.List {
			v = &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, item := range splitList(c.Value(s.Key)) {
				v.Content = append(v.Content, scalarNode(item))
			}
		} else {
			v = scalarNode(c.Value(s.Key))
		}
		parent.Content = append(parent.Content, scalarNode(name), v)
	}
	for _, list := range []struct {
		key    string
		guests []Guest
	}{{"policies", c.Policies}, {"transforms", c.Transforms}} {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		if len(list.guests) == 0 {
			seq.Style = yaml.FlowStyle
		}
		for _, g := range list.guests {
			m := &yaml.Node{Kind: yaml.MappingNode}
			module := g.Module
			if abs, err := filepath.Abs(module); err == nil {
				module = abs
			}
			m.Content = append(m.Content, scalarNode("module"), scalarNode(module))
			if len(g.Config) > 0 {
				var v any
				var n yaml.Node
				if json.Unmarshal(g.Config, &v) == nil && n.Encode(v) == nil {
					m.Content = append(m.Content, scalarNode("config"), &n)
				}
			}
			if g.Timeout > 0 {
				m.Content = append(m.Content, scalarNode("timeout"), scalarNode(formatDuration(g.Timeout)))
			}
			if g.MemoryLimit > 0 {
				m.Content = append(m.Content, scalarNode("memory_limit"), scalarNode(FormatSize(g.MemoryLimit)))
			}
			seq.Content = append(seq.Content, m)
		}
		root.Content = append(root.Content, scalarNode(list.key), seq)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		panic("config: YAML: " + err.Error()) // nodes built here always encode
	}
	enc.Close()
	return b.Bytes()
}

// scalarNode is v as YAML writes it: true and false as booleans, whole
// numbers as numbers, anything else as a string, quoted where YAML would
// read it as something else ("", null, 1.5...).
func scalarNode(v string) *yaml.Node {
	var x any = v
	if v == "true" || v == "false" {
		x = v == "true"
	} else if i, err := strconv.ParseInt(v, 10, 64); err == nil && strconv.FormatInt(i, 10) == v {
		x = i
	}
	var n yaml.Node
	if err := n.Encode(x); err != nil {
		panic("config: YAML: " + err.Error())
	}
	return &n
}
