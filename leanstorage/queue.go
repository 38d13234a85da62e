package leanstorage

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/fnhq/fn/engine"
)

// The cloud queue (AV.Cloud.enqueue, POST /1.1/engine/cloud-queue/tasks, and
// AV.Cloud.getTaskInfo, GET /1.1/engine/cloud-queue/tasks/{uniqueId}) runs a cloud function
// outside the caller's request, with retries, and keeps its outcome for a while. The options
// and their defaults are LeanCloud's (leanengine's API.md): attempts (retries after a failed
// run) 1, backoff 60 s, delay 0, keepResult 5 min, timeout 15 s (also the maximum), deliveryMode
// atLeastOnce (a run that timed out is retried; atMostOnce: never), uniqueId up to 32
// characters (a random UUID by default; a task with the same uniqueId is refused while the
// first is queued or its result kept), notify (a cloud function called with the task's info
// when it is done). Tasks live in the service's memory: they survive redeploys of the app but
// not a restart of fn.

const (
	queueMaxTasks       = 10_000 // queued plus kept results, per service
	queueMaxConcurrent  = 4      // tasks running at once, per service
	queueMaxAttempts    = 10
	queueMaxWait        = 24 * time.Hour // bound of delay, backoff and keepResult
	queueMaxUniqueIDLen = 32
	queueMaxBody        = 1 << 20
	queueDefaultTimeout = 15 * time.Second
)

// queueTask is one enqueued call and what came of it.
type queueTask struct {
	id         string
	function   string
	params     json.RawMessage
	retries    int // left
	backoff    time.Duration
	timeout    time.Duration
	atMostOnce bool
	notify     string
	keepResult time.Duration

	status     string // queued, success, failed
	finishedAt time.Time
	statusCode int
	result     json.RawMessage
	errText    string
	retryAt    time.Time
	timer      *time.Timer
}

type cloudQueue struct {
	mu     sync.Mutex
	tasks  map[string]*queueTask
	sem    chan struct{}
	closed bool
}

func (s *Service) queue() *cloudQueue {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cq == nil {
		s.cq = &cloudQueue{tasks: map[string]*queueTask{}, sem: make(chan struct{}, queueMaxConcurrent)}
	}
	return s.cq
}

// Close stops the cloud queue: timers of waiting tasks are stopped, running ones finish.
func (s *Service) Close() {
	q := s.queue()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for _, t := range q.tasks {
		if t.timer != nil {
			t.timer.Stop()
		}
	}
}

func (s *Service) queueRoute(ctx context.Context, method string, parts []string, body []byte, auth Auth) (*Response, error) {
	switch {
	case len(parts) == 3 && method == http.MethodPost:
		return s.enqueue(body, auth)
	case len(parts) == 4 && method == http.MethodGet:
		return s.taskInfo(parts[3])
	}
	return nil, apiErr(http.StatusNotFound, 1, "no such API: %s /%s", method, strings.Join(parts, "/"))
}

