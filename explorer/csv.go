package explorer

import (
	"encoding/csv"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// table is one table of an answer as the CSV export writes it.
type table struct {
	header []string
	rows   [][]string
}

// respond writes v as JSON, or with format=csv the table named by the
// table parameter (the only one when the endpoint has one).
func (s *Server) respond(w http.ResponseWriter, r *http.Request, q Query, v any, tables map[string]table) {
	if q.Format != "csv" {
		writeJSON(w, http.StatusOK, v)
		return
	}
	name := q.Table
	if name == "" && len(tables) == 1 {
		for k := range tables {
			name = k
		}
	}
	t, ok := tables[name]
	if !ok {
		var names []string
		for k := range tables {
			names = append(names, k)
		}
		sort.Strings(names)
		writeError(w, http.StatusBadRequest, "bad_parameter", "table: use one of "+strings.Join(names, ", "))
		return
	}
	file := "leasehold-" + name + "-" + q.From.Format(time.DateOnly) + "-" + q.To.AddDate(0, 0, -1).Format(time.DateOnly) + ".csv"
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+file+`"`)
	cw := csv.NewWriter(w)
	_ = cw.Write(t.header)
	for _, row := range t.rows {
		safe := make([]string, len(row))
		for i, c := range row {
			safe[i] = cell(c)
		}
		_ = cw.Write(safe)
	}
	cw.Flush()
}

// cell defuses spreadsheet formulas: referrers and titles come from the
// outside world, and a cell starting with = + - @ (or a tab or carriage
// return) would run as a formula when the file is opened. Numbers are
// left alone.
func cell(s string) string {
	if s == "" {
		return s
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// prevCell is the comparison figure, or "" without one.
func prevCell(p *float64) string {
	if p == nil {
		return ""
	}
	return ftoa(*p)
}

// change is the relative change in percent, or "" when it has none.
func change(cur float64, prev *float64) string {
	if prev == nil || *prev == 0 {
		return ""
	}
	return strconv.FormatFloat((cur / *prev - 1)*100, 'f', 1, 64)
}

func seriesTable(s Summary) table {
	t := table{header: []string{"time", "views", "downloads", "viewers_approx", "bytes", "sites", "prev_time", "prev_views", "prev_downloads"}}
	for i, p := range s.Series {
		row := []string{p.T.Format(time.RFC3339), itoa(p.Views), itoa(p.Downloads), itoa(p.Viewers), itoa(p.Bytes), itoa(p.Sites), "", "", ""}
		if i < len(s.Prev) {
			q := s.Prev[i]
			row[6], row[7], row[8] = q.T.Format(time.RFC3339), itoa(q.Views), itoa(q.Downloads)
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// countTable is the usual shape: a key, the count and the comparison.
func countTable(keyName string, rows []Count) table {
	t := table{header: []string{keyName, "count", "prev_count", "change_pct"}}
	for _, r := range rows {
		t.rows = append(t.rows, []string{r.Key, ftoa(r.Cur), prevCell(r.Prev), change(r.Cur, r.Prev)})
	}
	return t
}
