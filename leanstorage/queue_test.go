package leanstorage

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/store"
)

// queueHooks is cloud code for the queue: "flaky" fails (500) until it has run failUntil
// times, "slow" times out as the engine answers it, "echo" answers its params, "notified"
// records what it is called with.
type queueHooks struct {
	mu        sync.Mutex
	runs      map[string]int
	failUntil int
	notified  []map[string]any
	masters   []bool
}

func (h *queueHooks) Functions() []string { return []string{"flaky", "slow", "echo", "notified"} }

func (h *queueHooks) InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.runs[req.Name]++
	h.masters = append(h.masters, req.Master)
	switch req.Name {
	case "flaky":
		if h.runs["flaky"] <= h.failUntil {
			return &engine.LeanResult{Status: 500, Body: json.RawMessage(fmt.Sprintf(`{"code":1,"error":"boom %d"}`, h.runs["flaky"]))}
		}
		return &engine.LeanResult{Status: 200, Body: json.RawMessage(`{"result":{"ok":true}}`)}
	case "slow":
		return &engine.LeanResult{Status: 503, Body: engine.LeanTimeoutBody}
	case "echo":
		return &engine.LeanResult{Status: 200, Body: json.RawMessage(`{"result":` + string(req.Params) + `}`)}
	case "notified":
		var m map[string]any
		json.Unmarshal(req.Params, &m)
		h.notified = append(h.notified, m)
		return &engine.LeanResult{Status: 200, Body: json.RawMessage(`{"result":null}`)}
	}
	return &engine.LeanResult{Status: 404, Body: json.RawMessage(`{"code":1,"error":"No such cloud function '` + req.Name + `'"}`)}
}

func (h *queueHooks) count(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.runs[name]
}

func newQueueService(t *testing.T, h *queueHooks) *Service {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	s := NewWithOptions(st, h, nil, Options{})
	s.bcryptCost = bcrypt.MinCost
	t.Cleanup(func() { s.Close(); st.Close() })
	return s
}

func (s *Service) waitTask(t *testing.T, id string, done func(m map[string]any) bool) map[string]any {
	t.Helper()
	var last map[string]any
	testutil.Eventually(t, 10*time.Second, "task "+id, func() bool {
		_, last = s.do(t, "GET", "engine/cloud-queue/tasks/"+id, nil, "", Auth{})
		return done(last)
	})
	return last
}

