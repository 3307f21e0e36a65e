package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// EnvPrefix starts every environment variable that sets a config key.
const EnvPrefix = "LEASEHOLD_"

// Field is one leaf setting of a config struct, named three ways that
// always agree: the YAML key path ("lease.duration"), the environment
// variable (LEASEHOLD_LEASE_DURATION) and the flag (--lease.duration).
type Field struct {
	Key  string // dotted YAML path, e.g. "lease.duration"
	Env  string // environment variable, e.g. "LEASEHOLD_LEASE_DURATION"
	Flag string // flag name without dashes, e.g. "lease.duration"
	Doc  string // from the `doc` struct tag
	v    reflect.Value
}

// Kind names the value's type for the config reference ("duration", "int", …).
func (f Field) Kind() string {
	if f.v.Type() == durationType {
		return "duration"
	}
	if f.v.Kind() == reflect.Slice {
		return "list"
	}
	return f.v.Kind().String()
}

// Value formats the field's current value the way a user would write it.
func (f Field) Value() string { return format(f.v) }

var durationType = reflect.TypeOf(time.Duration(0))

// Fields walks a pointer to a config struct and returns its leaf settings in
// declaration order. Struct fields need a `yaml` tag to be included; fields
// tagged `env:"-"` (lists of maps such as the pipeline) are left to the file.
func Fields(ptr any) []Field {
	var out []Field
	walk(reflect.ValueOf(ptr).Elem(), nil, &out)
	return out
}

func walk(v reflect.Value, path []string, out *[]Field) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		p := append(append([]string(nil), path...), name)
		fv := v.Field(i)
		if sf.Type.Kind() == reflect.Struct && sf.Type != durationType {
			walk(fv, p, out)
			continue
		}
		if sf.Tag.Get("env") == "-" || !settable(sf.Type) {
			continue
		}
		key := strings.Join(p, ".")
		*out = append(*out, Field{
			Key:  key,
			Env:  EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_")),
			Flag: strings.ReplaceAll(key, "_", "-"),
			Doc:  sf.Tag.Get("doc"),
			v:    fv,
		})
	}
}

func settable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

func format(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = v.Index(i).String()
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}

// set parses s into the field's type.
func (f Field) set(s string) error {
	v := f.v
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration such as 10s or 1m30s, got %q", s)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", s)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("want a number, got %q", s)
		}
		v.SetFloat(x)
	case v.Kind() == reflect.Slice:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// ApplyEnv sets fields from LEASEHOLD_* variables in environ (as from
// os.Environ). A LEASEHOLD_ variable that names no key is an error, so a typo
// is reported instead of silently ignored.
func ApplyEnv(ptr any, environ []string) error {
	byEnv := map[string]Field{}
	for _, f := range Fields(ptr) {
		byEnv[f.Env] = f
	}
	var errs []error
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || ignoredEnv[name] {
			continue
		}
		f, ok := byEnv[name]
		if !ok {
			errs = append(errs, fmt.Errorf("environment variable %s names no setting%s", name, suggest(name, envNames(byEnv))))
			continue
		}
		if err := f.set(val); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s (key %s): %w", name, f.Key, err))
		}
	}
	return errors.Join(errs...)
}

// ignoredEnv lists LEASEHOLD_ variables that are not config keys.
var ignoredEnv = map[string]bool{
	"LEASEHOLD_CONFIG":              true, // the config file path
	"LEASEHOLD_FAILPOINT":           true, // test-only crash points
	"LEASEHOLD_BENCH_KEEP_DIR":      true, // keep a benchmark's temporary folder (worker logs) for a look
	"LEASEHOLD_TEST_OUTAGE":         true, // length of the OpenSearch outage in an integration test
	"LEASEHOLD_TEST_OPENSEARCH_URL": true, // the tests' OpenSearch (printed by `leasehold dev env`)
	// The tests' Elasticsearch, also printed by `leasehold dev env`
	// (devstack's TestEnvIsAcceptedByTheCommands keeps the two lists agreed).
	"LEASEHOLD_TEST_ELASTICSEARCH_URL":      true,
	"LEASEHOLD_TEST_ELASTICSEARCH_USERNAME": true,
	"LEASEHOLD_TEST_ELASTICSEARCH_PASSWORD": true,
	"LEASEHOLD_TEST_ELASTICSEARCH_CA_FILE":  true,
	// The explorer's browser test: fail instead of skipping without chromium,
	// where to write screenshots, and another chromium binary.
	"LEASEHOLD_TEST_REQUIRE_BROWSER": true,
	"LEASEHOLD_TEST_SCREENSHOTS":     true,
	"LEASEHOLD_TEST_CHROMIUM":        true,
}

func envNames(m map[string]Field) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// BindFlags registers one flag per field on fs. Call ApplyFlags after
// fs.Parse to copy the flags the user actually set into the struct; flags
// that were not set leave the file and environment values alone.
func BindFlags(fs *pflag.FlagSet, ptr any, only func(Field) bool) {
	for _, f := range Fields(ptr) {
		if only != nil && !only(f) {
			continue
		}
		fs.Var(&flagValue{kind: f.Kind()}, f.Flag, flagUsage(f))
	}
}

// flagValue holds a flag's raw text until ApplyFlags parses it into the
// field, so flags share the parser (and messages) of files and env vars.
type flagValue struct {
	kind string
	val  string
}

func (v *flagValue) String() string     { return v.val }
func (v *flagValue) Set(s string) error { v.val = s; return nil }
func (v *flagValue) Type() string       { return v.kind }

func flagUsage(f Field) string {
	u := f.Doc
	if u == "" {
		u = f.Key
	}
	return fmt.Sprintf("%s (env %s; default %q)", u, f.Env, f.Value())
}

// ApplyFlags copies every flag the user set on fs into the struct.
func ApplyFlags(fs *pflag.FlagSet, ptr any) error {
	var errs []error
	for _, f := range Fields(ptr) {
		fl := fs.Lookup(f.Flag)
		if fl == nil || !fl.Changed {
			continue
		}
		if err := f.set(fl.Value.String()); err != nil {
			errs = append(errs, fmt.Errorf("flag --%s: %w", f.Flag, err))
		}
	}
	return errors.Join(errs...)
}

// suggest returns ` (did you mean X?)` for the closest candidate, if any is
// close enough to be a plausible typo.
func suggest(got string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := levenshtein(strings.ToLower(got), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > len(got)/3+1 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
