package leanstorage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fnhq/fn/store"
)

// Leaderboards (/leaderboard/…, as AV.Leaderboard calls them): a leaderboard per statistic name
// with an order, an update strategy and a version that resets on an interval; users' values per
// version. Both live in classes clients cannot address. Ranks start at 0.

const (
	leaderboardClass = "_Leaderboard"
	statisticClass   = "_LeaderboardStatistic"
	maxStatistics    = 100 // per update request
)

// resetZone is where day, week and month boundaries fall: LeanCloud resets at midnight, China time.
var resetZone = time.FixedZone("UTC+8", 8*3600)

var leaderboardNameRE = classNameRE

type leaderboard struct {
	o *store.Object
}

func (l leaderboard) str(k, def string) string {
	if v, ok := l.o.Fields[k].(string); ok && v != "" {
		return v
	}
	return def
}

func (l leaderboard) version() int {
	v, _ := l.o.Fields["version"].(float64)
	return int(v)
}

func (l leaderboard) json() map[string]any {
	out := map[string]any{"statisticName": l.o.Fields["statisticName"], "order": l.str("order", "descending"),
		"updateStrategy": l.str("updateStrategy", "better"), "versionChangeInterval": l.str("versionChangeInterval", "week"),
		"version": l.version(), "createdAt": isoTime(l.o.CreatedAt), "updatedAt": isoTime(l.o.UpdatedAt), "objectId": l.o.ID}
	if e, ok := l.o.Fields["expiredAt"]; ok {
		out["expiredAt"] = e
	}
	return out
}

// nextReset is when a version that starts at t ends.
func nextReset(interval string, t time.Time) (time.Time, bool) {
	l := t.In(resetZone)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, resetZone)
	switch interval {
	case "day":
		return day.AddDate(0, 0, 1), true
	case "week":
		days := (8 - int(day.Weekday())) % 7
		if days == 0 {
			days = 7
		}
		return day.AddDate(0, 0, days), true // next Monday
	case "month":
		return time.Date(l.Year(), l.Month()+1, 1, 0, 0, 0, 0, resetZone), true
	}
	return time.Time{}, false
}

func validLeaderboardFields(fields map[string]any) error {
	check := func(k string, allowed ...string) error {
		v, has := fields[k]
		if !has || v == nil {
			return nil
		}
		s, _ := v.(string)
		for _, a := range allowed {
			if s == a {
				return nil
			}
		}
		return apiErr(http.StatusBadRequest, 1, "Invalid %s %v: one of %s.", k, v, strings.Join(allowed, ", "))
	}
	if err := check("order", "ascending", "descending"); err != nil {
		return err
	}
	if err := check("updateStrategy", "better", "last", "sum"); err != nil {
		return err
	}
	return check("versionChangeInterval", "never", "day", "week", "month")
}

func errNoLeaderboard(name string) *Error {
	return apiErr(http.StatusNotFound, 1, "Leaderboard %q not found.", name)
}

// getLeaderboard reads a leaderboard, moving it to a new version when its interval has passed.
func (s *Service) getLeaderboard(ctx context.Context, name string) (leaderboard, error) {
	all, err := s.st.Scan(ctx, leaderboardClass)
	if err != nil {
		return leaderboard{}, err
	}
	for _, o := range all {
		if o.Fields["statisticName"] == name {
			l := leaderboard{o}
			if exp, ok := asTime(o.Fields["expiredAt"]); ok && !s.opts.Now().Before(exp) {
				return s.incrementVersion(ctx, l)
			}
			return l, nil
		}
	}
	return leaderboard{}, errNoLeaderboard(name)
}

