// Package cron parses Quartz cron expressions, the syntax of LeanEngine and CloudBase timers:
//
//	<second> <minute> <hour> <day-of-month> <month> <day-of-week> [<year>]
//
// with , - * / ? L W # (LW, L-3, 6L, 6#3, 15W), month and weekday names in any case, day-of-week
// 1–7 = SUN–SAT, and the optional year 1970–2099. Next computes fire times in a time zone.
//
// Daylight saving: a local time that does not exist (the hour skipped in spring) does not fire;
// a local time that happens twice (the hour repeated in autumn) fires once, at its first occurrence.
package cron

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MinYear and MaxYear bound the year field and the search for fire times.
const (
	MinYear = 1970
	MaxYear = 2099
)

// Expression is a parsed cron expression.
type Expression struct {
	text    string
	seconds bitset // 0–59
	minutes bitset // 0–59
	hours   bitset // 0–23
	months  bitset // 1–12
	years   bitset // offset from MinYear; empty = any
	anyYear bool
	dom     dayOfMonth
	dow     dayOfWeek
}

type bitset [3]uint64 // enough for 0–191 (years use 0–129)

func (b *bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }
func (b *bitset) has(i int) bool { return i >= 0 && i < 192 && b[i/64]&(1<<(i%64)) != 0 }
func (b *bitset) empty() bool    { return b[0] == 0 && b[1] == 0 && b[2] == 0 }
func (b *bitset) next(i, max int) int { // smallest member >= i, or -1
	for ; i <= max; i++ {
		if b.has(i) {
			return i
		}
	}
	return -1
}

type dayOfMonth struct {
	any        bool   // '?'
	days       bitset // plain values
	last       bool   // L
	lastOffset int    // L-n
	lastWeek   bool   // LW
	nearest    int    // nW (0: none)
}

type dayOfWeek struct {
	any     bool   // '?'
	days    bitset // plain values, 1–7 (SUN=1)
	lastOf  int    // nL: the last weekday n of the month (0: none)
	nth     int    // n#k: weekday n ...
	nthWeek int    // ... in week k (1–5)
}

// Error is a problem in an expression: which field and what is wrong.
type Error struct {
	Expr  string
	Field string // "second", "minute", …, or "" for the whole expression
	Part  string // the offending part of that field
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	if e.Part != "" {
		return fmt.Sprintf("%s field %q: %s", e.Field, e.Part, e.Msg)
	}
	return fmt.Sprintf("%s field: %s", e.Field, e.Msg)
}

var fieldNames = []string{"second", "minute", "hour", "day-of-month", "month", "day-of-week", "year"}

var monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
var dayNames = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}

// Parse parses a Quartz cron expression.
func Parse(text string) (*Expression, error) {
	fields := strings.Fields(text)
	if len(fields) < 6 || len(fields) > 7 {
		return nil, &Error{Expr: text, Msg: fmt.Sprintf("a cron expression has 6 or 7 fields (second minute hour day-of-month month day-of-week [year]), got %d", len(fields))}
	}
	e := &Expression{text: strings.Join(fields, " ")}
	var err error
	if e.seconds, err = parseSet(text, 0, fields[0], 0, 59, nil); err != nil {
		return nil, err
	}
	if e.minutes, err = parseSet(text, 1, fields[1], 0, 59, nil); err != nil {
		return nil, err
	}
	if e.hours, err = parseSet(text, 2, fields[2], 0, 23, nil); err != nil {
		return nil, err
	}
	if e.dom, err = parseDOM(text, fields[3]); err != nil {
		return nil, err
	}
	if e.months, err = parseSet(text, 4, fields[4], 1, 12, monthNames); err != nil {
		return nil, err
	}
	if e.dow, err = parseDOW(text, fields[5]); err != nil {
		return nil, err
	}
	if e.dom.any == e.dow.any {
		msg := "use '?' in exactly one of day-of-month and day-of-week (e.g. \"0 0 8 ? * MON\" or \"0 0 8 1 * ?\")"
		if e.dom.any {
			msg = "'?' cannot be in both day-of-month and day-of-week: one of them must say which days"
		}
		return nil, &Error{Expr: text, Field: "day-of-week", Part: fields[5], Msg: msg}
	}
	e.anyYear = true
	if len(fields) == 7 {
		ys, err := parseSet(text, 6, fields[6], MinYear, MaxYear, nil)
		if err != nil {
			return nil, err
		}
		e.anyYear = false
		e.years = ys // stored as year-MinYear
	}
	return e, nil
}

