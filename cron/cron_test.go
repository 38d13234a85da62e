package cron

import (
	"math/rand"
	"strings"
	"testing"
	"time"
)

var shanghai = mustLoc("Asia/Shanghai")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

func at(loc *time.Location, s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc)
	if err != nil {
		panic(err)
	}
	return t
}

func fmtAll(ts []time.Time) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.Format("2006-01-02 15:04:05 Mon")
	}
	return strings.Join(parts, " | ")
}

// Every example of the seed's timer section ("定時任務"), and each special character of its table.
func TestSeedExamplesAndTable(t *testing.T) {
	cases := []struct {
		expr, from string
		want       []string
	}{
		// 每隔 5 分鐘執行一次
		{"0 0/5 * * * ?", "2026-03-02 10:03:00", []string{"2026-03-02 10:05:00 Mon", "2026-03-02 10:10:00 Mon", "2026-03-02 10:15:00 Mon"}},
		// 每次執行都在分鐘開始的 10 秒: 10:00:10、10:05:10
		{"10 0/5 * * * ?", "2026-03-02 09:59:30", []string{"2026-03-02 10:00:10 Mon", "2026-03-02 10:05:10 Mon", "2026-03-02 10:10:10 Mon"}},
		// 每周三和每周五的 10:30、11:30、12:30、13:30
		{"0 30 10-13 ? * WED,FRI", "2026-03-02 00:00:00", []string{"2026-03-04 10:30:00 Wed", "2026-03-04 11:30:00 Wed", "2026-03-04 12:30:00 Wed", "2026-03-04 13:30:00 Wed", "2026-03-06 10:30:00 Fri"}},
		// 每個月的 5 號和 20 號的 8:00、8:30、9:00 和 9:30
		{"0 0/30 8-9 5,20 * ?", "2026-03-01 00:00:00", []string{"2026-03-05 08:00:00 Thu", "2026-03-05 08:30:00 Thu", "2026-03-05 09:00:00 Thu", "2026-03-05 09:30:00 Thu", "2026-03-20 08:00:00 Fri"}},
		// 每周一早上 8 點
		{"0 0 8 ? * MON", "2026-03-02 08:00:00", []string{"2026-03-09 08:00:00 Mon", "2026-03-16 08:00:00 Mon"}},
		// names are case-insensitive
		{"0 0 8 ? * mon", "2026-03-02 08:00:00", []string{"2026-03-09 08:00:00 Mon"}},
		{"0 0 8 1 jan,Feb ?", "2026-01-01 09:00:00", []string{"2026-02-01 08:00:00 Sun", "2027-01-01 08:00:00 Fri"}},
		// 0/15 seconds: 0, 15, 30, 45; 5/15: 5, 20, 35, 50; */15 = 0/15
		{"0/15 * * * * ?", "2026-03-02 10:00:00", []string{"2026-03-02 10:00:15 Mon", "2026-03-02 10:00:30 Mon", "2026-03-02 10:00:45 Mon", "2026-03-02 10:01:00 Mon"}},
		{"5/15 * * * * ?", "2026-03-02 10:00:00", []string{"2026-03-02 10:00:05 Mon", "2026-03-02 10:00:20 Mon", "2026-03-02 10:00:35 Mon", "2026-03-02 10:00:50 Mon"}},
		{"*/15 * * * * ?", "2026-03-02 10:00:00", []string{"2026-03-02 10:00:15 Mon"}},
		// 1/3 in day-of-month: from the 1st, every 3 days
		{"0 0 0 1/3 * ?", "2026-03-01 00:00:00", []string{"2026-03-04 00:00:00 Wed", "2026-03-07 00:00:00 Sat", "2026-03-10 00:00:00 Tue"}},
		// 10-12 hours: 10, 11, 12
		{"0 0 10-12 * * ?", "2026-03-02 00:00:00", []string{"2026-03-02 10:00:00 Mon", "2026-03-02 11:00:00 Mon", "2026-03-02 12:00:00 Mon", "2026-03-03 10:00:00 Tue"}},
		// MON,WED,FRI
		{"0 0 9 ? * MON,WED,FRI", "2026-03-02 10:00:00", []string{"2026-03-04 09:00:00 Wed", "2026-03-06 09:00:00 Fri", "2026-03-09 09:00:00 Mon"}},
		// L in day-of-month: the last day (Jan 31, Feb 28 in a common year)
		{"0 0 0 L * ?", "2027-01-15 00:00:00", []string{"2027-01-31 00:00:00 Sun", "2027-02-28 00:00:00 Sun", "2027-03-31 00:00:00 Wed"}},
		// L alone in day-of-week = 7 = SAT
		{"0 0 0 ? * L", "2026-03-02 00:00:00", []string{"2026-03-07 00:00:00 Sat", "2026-03-14 00:00:00 Sat"}},
		// 6L: the last Friday of the month
		{"0 0 0 ? * 6L", "2026-03-01 00:00:00", []string{"2026-03-27 00:00:00 Fri", "2026-04-24 00:00:00 Fri", "2026-05-29 00:00:00 Fri"}},
		// 15W: the weekday nearest the 15th (15 Aug 2026 is a Saturday → Fri 14th; 15 Nov 2026 a Sunday → Mon 16th)
		{"0 0 0 15W * ?", "2026-08-01 00:00:00", []string{"2026-08-14 00:00:00 Fri", "2026-09-15 00:00:00 Tue", "2026-10-15 00:00:00 Thu", "2026-11-16 00:00:00 Mon"}},
		// 1W when the 1st is a Saturday: Monday the 3rd, never the previous month (1 Aug 2026 is a Saturday)
		{"0 0 0 1W * ?", "2026-07-15 00:00:00", []string{"2026-08-03 00:00:00 Mon", "2026-09-01 00:00:00 Tue"}},
		// LW: the last weekday of the month (31 Jan 2026 is a Saturday → Fri 30th)
		{"0 0 0 LW * ?", "2026-01-01 00:00:00", []string{"2026-01-30 00:00:00 Fri", "2026-02-27 00:00:00 Fri", "2026-03-31 00:00:00 Tue"}},
		// 6#3: the third Friday; 2#1: the first Monday; 4#5: the fifth Wednesday, skipped in months without one
		{"0 0 0 ? * 6#3", "2026-03-01 00:00:00", []string{"2026-03-20 00:00:00 Fri", "2026-04-17 00:00:00 Fri"}},
		{"0 0 0 ? * 2#1", "2026-03-01 00:00:00", []string{"2026-03-02 00:00:00 Mon", "2026-04-06 00:00:00 Mon"}},
		{"0 0 0 ? * 4#5", "2026-01-01 00:00:00", []string{"2026-04-29 00:00:00 Wed", "2026-07-29 00:00:00 Wed", "2026-09-30 00:00:00 Wed"}},
		// L-3: three days before the last day
		{"0 0 0 L-3 * ?", "2026-02-01 00:00:00", []string{"2026-02-25 00:00:00 Wed", "2026-03-28 00:00:00 Sat"}},
		// Feb 29 only exists in leap years
		{"0 0 0 29 2 ?", "2026-01-01 00:00:00", []string{"2028-02-29 00:00:00 Tue", "2032-02-29 00:00:00 Sun"}},
		// L in February of a leap year is the 29th
		{"0 0 0 L 2 ?", "2027-03-01 00:00:00", []string{"2028-02-29 00:00:00 Tue", "2029-02-28 00:00:00 Wed"}},
		// W at the end of a month: 31W in a month whose 31st is a Sunday → Friday 29th (May 31 2026 is a Sunday)
		{"0 0 0 31W * ?", "2026-05-01 00:00:00", []string{"2026-05-29 00:00:00 Fri", "2026-07-31 00:00:00 Fri"}},
		// the optional year, with a range
		{"0 0 12 1 1 ? 2027-2028", "2026-06-01 00:00:00", []string{"2027-01-01 12:00:00 Fri", "2028-01-01 12:00:00 Sat"}},
		{"0 0 12 1 1 ? 2030", "2026-06-01 00:00:00", []string{"2030-01-01 12:00:00 Tue"}},
		// wrapping ranges
		{"0 0 0 ? * FRI-MON", "2026-03-02 00:00:00", []string{"2026-03-06 00:00:00 Fri", "2026-03-07 00:00:00 Sat", "2026-03-08 00:00:00 Sun", "2026-03-09 00:00:00 Mon"}},
		{"0 0 22-1 2 3 ?", "2026-03-01 00:00:00", []string{"2026-03-02 00:00:00 Mon", "2026-03-02 01:00:00 Mon", "2026-03-02 22:00:00 Mon", "2026-03-02 23:00:00 Mon"}},
	}
	for _, c := range cases {
		e, err := Parse(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		got := e.NextN(at(shanghai, c.from), shanghai, len(c.want))
		if fmtAll(got) != strings.Join(c.want, " | ") {
			t.Errorf("%s from %s:\n got %s\nwant %s", c.expr, c.from, fmtAll(got), strings.Join(c.want, " | "))
		}
	}
}

func TestNoFireTimeLeft(t *testing.T) {
	e := MustParse("0 0 0 1 1 ? 2020")
	if got := e.Next(at(time.UTC, "2026-01-01 00:00:00"), time.UTC); !got.IsZero() {
		t.Fatalf("a past year should never fire, got %v", got)
	}
	e = MustParse("0 0 0 30 2 ?")
	if got := e.Next(at(time.UTC, "2026-01-01 00:00:00"), time.UTC); !got.IsZero() {
		t.Fatalf("February 30th never comes, got %v", got)
	}
}

func TestDaylightSaving(t *testing.T) {
	ny := mustLoc("America/New_York")
	// 8 March 2026, 02:00 → 03:00: 02:30 does not exist and does not fire.
	e := MustParse("0 30 2 * * ?")
	got := e.NextN(at(ny, "2026-03-07 12:00:00"), ny, 3)
	if fmtAll(got) != "2026-03-07 02:30:00 Sat | 2026-03-09 02:30:00 Mon | 2026-03-10 02:30:00 Tue" &&
		fmtAll(got) != "2026-03-09 02:30:00 Mon | 2026-03-10 02:30:00 Tue | 2026-03-11 02:30:00 Wed" {
		t.Errorf("spring gap: %s", fmtAll(got))
	}
	if got[0].Day() == 8 {
		t.Error("02:30 on the spring-forward day must not fire")
	}
	// 1 November 2026, 02:00 → 01:00: 01:30 happens twice and fires once.
	e = MustParse("0 30 1 * * ?")
	got = e.NextN(at(ny, "2026-10-31 12:00:00"), ny, 3)
	if len(got) != 3 || got[0].Day() != 1 || got[1].Day() != 2 || got[2].Day() != 3 {
		t.Errorf("autumn repeat fired twice or not at all: %s", fmtAll(got))
	}
	// an every-10-minutes expression through the autumn hour: strictly increasing, no duplicates
	e = MustParse("0 0/10 * * * ?")
	prev := at(ny, "2026-11-01 00:00:00")
	for i := 0; i < 30; i++ {
		n := e.Next(prev, ny)
		if !n.After(prev) {
			t.Fatalf("not increasing: %v then %v", prev, n)
		}
		prev = n
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ expr, want string }{
		{"0 0 * * *", "has 6 or 7 fields"},
		{"0 0 0 * * ? 2030 x", "has 6 or 7 fields"},
		{"60 * * * * ?", `second field "60": 60 is out of range 0–59`},
		{"0 61 * * * ?", `minute field "61": 61 is out of range 0–59`},
		{"0 0 24 * * ?", `hour field "24": 24 is out of range 0–23`},
		{"0 0 0 32 * ?", `day-of-month field "32": 32 is out of range 1–31`},
		{"0 0 0 ? 13 *", `month field "13": 13 is out of range 1–12`},
		{"0 0 0 ? * 8", `day-of-week field "8": 8 is out of range 1–7`},
		{"0 0 0 1 * ? 1969", `year field "1969": 1969 is out of range 1970–2099`},
		{"0 0 0 1 * ? 2100", `year field "2100": 2100 is out of range 1970–2099`},
		{"0 0 0 ? * ?", "'?' cannot be in both day-of-month and day-of-week"},
		{"0 0 0 * * *", "use '?' in exactly one of day-of-month and day-of-week"},
		{"0 0 0 1 * MON", "use '?' in exactly one of day-of-month and day-of-week"},
		{"? 0 0 1 * ?", "'?' is only allowed in day-of-month and day-of-week"},
		{"0 0 0 ? * 1,2L", `day-of-week field "1,2L": L takes a single weekday before it`},
		{"0 0 0 ? * 1-2L", `day-of-week field "1-2L": L takes a single weekday before it`},
		{"0 0 0 1,2L * ?", `day-of-month field "1,2L": L cannot be combined with a list or a range`},
		{"0 0 0 1-15W * ?", `day-of-month field "1-15W": W takes a single day`},
		{"0 0 0 1,15W * ?", `day-of-month field "1,15W": W takes a single day`},
		{"0 0 0 ? * 6#6", "the week after '#' must be 1–5"},
		{"0 0 0 ? * 1-2#3", "'#' takes a single weekday"},
		{"0 0 0 ? * FOO", `"FOO" is neither a number 1–7 nor a name`},
		{"0 0 0 ? XYZ *", `"XYZ" is neither a number 1–12 nor a name`},
		{"0/0 * * ? * *", "the step after '/' must be a positive whole number"},
		{"0 0 0 L-40 * ?", "L-n needs n between 1 and 30"},
		{"a * * ? * *", `"a" is not a number`},
		{"0,,1 * * ? * *", "empty list item"},
	}
	for _, c := range cases {
		_, err := Parse(c.expr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.expr, err, c.want)
		}
	}
}

