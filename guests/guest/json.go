//go:build wasip1

package guest

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON codec for the flat objects of the ABI. encoding/json works
// in a guest, but its reflection costs ~90 µs a call under wazero; this
// costs a few. Requests are objects whose values are strings, numbers or
// (for "config") any JSON value, kept raw.

var errSyntax = errors.New("guest: bad JSON in the request")

type reader struct {
	b []byte
	i int
}

func (r *reader) space() {
	for r.i < len(r.b) && (r.b[r.i] == ' ' || r.b[r.i] == '\t' || r.b[r.i] == '\n' || r.b[r.i] == '\r') {
		r.i++
	}
}

func (r *reader) expect(c byte) error {
	r.space()
	if r.i >= len(r.b) || r.b[r.i] != c {
		return errSyntax
	}
	r.i++
	return nil
}

// elements calls fn for each raw value between open and close (an array's
// elements, or an object's key-value pairs, whose ':' fn reads).
func elements(b []byte, open, close byte, fn func(r *reader) error) error {
	r := &reader{b: b}
	if err := r.expect(open); err != nil {
		return err
	}
	r.space()
	if r.i < len(r.b) && r.b[r.i] == close {
		return nil
	}
	for {
		if err := fn(r); err != nil {
			return err
		}
		r.space()
		if r.i < len(r.b) && r.b[r.i] == ',' {
			r.i++
			continue
		}
		return r.expect(close)
	}
}

// value returns the next raw value.
func (r *reader) value() ([]byte, error) {
	r.space()
	start := r.i
	err := r.skip()
	return r.b[start:r.i], err
}

// fields calls fn for each key of an object (its text between the quotes,
// decoded only when it holds an escape) with its raw value. Allocations
// cost ~1.6 µs each in a guest, so neither the reader nor a plain key is
// allocated.
func fields(b []byte, fn func(key, raw []byte) error) error {
	r := reader{b: b}
	if err := r.expect('{'); err != nil {
		return err
	}
	r.space()
	if r.i < len(r.b) && r.b[r.i] == '}' {
		return nil
	}
	for {
		k, err := r.value()
		if err != nil {
			return err
		}
		key, err := rawKey(k)
		if err != nil {
			return err
		}
		if err := r.expect(':'); err != nil {
			return err
		}
		v, err := r.value()
		if err != nil {
			return err
		}
		if err := fn(key, v); err != nil {
			return err
		}
		r.space()
		if r.i < len(r.b) && r.b[r.i] == ',' {
			r.i++
			continue
		}
		return r.expect('}')
	}
}

// rawKey returns a key literal's text: a slice of b when it has no escape.
func rawKey(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil, errSyntax
	}
	for _, c := range b[1 : len(b)-1] {
		if c == '\\' {
			s, err := unquote(b)
			return []byte(s), err
		}
	}
	return b[1 : len(b)-1], nil
}

// skip moves past one JSON value.
func (r *reader) skip() error {
	r.space()
	if r.i >= len(r.b) {
		return errSyntax
	}
	switch c := r.b[r.i]; {
	case c == '"':
		r.i++
		for r.i < len(r.b) {
			switch r.b[r.i] {
			case '\\':
				r.i += 2
				continue
			case '"':
				r.i++
				return nil
			}
			r.i++
		}
		return errSyntax
	case c == '{' || c == '[':
		depth := 0
		for r.i < len(r.b) {
			switch r.b[r.i] {
			case '"':
				if err := r.skip(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					r.i++
					return nil
				}
			}
			r.i++
		}
		return errSyntax
	default:
		for r.i < len(r.b) && !strings.ContainsRune(",}] \t\r\n", rune(r.b[r.i])) {
			r.i++
		}
		return nil
	}
}

