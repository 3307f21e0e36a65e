package transform

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
)

// FilterOptions configures the filter processor. In a pipeline config:
//
//	processors:
//	  - type: filter
//	    drop:
//	      - {field: bot, equals: true}
//	      - {field: uri, prefix: /health}
//	      - {field: status, in: [0, 404]}   # 0: CloudFront's 000, and every app event
//	      - {field: event_type, in: [view, download], not: true}  # keep only views and downloads
type FilterOptions struct {
	// Drop lists the rules; a message matching any of them is dropped. At
	// least one rule is required.
	Drop []Rule `yaml:"drop"`
}

// Rule is one condition on one event field. Exactly one of Equals, In and
// Prefix is set.
type Rule struct {
	// Field is one of FilterFields.
	Field string `yaml:"field"`
	// Equals matches a field equal to the value: a bool for bot, an
	// integer for status, a string for the others.
	Equals any `yaml:"equals"`
	// In matches a field equal to any of the values (typed as for Equals).
	In []any `yaml:"in"`
	// Prefix matches a string field that starts with the value.
	Prefix string `yaml:"prefix"`
	// Not inverts the rule: it matches when the condition does not hold.
	Not bool `yaml:"not"`
}

type fieldKind uint8

const (
	kindString fieldKind = iota
	kindInt
	kindBool
)

// filterField is a field a rule may test.
type filterField struct {
	kind fieldKind
	str  func(*event.Event) string
	num  func(*event.Event) int
	flag func(*event.Event) bool
}

var filterFields = map[string]filterField{
	"event_type":       {kind: kindString, str: func(e *event.Event) string { return string(e.EventType) }},
	"source":           {kind: kindString, str: func(e *event.Event) string { return string(e.Source) }},
	"uri":              {kind: kindString, str: func(e *event.Event) string { return e.URI }},
	"host":             {kind: kindString, str: func(e *event.Event) string { return e.Host }},
	"method":           {kind: kindString, str: func(e *event.Event) string { return e.Method }},
	"cache_result":     {kind: kindString, str: func(e *event.Event) string { return e.CacheResult }},
	"country_iso":      {kind: kindString, str: func(e *event.Event) string { return e.Geo.CountryISO }},
	"referring_domain": {kind: kindString, str: func(e *event.Event) string { return e.ReferringDomain }},
	"status":           {kind: kindInt, num: func(e *event.Event) int { return e.Status }},
	"bot":              {kind: kindBool, flag: func(e *event.Event) bool { return e.Bot }},
}