// msOption reads a duration in milliseconds: absent → def; otherwise a number in [0, max].
func msOption(fields map[string]any, name string, def, max time.Duration) (time.Duration, error) {
	v, present := fields[name]
	if !present || v == nil {
		return def, nil
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || f < 0 || time.Duration(f)*time.Millisecond > max {
		return 0, apiErr(http.StatusBadRequest, 1, "Invalid %s: a number of milliseconds from 0 to %d is expected.", name, max.Milliseconds())
	}
	return time.Duration(f) * time.Millisecond, nil
}

func (s *Service) enqueue(body []byte, auth Auth) (*Response, error) {
	if !auth.Master {
		return nil, errClientsNotAllowed
	}
	if len(body) > queueMaxBody {
		return nil, apiErr(http.StatusRequestEntityTooLarge, 1, "The task is larger than %d bytes.", queueMaxBody)
	}
	fields, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	t := &queueTask{status: "queued"}
	t.function, _ = fields["function"].(string)
	if t.function == "" || len(t.function) > 128 || strings.ContainsAny(t.function, "/?#") {
		return nil, apiErr(http.StatusBadRequest, 1, "Invalid function: the name of a cloud function is expected.")
	}
	t.params = json.RawMessage("{}")
	if p, present := fields["params"]; present && p != nil {
		if _, isObj := p.(map[string]any); !isObj {
			return nil, apiErr(http.StatusBadRequest, 1, "Invalid params: a JSON object is expected.")
		}
		t.params, _ = json.Marshal(p)
	}
	t.retries = 1
	if v, present := fields["attempts"]; present && v != nil {
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) || f < 0 || f > queueMaxAttempts {
			return nil, apiErr(http.StatusBadRequest, 1, "Invalid attempts: an integer from 0 to %d is expected.", queueMaxAttempts)
		}
		t.retries = int(f)
	}
	if t.backoff, err = msOption(fields, "backoff", time.Minute, queueMaxWait); err != nil {
		return nil, err
	}
	delay, err := msOption(fields, "delay", 0, queueMaxWait)
	if err != nil {
		return nil, err
	}
	if t.keepResult, err = msOption(fields, "keepResult", 5*time.Minute, queueMaxWait); err != nil {
		return nil, err
	}
	if t.timeout, err = msOption(fields, "timeout", queueDefaultTimeout, queueDefaultTimeout); err != nil {
		return nil, err
	}
	if t.timeout == 0 {
		t.timeout = queueDefaultTimeout
	}
	switch m := fields["deliveryMode"]; m {
	case nil, "atLeastOnce":
	case "atMostOnce":
		t.atMostOnce = true
	default:
		return nil, apiErr(http.StatusBadRequest, 1, "Invalid deliveryMode: atLeastOnce or atMostOnce is expected.")
	}
	if v, present := fields["retryTimeout"]; present && v != nil {
		b, ok := v.(bool)
		if !ok {
			return nil, apiErr(http.StatusBadRequest, 1, "Invalid retryTimeout: a boolean is expected.")
		}
		t.atMostOnce = t.atMostOnce || !b
	}
	if v, present := fields["priority"]; present && v != nil {
		if _, ok := v.(float64); !ok {
			return nil, apiErr(http.StatusBadRequest, 1, "Invalid priority: a number is expected.")
		}
	}
	if v, present := fields["notify"]; present && v != nil {
		n, ok := v.(string)
		if !ok || n == "" || len(n) > 128 || strings.ContainsAny(n, "/?#") {
			return nil, apiErr(http.StatusBadRequest, 1, "Invalid notify: the name of a cloud function is expected.")
		}
		t.notify = n
	}
	t.id = uuid.NewString()
	if v, present := fields["uniqueId"]; present && v != nil {
		id, ok := v.(string)
		if !ok || id == "" || len(id) > queueMaxUniqueIDLen || strings.ContainsAny(id, "/?#%") {
			return nil, apiErr(http.StatusBadRequest, 1, "Invalid uniqueId: a string of 1 to %d characters without / ? # %% is expected.", queueMaxUniqueIDLen)
		}
		t.id = id
	}

	q := s.queue()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, apiErr(http.StatusServiceUnavailable, 1, "The cloud queue is stopped.")
	}
	if _, dup := q.tasks[t.id]; dup {
		return nil, apiErr(http.StatusBadRequest, 1, "A task with uniqueId '%s' is already in the queue.", t.id)
	}
	if len(q.tasks) >= queueMaxTasks {
		return nil, apiErr(http.StatusTooManyRequests, 1, "The cloud queue is full (%d tasks).", queueMaxTasks)
	}
	q.tasks[t.id] = t
	t.timer = time.AfterFunc(delay, func() { s.runTask(q, t) })
	return ok(map[string]any{"uniqueId": t.id}), nil
}