// unquote decodes a JSON string literal.
func unquote(b []byte) (string, error) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", errSyntax
	}
	b = b[1 : len(b)-1]
	plain := true
	for _, c := range b {
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(b), nil
	}
	var s strings.Builder
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			s.WriteByte(c)
			continue
		}
		i++
		if i >= len(b) {
			return "", errSyntax
		}
		switch b[i] {
		case '"', '\\', '/':
			s.WriteByte(b[i])
		case 'b':
			s.WriteByte('\b')
		case 'f':
			s.WriteByte('\f')
		case 'n':
			s.WriteByte('\n')
		case 'r':
			s.WriteByte('\r')
		case 't':
			s.WriteByte('\t')
		case 'u':
			if i+4 >= len(b) {
				return "", errSyntax
			}
			v, err := strconv.ParseUint(string(b[i+1:i+5]), 16, 16)
			if err != nil {
				return "", errSyntax
			}
			i += 4
			r := rune(v)
			if utf16.IsSurrogate(r) && i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if v2, err := strconv.ParseUint(string(b[i+3:i+7]), 16, 16); err == nil {
					if d := utf16.DecodeRune(r, rune(v2)); d != utf8.RuneError {
						r = d
						i += 6
					}
				}
			}
			s.WriteRune(r)
		default:
			return "", errSyntax
		}
	}
	return s.String(), nil
}

// appendString appends s as a JSON string literal; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// decode sets vals[i] to the string under keys[i], and config to the raw
// value under "config", from an object; other keys are ignored. Nothing
// here makes the caller's values escape to the heap.
func decode(b []byte, keys, vals []string, config *[]byte) error {
	return fields(b, func(k, raw []byte) error {
		if string(k) == "config" {
			*config = append([]byte(nil), raw...)
			return nil
		}
		for i, key := range keys {
			if string(k) == key {
				s, err := unquote(raw)
				vals[i] = s
				return err
			}
		}
		return nil
	})
}

var (
	requestKeys   = []string{"op", "path", "command", "query", "content", "session", "resolved", "to", "to_resolved"}
	transformKeys = []string{"op", "path", "command", "query", "output", "session"}
)

// decodeRequest decodes a policy request.
func decodeRequest(b []byte) (r Request, err error) {
	var v [9]string
	err = decode(b, requestKeys, v[:], &r.Config)
	r.Op, r.Path, r.Command, r.Query, r.Content, r.Session, r.Resolved = v[0], v[1], v[2], v[3], v[4], v[5], v[6]
	r.To, r.ToResolved = v[7], v[8]
	if err == nil && r.Op == "write" {
		err = fields(b, func(k, raw []byte) error {
			if string(k) == "edit" {
				r.Edit = string(raw) == "true"
			}
			return nil
		})
	}
	return r, err
}

// decodeTransformRequest decodes a transform request.
func decodeTransformRequest(b []byte) (r TransformRequest, err error) {
	var v [6]string
	err = decode(b, transformKeys, v[:], &r.Config)
	r.Op, r.Path, r.Command, r.Query, r.Output, r.Session = v[0], v[1], v[2], v[3], v[4], v[5]
	return r, err
}

func (d Decision) appendJSON(b []byte) []byte {
	b = append(b, `{"decision":`...)
	b = appendString(b, d.Decision)
	if d.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, d.Reason)
	}
	if d.Argument != "" {
		b = append(b, `,"argument":`...)
		b = appendString(b, d.Argument)
	}
	return append(b, '}')
}

func (t TransformResult) appendJSON(b []byte) []byte {
	b = append(b, `{"output":`...)
	b = appendString(b, t.Output)
	b = append(b, `,"changes":`...)
	b = strconv.AppendInt(b, int64(t.Changes), 10)
	return append(b, '}')
}

// StringList returns the list of strings under key in a JSON object, such
// as a module's configuration: found is false when the key is absent.
func StringList(raw []byte, key string) (list []string, found bool, err error) {
	if len(raw) == 0 {
		return nil, false, nil
	}
	bad := errors.New(key + " must be a list of strings")
	err = fields(raw, func(k, v []byte) error {
		if string(k) != key {
			return nil
		}
		found, list = true, []string{}
		err := elements(v, '[', ']', func(r *reader) error {
			raw, err := r.value()
			if err != nil {
				return err
			}
			s, err := unquote(raw)
			list = append(list, s)
			return err
		})
		if err != nil {
			return bad
		}
		return nil
	})
	return list, found, err
}