func (s *Service) incrementVersion(ctx context.Context, l leaderboard) (leaderboard, error) {
	o, err := s.st.Update(ctx, leaderboardClass, l.o.ID, func(o *store.Object) error {
		now := s.opts.Now()
		lb := leaderboard{o}
		started, ok := asTime(o.Fields["activatedAt"])
		if !ok {
			started = o.CreatedAt
		}
		archives, _ := o.Fields["archives"].([]any)
		archives = append(archives, map[string]any{"version": float64(lb.version()), "status": "completed", "url": "",
			"activatedAt": dateValue(started), "deactivatedAt": dateValue(now)})
		o.Fields["archives"] = archives
		o.Fields["version"] = float64(lb.version() + 1)
		o.Fields["activatedAt"] = dateValue(now)
		if next, ok := nextReset(lb.str("versionChangeInterval", "week"), now); ok {
			o.Fields["expiredAt"] = dateValue(next)
		}
		o.UpdatedAt = now
		return nil
	})
	return leaderboard{o}, err
}

// leaderboardRoute serves /leaderboard/…; parts start after "leaderboard".
func (s *Service) leaderboardRoute(ctx context.Context, method string, parts []string, query url.Values, body []byte, auth Auth) (*Response, error) {
	switch {
	case len(parts) == 3 && parts[0] == "users" && parts[2] == "statistics":
		return s.statistics(ctx, method, parts[1], query, body, auth)
	case len(parts) == 1 && parts[0] == "leaderboards" && method == http.MethodPost:
		return s.createLeaderboard(ctx, body, auth)
	case len(parts) >= 2 && parts[0] == "leaderboards":
		name := parts[1]
		if len(parts) == 2 && method == http.MethodGet {
			l, err := s.getLeaderboard(ctx, name)
			if err != nil {
				return nil, err
			}
			return ok(l.json()), nil
		}
		if len(parts) >= 3 && parts[2] == "ranks" && method == http.MethodGet && len(parts) <= 4 {
			around := ""
			if len(parts) == 4 {
				around = parts[3]
			}
			return s.ranks(ctx, name, around, query, auth)
		}
		if !auth.Master {
			return nil, errClientsNotAllowed
		}
		switch {
		case len(parts) == 2 && method == http.MethodPut:
			return s.updateLeaderboard(ctx, name, body)
		case len(parts) == 3 && parts[2] == "incrementVersion" && method == http.MethodPut:
			l, err := s.getLeaderboard(ctx, name)
			if err != nil {
				return nil, err
			}
			if l, err = s.incrementVersion(ctx, l); err != nil {
				return nil, err
			}
			return ok(l.json()), nil
		case len(parts) == 2 && method == http.MethodDelete:
			l, err := s.getLeaderboard(ctx, name)
			if err != nil {
				return nil, err
			}
			if err := s.deleteStatisticsWhere(ctx, func(o *store.Object) bool { return o.Fields["statisticName"] == name }); err != nil {
				return nil, err
			}
			if err := s.st.Delete(ctx, leaderboardClass, l.o.ID); err != nil {
				return nil, err
			}
			return ok(map[string]any{}), nil
		case len(parts) == 3 && parts[2] == "archives" && method == http.MethodGet:
			l, err := s.getLeaderboard(ctx, name)
			if err != nil {
				return nil, err
			}
			archives, _ := l.o.Fields["archives"].([]any)
			out := make([]any, 0, len(archives))
			for i := len(archives) - 1; i >= 0; i-- {
				a, _ := archives[i].(map[string]any)
				c := map[string]any{"statisticName": name}
				for k, v := range a {
					c[k] = v
				}
				out = append(out, c)
			}
			skip, limit := pageParams(query, 100)
			out = out[min(skip, len(out)):]
			out = out[:min(limit, len(out))]
			return ok(map[string]any{"results": out}), nil
		}
	}
	return nil, apiErr(http.StatusNotFound, 1, "no such API: %s /leaderboard/%s", method, strings.Join(parts, "/"))
}

func pageParams(query url.Values, defLimit int) (int, int) {
	skip, _ := strconv.Atoi(query.Get("skip"))
	limit := defLimit
	if l, err := strconv.Atoi(query.Get("limit")); err == nil && l >= 0 {
		limit = l
	}
	return max(skip, 0), min(limit, 1000)
}