// runTask runs one attempt, records it, and schedules a retry or the result's expiry.
func (s *Service) runTask(q *cloudQueue, t *queueTask) {
	q.sem <- struct{}{}
	defer func() { <-q.sem }()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	fn, params, timeout := t.function, t.params, t.timeout
	q.mu.Unlock()

	var res *engine.LeanResult
	if s.hooks == nil {
		res = &engine.LeanResult{Status: http.StatusNotFound, Body: json.RawMessage(fmt.Sprintf(`{"code":1,"error":"No such cloud function '%s'"}`, fn))}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		res = s.hooks.InvokeLean(ctx, engine.LeanRequest{Kind: engine.LeanFunction, Name: fn, Params: params, Master: true,
			RequestID: engine.NewRequestID(), Timeout: timeout, URL: "/1.1/functions/" + fn})
		cancel()
	}
	var body struct {
		Result json.RawMessage `json:"result"`
		Code   int             `json:"code"`
		Error  string          `json:"error"`
	}
	json.Unmarshal(res.Body, &body)
	timedOut := res.Status == http.StatusServiceUnavailable && body.Code == 124

	q.mu.Lock()
	t.finishedAt = s.opts.Now()
	t.statusCode = res.Status
	t.retryAt = time.Time{}
	var info map[string]any
	if res.Status == http.StatusOK {
		t.status, t.result, t.errText = "success", body.Result, ""
	} else {
		t.status, t.result = "failed", nil
		t.errText = body.Error
		if t.errText == "" {
			t.errText = strings.TrimSpace(string(res.Body))
		}
		if t.retries > 0 && !(timedOut && t.atMostOnce) && !q.closed {
			t.retries--
			t.retryAt = t.finishedAt.Add(t.backoff)
			t.timer = time.AfterFunc(t.backoff, func() { s.runTask(q, t) })
			s.log("warn", fmt.Sprintf("cloud queue: task %s (%s) failed with %d: %s; retry at %s", t.id, fn, res.Status, t.errText, isoTime(t.retryAt)))
			q.mu.Unlock()
			return
		}
	}
	if t.status == "failed" {
		s.log("error", fmt.Sprintf("cloud queue: task %s (%s) failed with %d: %s", t.id, fn, res.Status, t.errText))
	}
	if !q.closed {
		t.timer = time.AfterFunc(t.keepResult, func() {
			q.mu.Lock()
			delete(q.tasks, t.id)
			q.mu.Unlock()
		})
	}
	info = t.infoLocked()
	notify := t.notify
	q.mu.Unlock()

	if notify != "" && s.hooks != nil {
		p, _ := json.Marshal(info)
		ctx, cancel := context.WithTimeout(context.Background(), queueDefaultTimeout)
		nres := s.hooks.InvokeLean(ctx, engine.LeanRequest{Kind: engine.LeanFunction, Name: notify, Params: p, Master: true,
			RequestID: engine.NewRequestID(), Timeout: queueDefaultTimeout, URL: "/1.1/functions/" + notify})
		cancel()
		if nres.Status != http.StatusOK {
			s.log("error", fmt.Sprintf("cloud queue: notify %s of task %s answered %d: %s", notify, t.id, nres.Status, strings.TrimSpace(string(nres.Body))))
		}
	}
}

// infoLocked is the task as getTaskInfo answers it (q.mu held).
func (t *queueTask) infoLocked() map[string]any {
	info := map[string]any{"uniqueId": t.id, "status": t.status}
	if t.finishedAt.IsZero() {
		return info
	}
	info["finishedAt"] = isoTime(t.finishedAt)
	info["statusCode"] = t.statusCode
	if t.status == "success" {
		if len(t.result) > 0 {
			info["result"] = t.result
		} else {
			info["result"] = nil
		}
	} else {
		info["error"] = t.errText
	}
	if !t.retryAt.IsZero() {
		info["retryAt"] = isoTime(t.retryAt)
	}
	return info
}

func (s *Service) taskInfo(id string) (*Response, error) {
	q := s.queue()
	q.mu.Lock()
	defer q.mu.Unlock()
	t, found := q.tasks[id]
	if !found {
		return nil, apiErr(http.StatusNotFound, 1, "Task '%s' not found: it was never enqueued, or its result is no longer kept.", id)
	}
	return ok(t.infoLocked()), nil
}
