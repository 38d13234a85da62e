package security

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkFaultStorm measures app B's latency (a LeanEngine function over HTTP) while app A's
// functions loop, run out of memory, exit and flood stdout without pause, against B's calm
// latency on the same server. Run with: go test ./security -run '^$' -bench FaultStorm -benchtime 200x
func BenchmarkFaultStorm(b *testing.B) {
	dir, err := os.MkdirTemp("", "fn-storm-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s := startServe(b, filepath.Join(dir, "data"), newFakeWeChat(b))
	appA := s.createApp("storma", "--wx-appid", "wxSec", "--wx-secret", "shh-app-secret")
	appB := s.createApp("stormb")
	s.mustDeploy(wxProject(b, "storma", map[string]string{"storm": wxStorm}, "  storm:\n    timeout: 2\n    memory: 128\n    maxInstances: 4\n"), "storma", "production")
	leanDir := leanProject(b, "stormb", leanCloud)
	if err := os.WriteFile(filepath.Join(leanDir, "probe.js"), []byte(probeJS), 0o644); err != nil {
		b.Fatal(err)
	}
	s.mustDeploy(leanDir, "stormb", "production")
	client := &http.Client{Timeout: 30 * time.Second}
	call := func() time.Duration {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/1.1/functions/hello", strings.NewReader(`{}`))
		req.Header.Set("X-LC-Id", appB.ID)
		req.Header.Set("X-LC-Key", appB.AppKey)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("app B answered %d", resp.StatusCode)
		}
		return time.Since(start)
	}
	p50 := func(n int) time.Duration {
		d := make([]time.Duration, n)
		for i := range d {
			d[i] = call()
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[n/2]
	}
	for i := 0; i < 20; i++ {
		call() // warm
	}
	b.ResetTimer()
	calm := p50(b.N)

	token := wxLogin(b, s, appA, "storm")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	modes := []string{"loop", "oom", "exit", "flood"}
	if m := os.Getenv("FN_STORM_MODES"); m != "" {
		modes = strings.Split(m, ",") // one kind of fault at a time, to see what costs B
	}
	for _, mode := range modes {
		wg.Add(1)
		go func(mode string) {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/wx/"+appA.ID+"/production/functions/storm", strings.NewReader(`{"mode":"`+mode+`"}`))
				req.Header.Set("Authorization", "Bearer "+token)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}(mode)
	}
	storm := p50(b.N)
	cancel()
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(calm.Microseconds())/1000, "calm-p50-ms")
	b.ReportMetric(float64(storm.Microseconds())/1000, "storm-p50-ms")
	b.ReportMetric(float64(storm)/float64(calm), "ratio")
	if storm > 2*calm {
		b.Errorf("app B's p50 went from %v calm to %v during app A's fault storm (more than 2×)", calm, storm)
	}
}