func (s *Service) createLeaderboard(ctx context.Context, body []byte, auth Auth) (*Response, error) {
	if !auth.Master {
		return nil, errClientsNotAllowed
	}
	fields, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	name, _ := fields["statisticName"].(string)
	if !leaderboardNameRE().MatchString(name) {
		return nil, apiErr(http.StatusBadRequest, 1, "Invalid statisticName %q: it starts with a letter and contains letters, digits and '_'.", name)
	}
	if err := validLeaderboardFields(fields); err != nil {
		return nil, err
	}
	if _, err := s.getLeaderboard(ctx, name); err == nil {
		return nil, apiErr(http.StatusBadRequest, 137, "A unique field was given a value that is already taken: leaderboard %q exists.", name)
	}
	now := s.opts.Now()
	o := &store.Object{Class: leaderboardClass, ID: newID(), CreatedAt: now, UpdatedAt: now, Fields: map[string]any{
		"statisticName": name, "version": 0.0, "activatedAt": dateValue(now)}}
	for _, k := range []string{"order", "updateStrategy", "versionChangeInterval"} {
		if v, ok := fields[k].(string); ok {
			o.Fields[k] = v
		}
	}
	if next, ok := nextReset(leaderboard{o}.str("versionChangeInterval", "week"), now); ok {
		o.Fields["expiredAt"] = dateValue(next)
	}
	if err := s.st.Insert(ctx, o); err != nil {
		return nil, err
	}
	return ok(leaderboard{o}.json()), nil
}

