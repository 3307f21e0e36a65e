package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Redacted is what a secret looks like in every output.
const Redacted = "[redacted]"

// FileSuffix turns a secret option into the option that reads it from a
// file: password → password_file, collect.token → collect.token_file.
const FileSuffix = "_file"

// secretNames are option names that hold secrets wherever they appear in
// the pipeline section; secretSuffixes catch the rest (oauth_token,
// client_secret, ...). Stage options are opaque YAML to this package, so
// the rule goes by name: a sink that calls a secret something else must
// expect it to be shown by `config show`.
var (
	secretNames    = []string{"password", "passphrase", "token", "secret", "api_key", "apikey", "private_key", "secret_access_key", "session_token", "authorization"}
	secretSuffixes = []string{"_password", "_token", "_secret", "_api_key", "_private_key"}
)

// IsSecretKey reports whether an option named key (the last part of its
// path, any case) holds a secret: its value is never shown, and key+"_file"
// may name a file to read it from.
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, n := range secretNames {
		if k == n {
			return true
		}
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// Redacted returns a copy of c safe to print: Secret fields already
// marshal as "[redacted]"; in the pipeline section every value under a
// secret key (IsSecretKey) is replaced too. c is not changed.
func (c Config) Redacted() Config {
	if c.Pipeline.Kind != 0 {
		c.Pipeline = *redactNode(&c.Pipeline)
	}
	return c
}

// redactNode returns a deep copy of n with the values of secret keys
// replaced by Redacted (a whole mapping or list under such a key too).
func redactNode(n *yaml.Node) *yaml.Node {
	cp := *n
	cp.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 1 && IsSecretKey(n.Content[i-1].Value) && !isEmptyScalar(child) {
			cp.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: Redacted, Line: child.Line, Column: child.Column}
			continue
		}
		cp.Content[i] = redactNode(child)
	}
	return &cp
}

func isEmptyScalar(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.Value == "" || n.ShortTag() == "!!null")
}

// readSecretFiles replaces, in the pipeline section, every option
// <secret>_file (IsSecretKey(<secret>)) by <secret> holding the file's
// content, without its trailing line break. Setting both is an error; so is
// a file that cannot be read. Errors name the option's path and the file,
// never the content.
func readSecretFiles(n *yaml.Node, path string) []error {
	var errs []error
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := path + "." + k.Value
			stem, isFile := strings.CutSuffix(k.Value, FileSuffix)
			if !isFile || !IsSecretKey(stem) {
				errs = append(errs, readSecretFiles(v, p)...)
				continue
			}
			if hasKey(n, stem) {
				errs = append(errs, fmt.Errorf("line %d: %s: set %s or %s, not both", k.Line, p, stem, k.Value))
				continue
			}
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				errs = append(errs, fmt.Errorf("line %d: %s: want the path of a file", v.Line, p))
				continue
			}
			secret, err := ReadSecretFile(v.Value)
			if err != nil {
				errs = append(errs, fmt.Errorf("line %d: %s: %w", v.Line, p, err))
				continue
			}
			k.Value = stem
			*v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: secret, Line: v.Line, Column: v.Column}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			errs = append(errs, readSecretFiles(item, fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return errs
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// ReadSecretFile returns the content of the file at path without its
// trailing line breaks, as secrets mounted by Kubernetes, Docker or
// systemd credentials are written. An empty file is an error. The error
// names the file, never its content.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("read secret: %s is empty", path)
	}
	return s, nil
}

// LoadSecretFiles reads the secrets given as files in settings
// (collect.token_file, explore.*_password_file, ...): each fills its
// secret, which must not be set as well. Call it after flags are applied
// and before Validate. Errors name the key and the file, never the
// content.
func (c *Config) LoadSecretFiles() error {
	var errs []error
	for _, f := range []struct {
		key    string
		secret *Secret
		file   string
	}{
		{"collect.token", &c.Collect.Token, c.Collect.TokenFile},
		{"explore.opensearch_password", &c.Explore.OpenSearchPassword, c.Explore.OpenSearchPasswordFile},
		{"explore.elasticsearch_password", &c.Explore.ElasticsearchPassword, c.Explore.ElasticsearchPasswordFile},
		{"explore.elasticsearch_api_key", &c.Explore.ElasticsearchAPIKey, c.Explore.ElasticsearchAPIKeyFile},
	} {
		if f.file == "" {
			continue
		}
		if *f.secret != "" {
			errs = append(errs, fmt.Errorf("%s and %s%s: set one, not both", f.key, f.key, FileSuffix))
			continue
		}
		v, err := ReadSecretFile(f.file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s%s: %w", f.key, FileSuffix, err))
			continue
		}
		*f.secret = Secret(v)
	}
	return errors.Join(errs...)
}