func TestCloudQueueRetriesAndResults(t *testing.T) {
	t.Parallel()
	h := &queueHooks{runs: map[string]int{}, failUntil: 2}
	s := newQueueService(t, h)
	master := Auth{Master: true}

	// enqueue needs the master key
	if status, m := s.do(t, "POST", "engine/cloud-queue/tasks", nil, `{"function":"echo"}`, Auth{}); status != 403 || m["code"] != 119.0 {
		t.Errorf("enqueue without the master key: %d %v", status, m)
	}
	// the result of a success, with a generated 36-character uniqueId
	status, m := s.do(t, "POST", "engine/cloud-queue/tasks", nil, `{"function":"echo","params":{"n":7},"prod":0}`, master)
	id, _ := m["uniqueId"].(string)
	if status != 200 || len(id) != 36 {
		t.Fatalf("enqueue: %d %v", status, m)
	}
	info := s.waitTask(t, id, func(m map[string]any) bool { return m["status"] != "queued" })
	if info["status"] != "success" || info["statusCode"] != 200.0 || fmt.Sprint(info["result"]) != "map[n:7]" || info["finishedAt"] == nil {
		t.Errorf("echo task: %v", info)
	}

	// two failures, then success: attempts 2 retries twice, keeping the uniqueId
	_, m = s.do(t, "POST", "engine/cloud-queue/tasks", nil, `{"function":"flaky","attempts":2,"backoff":10,"uniqueId":"order-1","notify":"notified"}`, master)
	if m["uniqueId"] != "order-1" {
		t.Fatalf("enqueue with a uniqueId: %v", m)
	}
	if status, m := s.do(t, "POST", "engine/cloud-queue/tasks", nil, `{"function":"flaky","uniqueId":"order-1"}`, master); status != 400 || m["error"] != "A task with uniqueId 'order-1' is already in the queue." {
		t.Errorf("duplicate uniqueId: %d %v", status, m)
	}
	info = s.waitTask(t, "order-1", func(m map[string]any) bool { return m["status"] == "success" })
	if h.count("flaky") != 3 || info["retryAt"] != nil || info["error"] != nil {
		t.Errorf("flaky ran %d times, info %v", h.count("flaky"), info)
	}
	testutil.Eventually(t, 5*time.Second, "notify", func() bool { return h.count("notified") == 1 })
	h.mu.Lock()
	if n := h.notified[0]; n["uniqueId"] != "order-1" || n["status"] != "success" {
		t.Errorf("notify params: %v", n)
	}
	for i, m := range h.masters {
		if !m {
			t.Errorf("run %d without the master key", i)
		}
	}
	h.mu.Unlock()

	// out of retries: failed, with the last error; a failure waiting for its retry shows retryAt
	h2 := &queueHooks{runs: map[string]int{}, failUntil: 100}
	s2 := newQueueService(t, h2)
	_, m = s2.do(t, "POST", "engine/cloud-queue/tasks", nil, `{"function":"flaky","attempts":1,"backoff":60000}`, master)
	id = m["uniqueId"].(string)
	info = s2.waitTask(t, id, func(m map[string]any) bool { return m["status"] == "failed" })
	if info["retryAt"] == nil || info["error"] != "boom 1" || info["statusCode"] != 500.0 {
		t.Errorf("failure waiting for a retry: %v", info)
	}
	_, m = s2.do(t, "POST", "engine/cloud-queue/tasks", nil, `{"function":"flaky","attempts":0}`, master)
	id = m["uniqueId"].(string)
	info = s2.waitTask(t, id, func(m map[string]any) bool { return m["status"] == "failed" })
	if info["retryAt"] != nil || info["error"] != "boom 2" {
		t.Errorf("failure without retries: %v", info)
	}

	// a timeout is retried at least once by default, never with atMostOnce
	_, m = s2.do(t, "POST", "engine/cloud-queue/tasks", nil, `{"function":"slow","attempts":1,"backoff":0,"deliveryMode":"atMostOnce"}`, master)
	id = m["uniqueId"].(string)
	info = s2.waitTask(t, id, func(m map[string]any) bool { return m["status"] == "failed" })
	if h2.count("slow") != 1 || info["statusCode"] != 503.0 || info["error"] != "The request timed out on the server." {
		t.Errorf("atMostOnce timeout: ran %d, %v", h2.count("slow"), info)
	}
	_, m = s2.do(t, "POST", "engine/cloud-queue/tasks", nil, `{"function":"slow","attempts":1,"backoff":0}`, master)
	id = m["uniqueId"].(string)
	s2.waitTask(t, id, func(m map[string]any) bool { return m["status"] == "failed" && m["retryAt"] == nil })
	if h2.count("slow") != 3 {
		t.Errorf("atLeastOnce timeout ran %d times in all, want 3", h2.count("slow"))
	}

	// the kept result expires
	_, m = s2.do(t, "POST", "engine/cloud-queue/tasks", nil, `{"function":"echo","keepResult":0}`, master)
	id = m["uniqueId"].(string)
	testutil.Eventually(t, 5*time.Second, "expiry", func() bool {
		status, _ := s2.do(t, "GET", "engine/cloud-queue/tasks/"+id, nil, "", Auth{})
		return status == 404
	})
	if status, m := s2.do(t, "GET", "engine/cloud-queue/tasks/nope", nil, "", Auth{}); status != 404 || m["code"] != 1.0 {
		t.Errorf("unknown task: %d %v", status, m)
	}
}