// Property: every computed fire time matches the expression, and no matching second between
// the start and it was skipped.
func TestPropertyNextIsTheFirstMatch(t *testing.T) {
	r := rand.New(rand.NewSource(42))
	pick := func(opts ...string) string { return opts[r.Intn(len(opts))] }
	for i := 0; i < 300; i++ {
		expr := strings.Join([]string{
			pick("0", "*/10", "5/15", "0,30", "*", "10-12"),
			pick("*", "0/5", "0", "15,45", "50-10", "*/7"),
			pick("*", "0/6", "9-17", "23", "22-2"),
			pick("?", "L", "15W", "LW", "1/3", "*", "L-2", "1,15,31"),
			pick("*", "1/2", "FEB", "JAN-MAR", "11-2"),
			pick("?", "*", "MON-FRI", "6L", "2#1", "L", "SAT,SUN"),
		}, " ")
		e, err := Parse(expr)
		if err != nil {
			continue // both or neither '?': rejected as it should be
		}
		loc := pick3(r)
		from := time.Date(2026, time.Month(1+r.Intn(12)), 1+r.Intn(28), r.Intn(24), r.Intn(60), r.Intn(60), 0, loc)
		next := e.Next(from, loc)
		if next.IsZero() {
			continue
		}
		if !next.After(from) || !e.Matches(next, loc) {
			t.Fatalf("%s from %v: %v does not match or is not after the start", expr, from, next)
		}
		if next.Sub(from) <= 3*24*time.Hour {
			for s := from.Add(time.Second); s.Before(next); s = s.Add(time.Second) {
				if e.Matches(s, loc) {
					t.Fatalf("%s from %v: skipped %v before %v", expr, from, s, next)
				}
			}
		}
	}
}

func pick3(r *rand.Rand) *time.Location {
	return []*time.Location{time.UTC, shanghai, mustLoc("America/New_York")}[r.Intn(3)]
}