// MustParse is Parse that panics (for tests and constants).
func MustParse(text string) *Expression {
	e, err := Parse(text)
	if err != nil {
		panic(err)
	}
	return e
}

// String returns the expression as parsed (fields separated by one space).
func (e *Expression) String() string { return e.text }

func fieldErr(expr string, idx int, part, format string, args ...any) error {
	return &Error{Expr: expr, Field: fieldNames[idx], Part: part, Msg: fmt.Sprintf(format, args...)}
}

// parseSet parses a field of plain values: * a a-b a/n a-b/n */n and lists of those. Years are
// stored offset by MinYear so that they fit the bitset.
func parseSet(expr string, idx int, field string, min, max int, names map[string]int) (bitset, error) {
	var b bitset
	offset := 0
	if idx == 6 {
		offset = MinYear
	}
	if field == "?" {
		return b, fieldErr(expr, idx, field, "'?' is only allowed in day-of-month and day-of-week")
	}
	for _, part := range strings.Split(field, ",") {
		if part == "" {
			return b, fieldErr(expr, idx, field, "empty list item")
		}
		lo, hi, step, err := parseRange(part, min, max, names)
		if err != nil {
			return b, fieldErr(expr, idx, part, "%s", err)
		}
		for _, v := range expand(lo, hi, step, min, max) {
			b.set(v - offset)
		}
	}
	return b, nil
}

// parseRange reads * | a | a-b | with an optional /step. Ranges may wrap (FRI-MON, 22-2).
func parseRange(part string, min, max int, names map[string]int) (lo, hi, step int, err error) {
	step = 1
	base := part
	if i := strings.Index(part, "/"); i >= 0 {
		base = part[:i]
		s, perr := strconv.Atoi(part[i+1:])
		if perr != nil || s <= 0 {
			return 0, 0, 0, fmt.Errorf("the step after '/' must be a positive whole number")
		}
		if s > max-min+1 && max-min+1 > 0 {
			return 0, 0, 0, fmt.Errorf("the step %d is larger than the field's range %d–%d", s, min, max)
		}
		step = s
		if base == "" {
			return 0, 0, 0, fmt.Errorf("'/' needs a start (e.g. 0/15 or */15)")
		}
	}
	switch {
	case base == "*":
		return min, max, step, nil
	case strings.Contains(base, "-"):
		a, b, _ := strings.Cut(base, "-")
		if lo, err = value(a, min, max, names); err != nil {
			return
		}
		if hi, err = value(b, min, max, names); err != nil {
			return
		}
		return lo, hi, step, nil
	default:
		if lo, err = value(base, min, max, names); err != nil {
			return
		}
		if strings.Contains(part, "/") {
			return lo, max, step, nil // a/n: from a to the end of the range
		}
		return lo, lo, step, nil
	}
}