// Bad input: a clear error and nothing queued.
func TestCloudQueueBadInput(t *testing.T) {
	t.Parallel()
	h := &queueHooks{runs: map[string]int{}}
	s := newQueueService(t, h)
	master := Auth{Master: true}
	for body, want := range map[string]string{
		`{}`:                                     "Invalid function: the name of a cloud function is expected.",
		`{"function":3}`:                         "Invalid function: the name of a cloud function is expected.",
		`{"function":"a/b"}`:                     "Invalid function: the name of a cloud function is expected.",
		`{"function":"echo","params":[1]}`:       "Invalid params: a JSON object is expected.",
		`{"function":"echo","attempts":1.5}`:     "Invalid attempts: an integer from 0 to 10 is expected.",
		`{"function":"echo","attempts":11}`:      "Invalid attempts: an integer from 0 to 10 is expected.",
		`{"function":"echo","backoff":-1}`:       "Invalid backoff: a number of milliseconds from 0 to 86400000 is expected.",
		`{"function":"echo","delay":"soon"}`:     "Invalid delay: a number of milliseconds from 0 to 86400000 is expected.",
		`{"function":"echo","timeout":60000}`:    "Invalid timeout: a number of milliseconds from 0 to 15000 is expected.",
		`{"function":"echo","deliveryMode":"x"}`: "Invalid deliveryMode: atLeastOnce or atMostOnce is expected.",
		`{"function":"echo","uniqueId":""}`:      "Invalid uniqueId: a string of 1 to 32 characters without / ? # % is expected.",
		`{"function":"echo","uniqueId":"` + fmt.Sprint(make([]int, 20)) + `"}`: "Invalid uniqueId: a string of 1 to 32 characters without / ? # % is expected.",
		`{"function":"echo","notify":7}`:                                       "Invalid notify: the name of a cloud function is expected.",
		`{"function":"echo","retryTimeout":"yes"}`:                             "Invalid retryTimeout: a boolean is expected.",
		`[1]`: "Malformed json object. A json dictionary is expected.",
	} {
		status, m := s.do(t, "POST", "engine/cloud-queue/tasks", nil, body, master)
		if status/100 != 4 || m["error"] != want {
			t.Errorf("%s: %d %v, want %q", body, status, m, want)
		}
	}
	q := s.queue()
	q.mu.Lock()
	n := len(q.tasks)
	q.mu.Unlock()
	if n != 0 || h.count("echo") != 0 {
		t.Errorf("bad input queued %d tasks", n)
	}
}

// beforeUpdateHooks is a beforeUpdate hook on Mark that sets byBeforeUpdate, and rewrites a
// title it is sent, as leanengine answers: the object's full JSON.
type beforeUpdateHooks struct{}

func (beforeUpdateHooks) Functions() []string { return []string{"__before_update_for_Mark"} }

func (beforeUpdateHooks) InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult {
	var body struct {
		Object map[string]any `json:"object"`
	}
	json.Unmarshal(req.Params, &body)
	o := body.Object
	o["byBeforeUpdate"] = true
	if o["title"] == "rude" {
		o["title"] = "polite"
	}
	delete(o, "_updatedKeys")
	b, _ := json.Marshal(o)
	return &engine.LeanResult{Status: 200, Body: b}
}

// What a beforeUpdate hook sets is saved with the update; an operation in the request stays
// the request's.
func TestBeforeUpdateChangesAreSaved(t *testing.T) {
	t.Parallel()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := NewWithOptions(st, beforeUpdateHooks{}, nil, Options{})
	_, o := s.do(t, "POST", "classes/Mark", nil, `{"title":"a","n":1}`, Auth{})
	id := o["objectId"].(string)
	if status, m := s.do(t, "PUT", "classes/Mark/"+id, nil, `{"title":"rude","n":{"__op":"Increment","amount":2}}`, Auth{}); status != 200 {
		t.Fatalf("update: %d %v", status, m)
	}
	_, got := s.do(t, "GET", "classes/Mark/"+id, nil, "", Auth{})
	if got["byBeforeUpdate"] != true || got["title"] != "polite" || got["n"] != 3.0 {
		t.Errorf("after the update: %v", got)
	}
	// through a batch too (AV.Object.saveAll)
	_, o2 := s.do(t, "POST", "classes/Mark", nil, `{"title":"b"}`, Auth{})
	id2 := o2["objectId"].(string)
	s.Serve(t.Context(), "POST", "batch", nil, []byte(`{"requests":[{"method":"PUT","path":"/1.1/classes/Mark/`+id2+`","body":{"title":"c"}}]}`), Auth{})
	if _, got := s.do(t, "GET", "classes/Mark/"+id2, nil, "", Auth{}); got["byBeforeUpdate"] != true || got["title"] != "c" {
		t.Errorf("after a batch update: %v", got)
	}
}
