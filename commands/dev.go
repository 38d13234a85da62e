package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/console"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/iostreams"
	"github.com/fnhq/fn/localrun"
	"github.com/fnhq/fn/nodejs"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/server"
)

type devOptions struct {
	f *Factory

	Host    string
	Port    int
	As      string
	Inspect string
	// hostChosen: --host (or FN_HOST) was given, so any Host header is answered
	hostChosen bool
	NoTimers   bool
	ResetData  bool
	HTTP       string
}

func newCmdDev(f *Factory, runF func(context.Context, *devOptions) error) *cobra.Command {
	opts := &devOptions{f: f}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the local emulator: HTTP API, hot reload and fake identities",
		Long: `Build the project, start its functions in Node.js workers and serve them over HTTP:

  wx    POST /wx/functions/{name}   (the body is the call's data; identity from fn.yaml, --as,
                                     or the X-Fn-Identity / X-WX-OPENID / X-WX-APPID / X-WX-UNIONID headers)
        POST /admin                 (where the real wx-server-sdk sends cloud.callFunction)
  lean  POST /1.1/functions/{name}, /1.1/call/{name} (and /1/), hooks, GET /__engine/1/ping,
        GET /1.1/functions/_ops/metadatas, with LeanCloud's X-LC-Id / X-LC-Key / X-LC-Sign auth

Every save is rebuilt and swapped in within milliseconds; requests that arrive meanwhile wait
for the new code. A build error is printed and the last good build keeps serving.
.fn/dev.json tells fn invoke and scripts where the server is. Ctrl-C stops it (twice: at once).`,
		Example: `  $ fn dev
  $ fn dev --port 0 --json            # a free port; NDJSON events on stdout
  $ fn dev --as bob
  $ fn dev --inspect                  # attach a debugger to the workers (first one on 9229)
  $ fn dev --inspect=login            # only login's workers, on 9229
  $ fn dev --http record              # keep functions' third-party HTTP in recordings/ …
  $ fn dev --http replay              # … and answer it from there offline
  $ curl -X POST localhost:3000/wx/functions/login -H 'X-Fn-Identity: bob' -d '{}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.hostChosen = cmd.Flags().Changed("host") // --host or FN_HOST
			// fn.yaml's dev: section sits under the flags and FN_* env: flag > env > fn.yaml > default
			if p, err := project.Load(f.Global.ProjectDir); err == nil {
				if err := f.layerProject(cmd, map[string]any{"port": p.Dev.Port, "host": p.Dev.Host}); err != nil {
					return err
				}
			}
			if opts.Port < 0 || opts.Port > 65535 {
				return usageErrorf("--port must be 0–65535, got %d", opts.Port)
			}
			if opts.HTTP != "live" && opts.HTTP != "record" && opts.HTTP != "replay" {
				return usageErrorf("--http: %q is not a mode: use live, record or replay", opts.HTTP)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDev(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&opts.Port, "port", "p", project.DefaultDevPort, "port to listen on (0 picks a free one; default: dev.port in fn.yaml, else 3000)")
	fl.StringVar(&opts.Host, "host", project.DefaultDevHost, "address to listen on (given, any Host header is answered; otherwise loopback names only)")
	fl.StringVar(&opts.As, "as", "", "default identity for wx calls (a name under identities in fn.yaml)")
	fl.StringVar(&opts.Inspect, "inspect", "", "pass the Node.js inspector to workers: `[NAME@][HOST:PORT]` (NAME: only that function; the first worker gets the address)")
	fl.Lookup("inspect").NoOptDefVal = "127.0.0.1:9229"
	fl.BoolVar(&opts.NoTimers, "no-timers", false, "do not run the timers of fn.yaml")
	fl.BoolVar(&opts.ResetData, "reset-data", false, "start with empty data: LeanStorage (.fn/data.db) or the wx cloud database and storage (.fn/wxdb.db, .fn/storage)")
	fl.StringVar(&opts.HTTP, "http", "live", "wx: functions' third-party HTTP requests go out (live), are recorded to recordings/<function>.jsonl (record) or answered from there offline (replay)")
	return cmd
}

func runDev(ctx context.Context, opts *devOptions) error {
	p, err := project.LoadEnv(opts.f.Global.ProjectDir, os.Getenv)
	if err != nil {
		return err
	}
	// a host other than loopback (--host, FN_HOST or fn.yaml) is the developer's choice of who
	// may reach fn dev: then any Host header is answered, otherwise loopback names only
	anyHost := opts.hostChosen || opts.Host != project.DefaultDevHost
	if _, _, err := p.Identity(opts.As); err != nil {
		return &UsageError{Err: fmt.Errorf("--as: %w", err)}
	}
	inspectOnly, inspectAddr, err := parseInspect(opts.Inspect)
	if err != nil {
		return err
	}
	node, err := nodejs.Find(ctx)
	if err != nil {
		return err
	}
	// Request-log lines are batched: one write per 10 ms instead of one per request, which
	// matters under load (a write to a terminal or pipe is a system call).
	out := newBatchWriter(opts.f.IO.Out, 10*time.Millisecond)
	errOut := newBatchWriter(opts.f.IO.ErrOut, 10*time.Millisecond)
	defer out.Close()
	defer errOut.Close()
	pr := &devPrinter{ios: opts.f.IO, out: out, errOut: errOut, cs: opts.f.IO.Colors(), json: opts.f.Global.JSON, verbose: opts.f.Global.Verbose, dir: p.Dir}
	err = localrun.RunDev(ctx, p, localrun.DevOptions{Node: node.Path, NodeVersion: node.Version, Host: opts.Host, Port: opts.Port,
		As: opts.As, Inspect: inspectAddr, InspectOnly: inspectOnly, NoTimers: opts.NoTimers, ResetData: opts.ResetData, HTTPMode: opts.HTTP,
		Events: pr, AnyHost: anyHost, Getenv: os.Getenv})
	var inUse *localrun.PortInUseError
	if errors.As(err, &inUse) {
		return withHint(err, "stop what uses it, pick another port with --port N, or use --port 0 for a free one")
	}
	if errors.Is(err, context.Canceled) && !opts.f.Global.JSON {
		fmt.Fprintln(opts.f.IO.ErrOut, pr.cs.Gray("fn dev stopped; every worker was shut down"))
	}
	return err
}

// devPrinter renders fn dev's events: coloured lines on stderr, or NDJSON on stdout with --json.
type devPrinter struct {
	ios     *iostreams.IOStreams
	out     io.Writer
	errOut  io.Writer
	cs      *iostreams.ColorScheme
	json    bool
	verbose bool
	dir     string
	dialect project.Dialect // the banner's, for what follows it
	mu      sync.Mutex
}

func (d *devPrinter) emit(event string, v any) {
	b, _ := json.Marshal(v)
	line := make([]byte, 0, len(b)+24)
	line = append(line, `{"event":`...)
	line = strconv.AppendQuote(line, event)
	if len(b) > 2 {
		line = append(line, ',')
		line = append(line, b[1:]...)
	} else {
		line = append(line, '}')
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.out.Write(append(line, '\n'))
}

func (d *devPrinter) Ready(info localrun.DevInfo) {
	if d.json {
		d.emit("ready", info)
		return
	}
	cs := d.cs
	w := d.errOut
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dialect = info.Dialect
	fmt.Fprintf(w, "%s %s · %s · %s %s\n", cs.Bold("fn dev"), info.Dialect, cs.Cyan(info.URL), cs.Gray(fmt.Sprintf("ready in %.0f ms", info.StartupMs)), "")
	fmt.Fprintf(w, "  %-10s %s\n", "console", cs.Cyan(info.URL+console.Path+"/"))
	if info.Detected {
		fmt.Fprintf(w, "  %-10s %s\n", "project", "LeanEngine project (no fn.yaml): run as it is")
	}
	if info.App != "" {
		fmt.Fprintf(w, "  %-10s %s %s\n", "process", info.App, cs.Gray("· its routes, functions and hooks run in this process"))
	}
	if info.Dialect == project.WX {
		fmt.Fprintf(w, "  %-10s %s\n", "functions", strings.Join(info.Functions, ", "))
		fmt.Fprintf(w, "  %-10s %s (%s) %s\n", "identity", info.Identity, info.IdentityOpen, cs.Gray("· per request: X-Fn-Identity or X-WX-OPENID/APPID/UNIONID"))
	} else if info.Keys != nil {
		note := "from fn.yaml"
		if info.KeysFrom != "fn.yaml" {
			note = "generated once, kept in .fn/keys.json"
		}
		if info.Detected {
			note = "from LEANCLOUD_APP_* variables, else kept in .fn/keys.json"
		}
		fmt.Fprintf(w, "  %-10s appId %s · appKey %s · masterKey %s %s\n", "app", info.Keys.AppID, info.Keys.AppKey, info.Keys.MasterKey, cs.Gray("("+note+")"))
	}
	for i, e := range info.Endpoints {
		label := ""
		if i == 0 {
			label = "endpoints"
		}
		fmt.Fprintf(w, "  %-10s %s\n", label, e)
	}
	if info.Inspector != "" {
		fmt.Fprintf(w, "  %-10s %s\n", "inspector", info.Inspector)
	}
	fmt.Fprintf(w, "  %s\n", cs.Gray("watching for changes · Ctrl-C to stop"))
}

// Loaded reports fn dev's first load, which finishes after the banner: only what did not load.
func (d *devPrinter) Loaded(info localrun.LoadInfo) {
	if d.json {
		d.emit("loaded", info)
		return
	}
	cs := d.cs
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case len(info.Failed) > 0:
		names := make([]string, 0, len(info.Failed))
		for n := range info.Failed {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(d.errOut, "%s %s did not load: %s\n", cs.FailureIcon(), n, info.Failed[n])
		}
	case info.LoadError != "":
		fmt.Fprintf(d.errOut, "%s %s\n", cs.FailureIcon(), info.LoadError)
	default:
		if d.dialect == project.Lean {
			fmt.Fprintf(d.errOut, "  %-10s %s %s\n", "functions", strings.Join(info.Functions, ", "), cs.Gray(fmt.Sprintf("· loaded in %.0f ms", info.LoadMs)))
		} else {
			fmt.Fprintf(d.errOut, "  %s\n", cs.Gray(fmt.Sprintf("functions loaded in %.0f ms", info.LoadMs)))
		}
	}
}

func (d *devPrinter) Reload(info localrun.ReloadInfo) {
	if d.json {
		d.emit("reload", info)
		return
	}
	what := strings.Join(info.Bundles, ", ")
	kind := "reloaded"
	if info.Full {
		kind = "restarted (configuration or dependencies changed)"
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if info.Fixed {
		fmt.Fprintf(d.errOut, "%s fixed: %s builds again, the new code is serving\n", d.cs.SuccessIcon(), shortList(info.Files, 3))
	}
	fmt.Fprintf(d.errOut, "%s %s → %s %s %s\n", d.cs.Cyan("↻"), shortList(info.Files, 3), what, kind,
		d.cs.Gray(fmt.Sprintf("(detect %.1f ms · build %.1f ms · load %.1f ms)", info.DetectMs, info.BuildMs, info.LoadMs)))
}

func (d *devPrinter) ReloadFailed(err error) {
	if d.json {
		d.emit("error", map[string]any{"error": formatError(err, false)})
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.errOut, "%s %s\n%s\n", d.cs.FailureIcon(), formatError(err, d.ios.ColorEnabled()), d.cs.Yellow("  still serving the last good build; save again to retry"))
}

func (d *devPrinter) Invocation(inv server.Invocation, logs []engine.Record) {
	if d.json {
		for _, r := range logs {
			d.emit("log", r)
		}
		d.emit("invocation", struct {
			server.Invocation
			DurationMs float64 `json:"durationMs"`
		}{inv, float64(inv.Duration.Microseconds()) / 1000})
		return
	}
	cs := d.cs
	status := cs.Green(fmt.Sprint(inv.Status))
	if !inv.OK {
		status = cs.Red(fmt.Sprint(inv.Status))
	}
	rid := inv.RequestID
	if len(rid) > 8 {
		rid = rid[:8]
	}
	line := fmt.Sprintf("%s %-4s %-20s %s %8s %s", cs.Gray(inv.Time.Format("15:04:05")), inv.Dialect, inv.Function, status,
		fmt.Sprintf("%.1fms", float64(inv.Duration.Microseconds())/1000), cs.Gray(rid))
	if inv.Identity != "" {
		line += " " + cs.Gray(inv.Identity)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintln(d.errOut, line)
	for _, r := range logs {
		d.logLine(d.errOut, r, "    ")
	}
	if inv.Error != "" {
		fmt.Fprintf(d.errOut, "    %s\n", cs.Red(inv.Error))
	}
}

func (d *devPrinter) Log(r engine.Record) {
	if d.json {
		d.emit("log", r)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.logLine(d.errOut, r, "  "+r.Function+" ")
}

func (d *devPrinter) logLine(w io.Writer, r engine.Record, prefix string) {
	level := fmt.Sprintf("%-5s", r.Level)
	switch r.Level {
	case "error":
		level = d.cs.Red(level)
	case "warn":
		level = d.cs.Yellow(level)
	default:
		level = d.cs.Gray(level)
	}
	msg := strings.ReplaceAll(r.Message, "\n", "\n"+prefix+"      ")
	fmt.Fprintf(w, "%s%s %s\n", prefix, level, msg)
}

func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}

// batchWriter collects writes and flushes them at most every interval (and on Close).
type batchWriter struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	timer *time.Timer
	every time.Duration
}

func newBatchWriter(w io.Writer, every time.Duration) *batchWriter {
	return &batchWriter{w: w, every: every}
}

func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if b.timer == nil {
		b.timer = time.AfterFunc(b.every, b.flush)
	}
	return len(p), nil
}

func (b *batchWriter) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) > 0 {
		b.w.Write(b.buf)
		b.buf = b.buf[:0]
	}
	b.timer = nil
}

// Close writes what is left.
func (b *batchWriter) Close() error {
	b.mu.Lock()
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
	b.flush()
	return nil
}

// parseInspect reads --inspect's [NAME@][HOST:PORT]: a bare NAME (no ':') is a function name on
// the default address.
func parseInspect(v string) (only, addr string, err error) {
	if v == "" {
		return "", "", nil
	}
	only, addr, found := strings.Cut(v, "@")
	if !found {
		if strings.Contains(v, ":") {
			only, addr = "", v
		} else {
			only, addr = v, ""
		}
	}
	if addr == "" {
		addr = "127.0.0.1:9229"
	}
	if _, port, perr := net.SplitHostPort(addr); perr != nil || port == "" {
		return "", "", usageErrorf("invalid --inspect %q: use [NAME@][HOST:PORT], e.g. login@127.0.0.1:9229", v)
	}
	return only, addr, nil
}