// FilterFields returns the names of the fields a Rule may test, sorted.
func FilterFields() []string {
	names := make([]string, 0, len(filterFields))
	for n := range filterFields {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Filter is the filter processor: it drops the messages that match any of
// its rules. A dropped message is simply not returned; the pipeline still
// advances the checkpoint past it. Values compare exactly (case matters;
// host is lower case and country_iso upper case in every event). It is
// immutable and safe for concurrent use.
type Filter struct {
	rules []func(*event.Event) bool
}

// Validate reports every invalid rule, each naming it (drop[i]) and
// wrapping ErrOption: an empty rule list, an unknown field, a rule with no
// or several conditions, or a value of the wrong type.
func (o FilterOptions) Validate() error {
	_, err := o.compile()
	return err
}

func (o FilterOptions) compile() ([]func(*event.Event) bool, error) {
	if len(o.Drop) == 0 {
		return nil, optionError("drop", "no rules; list conditions such as {field: bot, equals: true}")
	}
	rules := make([]func(*event.Event) bool, 0, len(o.Drop))
	var errs []error
	for i, r := range o.Drop {
		match, err := compileRule(r)
		if err != nil {
			errs = append(errs, optionError(fmt.Sprintf("drop[%d]", i), "%v", err))
		}
		rules = append(rules, match)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rules, nil
}

// NewFilter compiles the rules. Options that do not Validate are an error
// wrapping ErrOption.
func NewFilter(o FilterOptions) (*Filter, error) {
	rules, err := o.compile()
	if err != nil {
		return nil, err
	}
	return &Filter{rules: rules}, nil
}

func compileRule(r Rule) (func(*event.Event) bool, error) {
	fld, ok := filterFields[r.Field]
	if !ok {
		if r.Field == "" {
			return nil, fmt.Errorf("field is missing; supported: %s", strings.Join(FilterFields(), ", "))
		}
		return nil, fmt.Errorf("field %q is not supported; supported: %s", r.Field, strings.Join(FilterFields(), ", "))
	}
	n := 0
	for _, set := range []bool{r.Equals != nil, r.In != nil, r.Prefix != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("field %s: want exactly one of equals, in and prefix, have %d", r.Field, n)
	}
	var match func(*event.Event) bool
	switch {
	case r.Prefix != "":
		if fld.kind != kindString {
			return nil, fmt.Errorf("field %s: prefix applies only to text fields", r.Field)
		}
		prefix := r.Prefix
		match = func(e *event.Event) bool { return strings.HasPrefix(fld.str(e), prefix) }
	default:
		values := r.In
		if r.Equals != nil {
			values = []any{r.Equals}
		}
		if len(values) == 0 {
			return nil, fmt.Errorf("field %s: in is an empty list", r.Field)
		}
		var err error
		if match, err = compileIn(r.Field, fld, values); err != nil {
			return nil, err
		}
	}
	if r.Not {
		inner := match
		match = func(e *event.Event) bool { return !inner(e) }
	}
	return match, nil
}

// compileIn returns a matcher for "the field equals one of values",
// checking each value's type against the field's.
func compileIn(name string, fld filterField, values []any) (func(*event.Event) bool, error) {
	switch fld.kind {
	case kindBool:
		var want [2]bool // want[0]: false matches, want[1]: true matches
		for _, v := range values {
			b, ok := v.(bool)
			if !ok {
				return nil, fmt.Errorf("field %s: value %v (%T) is not true or false", name, v, v)
			}
			want[boolIndex(b)] = true
		}
		return func(e *event.Event) bool { return want[boolIndex(fld.flag(e))] }, nil
	case kindInt:
		set := make([]int, 0, len(values))
		for _, v := range values {
			n, ok := toInt(v)
			if !ok {
				return nil, fmt.Errorf("field %s: value %v (%T) is not an integer", name, v, v)
			}
			set = append(set, n)
		}
		return func(e *event.Event) bool { return slices.Contains(set, fld.num(e)) }, nil
	default:
		set := make([]string, 0, len(values))
		for _, v := range values {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("field %s: value %v (%T) is not a string; quote it", name, v, v)
			}
			set = append(set, s)
		}
		if len(set) > 8 {
			m := make(map[string]struct{}, len(set))
			for _, s := range set {
				m[s] = struct{}{}
			}
			return func(e *event.Event) bool { _, ok := m[fld.str(e)]; return ok }, nil
		}
		return func(e *event.Event) bool { return slices.Contains(set, fld.str(e)) }, nil
	}
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// toInt converts the integer types YAML decoding and Go callers produce.
func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int8:
		return int(n), true
	case int16:
		return int(n), true
	case int32:
		return int(n), true
	case int64:
		return int(n), true
	case uint8:
		return int(n), true
	case uint16:
		return int(n), true
	case uint32:
		return int(n), true
	case uint64:
		if n <= math.MaxInt {
			return int(n), true
		}
	case uint:
		if n <= math.MaxInt {
			return int(n), true
		}
	}
	return 0, false
}

// Process returns the messages that match no rule, in order. Failed
// messages are passed through for the pipeline to dead-letter. It never
// fails, does not block and does not modify batch.
func (f *Filter) Process(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
	var out []*processors.Message
	for i, m := range batch {
		if m.Failed() != nil || !f.Drops(&m.Event) {
			if out != nil {
				out = append(out, m)
			}
			continue
		}
		if out == nil {
			out = make([]*processors.Message, i, len(batch)-1)
			copy(out, batch[:i])
		}
	}
	if out == nil {
		return batch, nil
	}
	return out, nil
}

// Drops reports whether e matches any rule. It is safe for concurrent use.
func (f *Filter) Drops(e *event.Event) bool {
	for _, match := range f.rules {
		if match(e) {
			return true
		}
	}
	return false
}
