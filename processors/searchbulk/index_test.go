package searchbulk

import (
	"testing"
	"time"
)

func TestIndexPattern(t *testing.T) {
	at := time.Date(2024, 3, 9, 23, 59, 59, 0, time.UTC)
	tests := []struct {
		pattern, name, wildcard, template string
	}{
		{"leasehold-events-{yyyy.MM.dd}", "leasehold-events-2024.03.09", "leasehold-events-*", "leasehold-events"},
		{"web-{yyyy-MM}", "web-2024-03", "web-*", "web"},
		{"web-{yyyy.MM.dd.HH}", "web-2024.03.09.23", "web-*", "web"},
		{"a{yyyy}b{MM}", "a2024b03", "a*b*", "a"},
		{"static", "static", "static", "static"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			p, err := ParseIndexPattern(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Name(at); got != tt.name {
				t.Errorf("name = %q, want %q", got, tt.name)
			}
			if got := p.Wildcard(); got != tt.wildcard {
				t.Errorf("wildcard = %q, want %q", got, tt.wildcard)
			}
			if got := p.TemplateName(); got != tt.template {
				t.Errorf("templateName = %q, want %q", got, tt.template)
			}
		})
	}
}

func TestIndexNamerUsesUTCDayAndCaches(t *testing.T) {
	p, _ := ParseIndexPattern("leasehold-events-{yyyy.MM.dd}")
	n := indexNamer{p: p}
	plus2 := time.FixedZone("+02", 2*3600)
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{"utc", time.Date(2024, 3, 9, 12, 0, 0, 0, time.UTC), "leasehold-events-2024.03.09"},
		{"same day, cached", time.Date(2024, 3, 9, 23, 59, 59, 999, time.UTC), "leasehold-events-2024.03.09"},
		{"next day", time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC), "leasehold-events-2024.03.10"},
		{"offset converted to UTC", time.Date(2024, 3, 10, 1, 0, 0, 0, plus2), "leasehold-events-2024.03.09"},
		{"before 1970", time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), "leasehold-events-1969.12.31"},
		{"1970", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), "leasehold-events-1970.01.01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(n.get(tt.t)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