func value(s string, min, max int, names map[string]int) (int, error) {
	if names != nil {
		if v, ok := names[strings.ToUpper(s)]; ok {
			return v, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		if names != nil {
			return 0, fmt.Errorf("%q is neither a number %d–%d nor a name", s, min, max)
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < min || v > max {
		return 0, fmt.Errorf("%d is out of range %d–%d", v, min, max)
	}
	return v, nil
}

// expand lists the values of lo-hi/step; a wrapping range (lo > hi) runs through max to min.
func expand(lo, hi, step, min, max int) []int {
	var out []int
	n := hi - lo
	if lo > hi {
		n = (max - lo) + (hi - min) + 1
	}
	for i := 0; i <= n; i += step {
		v := lo + i
		if v > max {
			v = v - max - 1 + min
		}
		out = append(out, v)
	}
	return out
}

func parseDOM(expr, field string) (dayOfMonth, error) {
	const idx = 3
	var d dayOfMonth
	up := strings.ToUpper(field)
	switch {
	case up == "?":
		d.any = true
		return d, nil
	case up == "L":
		d.last = true
		return d, nil
	case up == "LW":
		d.lastWeek = true
		return d, nil
	case strings.HasPrefix(up, "L-"):
		n, err := strconv.Atoi(up[2:])
		if err != nil || n < 1 || n > 30 {
			return d, fieldErr(expr, idx, field, "L-n needs n between 1 and 30 (days before the last day)")
		}
		d.last, d.lastOffset = true, n
		return d, nil
	case strings.HasSuffix(up, "W"):
		body := up[:len(up)-1]
		if strings.ContainsAny(body, ",-/*") {
			return d, fieldErr(expr, idx, field, "W takes a single day (e.g. 15W), not a list or a range")
		}
		n, err := strconv.Atoi(body)
		if err != nil || n < 1 || n > 31 {
			return d, fieldErr(expr, idx, field, "W needs a day 1–31 before it (e.g. 15W)")
		}
		d.nearest = n
		return d, nil
	}
	if strings.ContainsAny(up, "LW#") {
		if strings.Contains(up, "L") {
			return d, fieldErr(expr, idx, field, "L cannot be combined with a list or a range (use L, L-n or LW alone)")
		}
		if strings.Contains(up, "#") {
			return d, fieldErr(expr, idx, field, "'#' belongs in day-of-week (e.g. 6#3)")
		}
		return d, fieldErr(expr, idx, field, "W takes a single day (e.g. 15W), not a list or a range")
	}
	set, err := parseSet(expr, idx, field, 1, 31, nil)
	d.days = set
	return d, err
}

func parseDOW(expr, field string) (dayOfWeek, error) {
	const idx = 5
	var d dayOfWeek
	up := strings.ToUpper(field)
	switch {
	case up == "?":
		d.any = true
		return d, nil
	case up == "L":
		d.days.set(7) // L alone is Saturday, the last day of the week
		return d, nil
	case strings.Contains(up, "#"):
		a, b, _ := strings.Cut(up, "#")
		if strings.ContainsAny(a, ",-/*") {
			return d, fieldErr(expr, idx, field, "'#' takes a single weekday before it (e.g. 6#3), not a list or a range")
		}
		day, err := value(a, 1, 7, dayNames)
		if err != nil {
			return d, fieldErr(expr, idx, field, "%s", err)
		}
		k, err := strconv.Atoi(b)
		if err != nil || k < 1 || k > 5 {
			return d, fieldErr(expr, idx, field, "the week after '#' must be 1–5")
		}
		d.nth, d.nthWeek = day, k
		return d, nil
	case strings.HasSuffix(up, "L"):
		body := up[:len(up)-1]
		if strings.ContainsAny(body, ",-/*") {
			return d, fieldErr(expr, idx, field, "L takes a single weekday before it (e.g. 6L), not a list or a range")
		}
		day, err := value(body, 1, 7, dayNames)
		if err != nil {
			return d, fieldErr(expr, idx, field, "%s", err)
		}
		d.lastOf = day
		return d, nil
	}
	if strings.ContainsAny(up, "LW") && !containsName(up) {
		return d, fieldErr(expr, idx, field, "L cannot follow a list or a range (write e.g. 6L); W belongs in day-of-month")
	}
	set, err := parseSet(expr, idx, field, 1, 7, dayNames)
	d.days = set
	return d, err
}

// containsName reports whether s holds a weekday name (which may contain L or W letters: WED, TUE…).
func containsName(s string) bool {
	for name := range dayNames {
		if strings.Contains(s, name) {
			return true
		}
	}
	return false
}

// Next returns the first fire time strictly after t, in loc, or the zero time if there is none
// before the end of MaxYear.
func (e *Expression) Next(t time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	// start at the next whole second
	start := t.Truncate(time.Second).Add(time.Second)
	y, m, d := start.Date()
	first := true
	for day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC); day.Year() <= MaxYear; day = day.AddDate(0, 0, 1) {
		if !e.anyYear && !e.years.has(day.Year()-MinYear) {
			// jump to January 1st of the next allowed year
			ny := -1
			for yy := day.Year() + 1; yy <= MaxYear; yy++ {
				if e.years.has(yy - MinYear) {
					ny = yy
					break
				}
			}
			if ny < 0 {
				return time.Time{}
			}
			day = time.Date(ny, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
			first = false
			continue
		}
		if !e.months.has(int(day.Month())) {
			// jump to the first of the next month
			day = time.Date(day.Year(), day.Month()+1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
			first = false
			continue
		}
		if !e.dayMatches(day) {
			first = false
			continue
		}
		h0, mi0, s0 := 0, 0, 0
		if first {
			h0, mi0, s0 = start.Hour(), start.Minute(), start.Second()
		}
		if ft, ok := e.fireOn(day, loc, start, first, h0, mi0, s0); ok {
			return ft
		}
		first = false
	}
	return time.Time{}
}

// fireOn finds the first fire time on one calendar day that is not before start.
func (e *Expression) fireOn(day time.Time, loc *time.Location, start time.Time, first bool, h0, mi0, s0 int) (time.Time, bool) {
	for h := e.hours.next(h0, 23); h >= 0; h = e.hours.next(h+1, 23) {
		mStart := 0
		if first && h == h0 {
			mStart = mi0
		}
		for mi := e.minutes.next(mStart, 59); mi >= 0; mi = e.minutes.next(mi+1, 59) {
			sStart := 0
			if first && h == h0 && mi == mi0 {
				sStart = s0
			}
			for s := e.seconds.next(sStart, 59); s >= 0; s = e.seconds.next(s+1, 59) {
				ft := time.Date(day.Year(), day.Month(), day.Day(), h, mi, s, 0, loc)
				if ft.Hour() != h || ft.Minute() != mi || ft.Day() != day.Day() {
					continue // this local time does not exist (the DST gap)
				}
				if ft.Before(start) {
					continue // the repeated hour of a DST fall-back: only its first occurrence fires
				}
				return ft, true
			}
		}
	}
	return time.Time{}, false
}

func lastDay(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// quartzWeekday maps Go's Sunday=0 to Quartz's SUN=1.
func quartzWeekday(t time.Time) int { return int(t.Weekday()) + 1 }

func (e *Expression) dayMatches(day time.Time) bool {
	y, m, d := day.Date()
	last := lastDay(y, m)
	if !e.dom.any {
		switch {
		case e.dom.lastWeek:
			if d != lastWeekday(y, m, last) {
				return false
			}
		case e.dom.last:
			if d != last-e.dom.lastOffset {
				return false
			}
		case e.dom.nearest > 0:
			if e.dom.nearest > last || d != nearestWeekday(y, m, e.dom.nearest, last) {
				return false
			}
		default:
			if !e.dom.days.has(d) {
				return false
			}
		}
	}
	if !e.dow.any {
		wd := quartzWeekday(day)
		switch {
		case e.dow.lastOf > 0:
			if wd != e.dow.lastOf || d+7 <= last {
				return false
			}
		case e.dow.nth > 0:
			if wd != e.dow.nth || (d-1)/7+1 != e.dow.nthWeek {
				return false
			}
		default:
			if !e.dow.days.has(wd) {
				return false
			}
		}
	}
	return true
}

// lastWeekday is the last Monday–Friday of a month.
func lastWeekday(y int, m time.Month, last int) int {
	for d := last; d > 0; d-- {
		switch time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday() {
		case time.Saturday, time.Sunday:
			continue
		}
		return d
	}
	return last
}

// nearestWeekday is the Monday–Friday closest to day n, never crossing into another month.
func nearestWeekday(y int, m time.Month, n, last int) int {
	switch time.Date(y, m, n, 0, 0, 0, 0, time.UTC).Weekday() {
	case time.Saturday:
		if n == 1 {
			return 3 // Monday the 3rd: Friday would be last month
		}
		return n - 1
	case time.Sunday:
		if n == last {
			return n - 2 // Friday: Monday would be next month
		}
		return n + 1
	}
	return n
}

// NextN returns up to n fire times after t.
func (e *Expression) NextN(t time.Time, loc *time.Location, n int) []time.Time {
	var out []time.Time
	for len(out) < n {
		t = e.Next(t, loc)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// Matches reports whether a time (whole second) is a fire time of the expression in loc.
func (e *Expression) Matches(t time.Time, loc *time.Location) bool {
	t = t.In(loc)
	if t.Nanosecond() != 0 {
		return false
	}
	if !e.anyYear && !e.years.has(t.Year()-MinYear) {
		return false
	}
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return e.seconds.has(t.Second()) && e.minutes.has(t.Minute()) && e.hours.has(t.Hour()) &&
		e.months.has(int(t.Month())) && e.dayMatches(day)
}
