package config

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// expandEnv replaces references to environment variables in every scalar
// value of the YAML document n (keys are left alone), as Vector and
// Benthos users expect:
//
//	${NAME}            the variable's value; unset is an error naming it
//	${NAME:-fallback}  the value, or fallback when unset or empty
//	$${                a literal "${"
//
// Values are substituted after parsing, so a variable cannot change the
// document's structure. A plain (unquoted) scalar is typed again from its
// new text, so `port: ${PORT}` is a number; quote it to keep a string.
// lookup is os.LookupEnv or a test's map.
func expandEnv(n *yaml.Node, path string, lookup func(string) (string, bool)) []error {
	var errs []error
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			errs = append(errs, expandEnv(c, path, lookup)...)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			errs = append(errs, expandEnv(n.Content[i+1], p, lookup)...)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			errs = append(errs, expandEnv(c, fmt.Sprintf("%s[%d]", path, i), lookup)...)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return nil
		}
		v, err := expandString(n.Value, lookup)
		if err != nil {
			return []error{fmt.Errorf("line %d: %s: %w", n.Line, orTop(path), err)}
		}
		if v == n.Value {
			return nil
		}
		n.Value = v
		if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			n.Tag = "" // typed again from the new text when decoded
			if n.ShortTag() == "!!null" {
				n.Tag = "!!str" // a value that spells null is still the value
			}
		}
	}
	return errs
}

// errUnset is wrapped by the error for a variable that is not set.
var errUnset = errors.New("is not set")

// expandString expands the references in s; see expandEnv.
func expandString(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			s = s[i+3:]
			continue
		case s[i+1] != '{':
			b.WriteByte('$')
			s = s[i+1:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q: unterminated ${ (write $${ for a literal ${)", s[i:])
		}
		ref := s[i+2 : i+end]
		name, fallback, hasFallback := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s}: %q is not an environment variable name (letters, digits, _)", ref, name)
		}
		val, ok := lookup(name)
		switch {
		case hasFallback && val == "":
			val = fallback
		case !ok:
			return "", fmt.Errorf("environment variable %s %w (referenced as ${%s}; set it, or give a default with ${%s:-value})", name, errUnset, ref, name)
		}
		b.WriteString(val)
		s = s[i+end+1:]
	}
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// lookupIn returns a lookup function over environ (KEY=value entries).
func lookupIn(environ []string) func(string) (string, bool) {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}