func (s *Service) updateLeaderboard(ctx context.Context, name string, body []byte) (*Response, error) {
	fields, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	if err := validLeaderboardFields(fields); err != nil {
		return nil, err
	}
	l, err := s.getLeaderboard(ctx, name)
	if err != nil {
		return nil, err
	}
	o, err := s.st.Update(ctx, leaderboardClass, l.o.ID, func(o *store.Object) error {
		for _, k := range []string{"updateStrategy", "versionChangeInterval"} {
			if v, ok := fields[k].(string); ok {
				o.Fields[k] = v
			}
		}
		if v, ok := fields["versionChangeInterval"].(string); ok {
			start, ok := asTime(o.Fields["activatedAt"])
			if !ok {
				start = o.CreatedAt
			}
			if next, ok := nextReset(v, start); ok {
				o.Fields["expiredAt"] = dateValue(next)
			} else {
				delete(o.Fields, "expiredAt")
			}
		}
		o.UpdatedAt = s.opts.Now()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ok(leaderboard{o}.json()), nil
}

func statisticID(user, name string, version int) string {
	sum := sha256.Sum256([]byte(user + "\x00" + name + "\x00" + strconv.Itoa(version)))
	return hex.EncodeToString(sum[:12])
}

func statisticJSON(o *store.Object) map[string]any {
	return map[string]any{"statisticName": o.Fields["statisticName"], "statisticValue": o.Fields["statisticValue"], "version": o.Fields["version"]}
}

func (s *Service) deleteStatisticsWhere(ctx context.Context, pick func(*store.Object) bool) error {
	all, err := s.st.Scan(ctx, statisticClass)
	if err != nil {
		return err
	}
	var ids []string
	for _, o := range all {
		if pick(o) {
			ids = append(ids, o.ID)
		}
	}
	for _, id := range ids {
		if err := s.st.Delete(ctx, statisticClass, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// statistics serves GET/POST/DELETE /leaderboard/users/{id}/statistics.
func (s *Service) statistics(ctx context.Context, method, userID string, query url.Values, body []byte, auth Auth) (*Response, error) {
	names := map[string]bool{}
	for _, n := range strings.Split(query.Get("statistics"), ",") {
		if n != "" {
			names[n] = true
		}
	}
	if method == http.MethodGet {
		all, err := s.st.Scan(ctx, statisticClass)
		if err != nil {
			return nil, err
		}
		results := []map[string]any{}
		versions := map[string]int{}
		for _, o := range all {
			name, _ := o.Fields["statisticName"].(string)
			if o.Fields["user"] != userID || (len(names) > 0 && !names[name]) {
				continue
			}
			v, ok := versions[name]
			if !ok {
				l, err := s.getLeaderboard(ctx, name)
				if err != nil {
					continue // its leaderboard is gone
				}
				v = l.version()
				versions[name] = v
			}
			if ver, _ := o.Fields["version"].(float64); int(ver) == v {
				results = append(results, statisticJSON(o))
			}
		}
		return ok(map[string]any{"results": results}), nil
	}
	user, err := s.currentUser(ctx, auth)
	if err != nil {
		return nil, err
	}
	if !auth.Master && (user == nil || user.ID != userID) {
		return nil, apiErr(http.StatusForbidden, 206, "The user cannot be altered by a client without the session.")
	}
	if method == http.MethodDelete {
		if len(names) == 0 {
			return nil, apiErr(http.StatusBadRequest, 1, "statistics is missing: the names to delete, comma-separated.")
		}
		err := s.deleteStatisticsWhere(ctx, func(o *store.Object) bool {
			name, _ := o.Fields["statisticName"].(string)
			return o.Fields["user"] == userID && names[name]
		})
		if err != nil {
			return nil, err
		}
		return ok(map[string]any{}), nil
	}
	if method != http.MethodPost {
		return nil, apiErr(http.StatusNotFound, 1, "no such API: %s /leaderboard/users/%s/statistics", method, userID)
	}
	if _, err := s.st.Get(ctx, "_User", userID); errors.Is(err, store.ErrNotFound) {
		return nil, apiErr(http.StatusBadRequest, 211, "Could not find user.")
	}
	var updates []struct {
		Name  string   `json:"statisticName"`
		Value *float64 `json:"statisticValue"`
	}
	if err := json.Unmarshal(body, &updates); err != nil {
		return nil, apiErr(http.StatusBadRequest, 107, "Malformed json object: an array of {statisticName, statisticValue} is expected.")
	}
	if len(updates) > maxStatistics {
		return nil, apiErr(http.StatusBadRequest, 1, "At most %d statistics per update.", maxStatistics)
	}
	overwrite := query.Get("overwrite") == "1" && auth.Master
	results := []map[string]any{}
	for _, u := range updates {
		if u.Value == nil || math.IsNaN(*u.Value) || math.IsInf(*u.Value, 0) {
			return nil, apiErr(http.StatusBadRequest, 1, "Invalid statisticValue for %q: a number is expected.", u.Name)
		}
		l, err := s.getLeaderboard(ctx, u.Name)
		if err != nil {
			return nil, err
		}
		o, err := s.putStatistic(ctx, l, userID, *u.Value, overwrite)
		if err != nil {
			return nil, err
		}
		results = append(results, statisticJSON(o))
	}
	return ok(map[string]any{"results": results}), nil
}

// putStatistic applies the leaderboard's strategy to a user's value of the current version.
func (s *Service) putStatistic(ctx context.Context, l leaderboard, userID string, value float64, overwrite bool) (*store.Object, error) {
	name, _ := l.o.Fields["statisticName"].(string)
	version := l.version()
	id := statisticID(userID, name, version)
	now := s.opts.Now()
	o := &store.Object{Class: statisticClass, ID: id, CreatedAt: now, UpdatedAt: now, Fields: map[string]any{
		"user": userID, "statisticName": name, "version": float64(version), "statisticValue": value}}
	err := s.st.Insert(ctx, o)
	if err == nil {
		return o, nil
	}
	if !errors.Is(err, store.ErrDuplicate) {
		return nil, err
	}
	strategy, desc := l.str("updateStrategy", "better"), l.str("order", "descending") == "descending"
	return s.st.Update(ctx, statisticClass, id, func(o *store.Object) error {
		cur, _ := o.Fields["statisticValue"].(float64)
		next := value
		switch {
		case overwrite || strategy == "last":
		case strategy == "sum":
			next = cur + value
		case desc:
			next = math.Max(cur, value)
		default:
			next = math.Min(cur, value)
		}
		if next != cur {
			o.Fields["statisticValue"] = next
			o.UpdatedAt = now
		}
		return nil
	})
}

// ranks serves GET /leaderboard/leaderboards/{name}/ranks[/{user|self}].
func (s *Service) ranks(ctx context.Context, name, around string, query url.Values, auth Auth) (*Response, error) {
	l, err := s.getLeaderboard(ctx, name)
	if err != nil {
		return nil, err
	}
	version := l.version()
	if v := query.Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > version {
			return nil, apiErr(http.StatusBadRequest, 1, "Invalid version %q: 0 to %d.", v, version)
		}
		version = n
	}
	all, err := s.st.Scan(ctx, statisticClass)
	if err != nil {
		return nil, err
	}
	var rows []*store.Object
	for _, o := range all {
		if ver, _ := o.Fields["version"].(float64); o.Fields["statisticName"] == name && int(ver) == version {
			rows = append(rows, o)
		}
	}
	desc := l.str("order", "descending") == "descending"
	sort.SliceStable(rows, func(i, j int) bool {
		a, _ := rows[i].Fields["statisticValue"].(float64)
		b, _ := rows[j].Fields["statisticValue"].(float64)
		if a != b {
			return (a > b) == desc
		}
		return rows[i].UpdatedAt.Before(rows[j].UpdatedAt) // who got there first ranks higher
	})
	skip, limit := pageParams(query, 20)
	if around != "" {
		user, err := s.currentUser(ctx, auth)
		if err != nil {
			return nil, err
		}
		if around == "self" {
			if user == nil {
				return nil, apiErr(http.StatusBadRequest, 206, "The user cannot be altered by a client without the session.")
			}
			around = user.ID
		}
		pos := -1
		for i, o := range rows {
			if o.Fields["user"] == around {
				pos = i
				break
			}
		}
		if pos < 0 {
			return ok(map[string]any{"results": []any{}}), nil
		}
		skip = max(0, min(pos-limit/2, len(rows)-limit))
	}
	body := map[string]any{}
	if query.Get("count") == "1" {
		body["count"] = len(rows)
	}
	page := rows[min(skip, len(rows)):]
	page = page[:min(limit, len(page))]
	user, _ := s.currentUser(ctx, auth)
	userKeys := splitNonEmpty(query.Get("selectUserKeys"))
	includeStats := splitNonEmpty(query.Get("includeStatistics"))
	for _, n := range includeStats {
		// a statistic that has no leaderboard is refused, as LeanCloud does (the SDK's suite
		// expects includeStatistics: ['fake'] to fail)
		if _, err := s.getLeaderboard(ctx, n); err != nil {
			return nil, err
		}
	}
	includeUser := splitNonEmpty(query.Get("includeUser"))
	results := make([]map[string]any, len(page))
	for i, o := range page {
		uid, _ := o.Fields["user"].(string)
		u := userPointer(uid)
		if len(userKeys) > 0 {
			if uo, err := s.st.Get(ctx, "_User", uid); err == nil {
				full := s.present(ctx, uo, user, auth)
				for _, k := range userKeys {
					if v, ok := full[k]; ok {
						u[k] = v
					}
				}
				if len(includeUser) > 0 {
					s.include(ctx, []map[string]any{u}, includeUser, user, auth)
				}
			}
		}
		r := map[string]any{"statisticName": name, "statisticValue": o.Fields["statisticValue"], "rank": skip + i, "user": u}
		if len(includeStats) > 0 {
			stats := []map[string]any{}
			for _, other := range all {
				n, _ := other.Fields["statisticName"].(string)
				if other.Fields["user"] == uid && contains(includeStats, n) {
					ver, _ := other.Fields["version"].(float64)
					if ol, err := s.getLeaderboard(ctx, n); err == nil && int(ver) == ol.version() {
						stats = append(stats, statisticJSON(other))
					}
				}
			}
			r["statistics"] = stats
		}
		results[i] = r
	}
	body["results"] = results
	return ok(body), nil
}

func splitNonEmpty(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
