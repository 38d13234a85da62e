package leanstorage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/fnhq/fn/store"
)

var errClientsNotAllowed = &Error{Status: http.StatusForbidden, Code: 119, Message: "That operation isn't allowed for clients."}

// scanCursor is where a scan left off: the last object's scan_key value and id.
type scanCursor struct {
	Key   string `json:"k,omitempty"`
	Value any    `json:"v,omitempty"`
	ID    string `json:"id"`
}

// scan serves GET /scan/classes/{class} (master key only): every matching object in pages of
// limit (≤ 1000) ordered by scan_key (objectId by default) with an opaque cursor; the last page
// answers cursor null.
func (s *Service) scan(ctx context.Context, class string, query url.Values, auth Auth) (*Response, error) {
	if !auth.Master {
		return nil, errClientsNotAllowed
	}
	if !classNameRE().MatchString(class) {
		return nil, apiErr(http.StatusBadRequest, 103, "Invalid class name: %s. Class names start with a letter and contain letters, digits and '_'.", class)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
	defer cancel()
	limit := 100
	if l := query.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return nil, apiErr(http.StatusBadRequest, 1, "Invalid limit %q: a scan takes 1 to 1000.", l)
		}
		limit = n
	}
	where := map[string]any{}
	if w := query.Get("where"); w != "" {
		if err := json.Unmarshal([]byte(w), &where); err != nil || where == nil {
			return nil, apiErr(http.StatusBadRequest, 107, "Invalid where: malformed JSON (%s).", shortErr(err))
		}
	}
	key := query.Get("scan_key")
	if key != "" && key != "objectId" && !keyNameRE().MatchString(key) {
		return nil, apiErr(http.StatusBadRequest, 105, "Invalid scan_key: %s.", key)
	}
	var after *scanCursor
	if c := query.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		after = &scanCursor{}
		if err != nil || json.Unmarshal(b, after) != nil || after.ID == "" || after.Key != key {
			return nil, apiErr(http.StatusBadRequest, 1, "Invalid cursor: it belongs to no scan of this class and scan_key.")
		}
	}
	m := s.newMatcher(ctx, nil, auth)
	objs, err := m.match(class, where)
	if err != nil {
		return nil, err
	}
	objs = append([]*store.Object(nil), objs...)
	value := func(o *store.Object) any {
		if key == "" || key == "objectId" {
			return nil
		}
		v, _ := lookupView(view{o: o}, key)
		return v
	}
	less := func(va any, ida string, vb any, idb string) bool {
		if c, ok := compare(va, vb); ok && c != 0 {
			return c < 0
		}
		if ca, cb := canon(va), canon(vb); ca != cb {
			return ca < cb
		}
		return ida < idb
	}
	sort.SliceStable(objs, func(i, j int) bool { return less(value(objs[i]), objs[i].ID, value(objs[j]), objs[j].ID) })
	start := 0
	if after != nil {
		start = sort.Search(len(objs), func(i int) bool { return less(after.Value, after.ID, value(objs[i]), objs[i].ID) })
	}
	page := objs[start:]
	var cursor any
	if len(page) > limit {
		page = page[:limit]
		last := page[len(page)-1]
		b, _ := json.Marshal(scanCursor{Key: key, Value: value(last), ID: last.ID})
		cursor = base64.RawURLEncoding.EncodeToString(b)
	}
	results := make([]map[string]any, len(page))
	for i, o := range page {
		results[i] = JSON(o)
	}
	if keys := query.Get("keys"); keys != "" {
		for i := range results {
			results[i] = selectKeys(results[i], strings.Split(keys, ","))
		}
	}
	return ok(map[string]any{"results": results, "cursor": cursor}), nil
}
