package explorer

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// Query is the typed form of a page's state: every API call takes it from
// the URL's query string, and only these values ever reach OpenSearch, as
// term and range values in queries the server builds. Unknown parameters
// are errors, so a typo is not silently ignored and nothing else can slip
// through.
type Query struct {
	Period  string    // 7d, 30d, 90d, month or custom
	From    time.Time // first day, 00:00 UTC
	To      time.Time // the day after the last day, 00:00 UTC (exclusive)
	Compare string    // previous, year or none
	Tenant  string    // admins only: one customer, or "" for all
	Type    string    // asset type, or "" for all
	Source  string    // cloudfront, app, or "" for both
	Bots    bool      // include automated traffic
	Asset   string    // one asset's page, or ""
	Limit   int       // rows of top lists
	Format  string    // json or csv (table endpoints)
	Table   string    // which table of the endpoint to export as CSV
	Metric  string    // the figure the activity chart shows: views, downloads, viewers, bytes or sites
}

// The parameter values.
var (
	periods  = map[string]int{"7d": 7, "30d": 30, "90d": 90}
	compares = map[string]bool{"previous": true, "year": true, "none": true}
	types    = map[string]bool{"video": true, "image": true, "audio": true, "document": true, "other": true}
	sources  = map[string]bool{"cloudfront": true, "app": true}
	// idRE bounds what an id may look like: a keyword value is never
	// interpreted by OpenSearch, but the bound keeps logs and URLs sane.
	idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,255}$`)
)

// MaxRange is the longest custom period.
const MaxRange = 400 * 24 * time.Hour

// ErrParam is wrapped by every parameter error.
var ErrParam = errors.New("explorer: bad parameter")

func paramErr(name, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrParam, name, fmt.Sprintf(format, args...))
}

// known lists the parameters every endpoint accepts.
var known = map[string]bool{"period": true, "from": true, "to": true, "month": true, "compare": true, "tenant": true,
	"type": true, "source": true, "bots": true, "asset": true, "limit": true, "format": true, "table": true, "lang": true, "metric": true}

// ParseQuery validates v against the allowed values; now is the server's
// clock (periods of the last N days end with yesterday, so comparisons are
// between whole days). Errors wrap ErrParam and name the parameter.
func ParseQuery(v url.Values, now time.Time) (Query, error) {
	q := Query{Period: "7d", Compare: "previous", Limit: 10, Format: "json", Metric: "views"}
	var errs []error
	for k, vals := range v {
		if !known[k] {
			errs = append(errs, paramErr(k, "unknown parameter"))
			continue
		}
		if len(vals) != 1 {
			errs = append(errs, paramErr(k, "given %d times", len(vals)))
		}
	}
	get := func(k string) string { return v.Get(k) }
	today := now.UTC().Truncate(24 * time.Hour)
	if p := get("period"); p != "" {
		q.Period = p
	}
	switch q.Period {
	case "7d", "30d", "90d":
		q.To = today
		q.From = today.AddDate(0, 0, -periods[q.Period])
	case "month":
		m, err := time.Parse("2006-01", get("month"))
		if err != nil {
			errs = append(errs, paramErr("month", "want YYYY-MM"))
			break
		}
		q.From = m.UTC()
		q.To = q.From.AddDate(0, 1, 0)
	case "custom":
		from, err1 := time.Parse(time.DateOnly, get("from"))
		to, err2 := time.Parse(time.DateOnly, get("to"))
		switch {
		case err1 != nil:
			errs = append(errs, paramErr("from", "want YYYY-MM-DD"))
		case err2 != nil:
			errs = append(errs, paramErr("to", "want YYYY-MM-DD"))
		case to.Before(from):
			errs = append(errs, paramErr("to", "is before from"))
		case to.Sub(from) >= MaxRange:
			errs = append(errs, paramErr("to", "the period is longer than %d days", int(MaxRange.Hours()/24)))
		default:
			q.From, q.To = from.UTC(), to.UTC().AddDate(0, 0, 1)
		}
	default:
		errs = append(errs, paramErr("period", "%q is not one of 7d, 30d, 90d, month, custom", q.Period))
	}
	if c := get("compare"); c != "" {
		if !compares[c] {
			errs = append(errs, paramErr("compare", "%q is not one of previous, year, none", c))
		}
		q.Compare = c
	}
	if t := get("tenant"); t != "" {
		if !idRE.MatchString(t) {
			errs = append(errs, paramErr("tenant", "not a customer id"))
		}
		q.Tenant = t
	}
	if t := get("type"); t != "" {
		if !types[t] {
			errs = append(errs, paramErr("type", "%q is not one of video, image, audio, document, other", t))
		}
		q.Type = t
	}
	if s := get("source"); s != "" {
		if !sources[s] {
			errs = append(errs, paramErr("source", "%q is not one of cloudfront, app", s))
		}
		q.Source = s
	}
	switch get("bots") {
	case "", "0", "false":
	case "1", "true":
		q.Bots = true
	default:
		errs = append(errs, paramErr("bots", "want 0 or 1"))
	}
	if a := get("asset"); a != "" {
		if !idRE.MatchString(a) {
			errs = append(errs, paramErr("asset", "not an asset id"))
		}
		q.Asset = a
	}
	if l := get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			errs = append(errs, paramErr("limit", "want a number from 1 to 100"))
		}
		q.Limit = n
	}
	if f := get("format"); f != "" {
		if f != "json" && f != "csv" {
			errs = append(errs, paramErr("format", "want json or csv"))
		}
		q.Format = f
	}
	if t := get("table"); t != "" {
		if !regexp.MustCompile(`^[a-z_]{1,32}$`).MatchString(t) {
			errs = append(errs, paramErr("table", "not a table name"))
		}
		q.Table = t
	}
	if m := get("metric"); m != "" {
		switch m {
		case "views", "downloads", "viewers", "bytes", "sites":
			q.Metric = m
		default:
			errs = append(errs, paramErr("metric", "%q is not one of views, downloads, viewers, bytes, sites", m))
		}
	}
	if l := get("lang"); l != "" && !regexp.MustCompile(`^[a-z]{2}$`).MatchString(l) {
		errs = append(errs, paramErr("lang", "want a two-letter language code"))
	}
	return q, errors.Join(errs...)
}

// Previous returns the comparison period: the same length just before
// (for a month, the month before),
// the same dates a year earlier, or ok=false for none.
func (q Query) Previous() (from, to time.Time, ok bool) {
	switch q.Compare {
	case "previous":
		if q.Period == "month" {
			return q.From.AddDate(0, -1, 0), q.From, true
		}
		d := q.To.Sub(q.From)
		return q.From.Add(-d), q.From, true
	case "year":
		return q.From.AddDate(-1, 0, 0), q.To.AddDate(-1, 0, 0), true
	}
	return time.Time{}, time.Time{}, false
}

// Days returns the number of days in the period.
func (q Query) Days() int { return int(q.To.Sub(q.From).Hours() / 24) }
