package commands

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/hosting"
	"github.com/fnhq/fn/nodejs"
	"github.com/fnhq/fn/sandbox"
)

type serveOptions struct {
	f              *Factory
	Listen         string
	DataDir        string
	AdminTokenFile string
	PublicURL      string
	WeChatAPI      string
	LogRetention   int
	AppConcurrency int
	// slow clients: http.Server timeouts and connections per client address
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxConnsPerIP     int
	// Sandbox: auto (confine workers where the kernel has Landlock), require, or off
	Sandbox string
	// AppUIDs: auto (a uid per app from sandbox.DefaultUIDs when root), off, or a range first-last
	AppUIDs string
	// Cgroups: auto (per-app cgroup v2 limits where fn's cgroup is delegated), require, or off
	Cgroups         string
	AppMemoryMax    int // MB
	AppPidsMax      int
	NodePermissions bool
	// DB is the PostgreSQL URL shared by several replicas (--db or FN_DB); "" is the embedded
	// SQLite backends under DataDir.
	DB string
	// Check validates the backends and exits instead of serving.
	Check bool
	// ShutdownDelay keeps serving (health answering 503) after SIGTERM, so that a load
	// balancer's probe takes the replica out before connections are refused.
	ShutdownDelay time.Duration
	// SDKDir holds the node_modules online editing builds against (leanengine).
	SDKDir string
}

func newCmdServe(f *Factory) *cobra.Command {
	opts := &serveOptions{f: f}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hosted runtime: apps, deploys, versions and logs, behind one HTTP port",
		Long: `Run the self-hosted runtime that replaces the cloud. Apps (fn apps create) get LeanCloud-style
keys and two environments (production, staging); fn deploy ships to it; clients call it as they
called LeanCloud (X-LC-Id, X-LC-Prod) or, for wx, under /wx/{app}/{env}/ with a token from the
wx.login exchange at POST /wx/{app}/login.

The first start prints an admin token once (only its hash is stored); give one instead with
FN_ADMIN_TOKEN or --admin-token-file. SIGTERM or Ctrl-C drain in-flight calls and stop workers.

With --db postgres://… (or FN_DB) every backend lives in PostgreSQL and any number of replicas
behind a load balancer share it: deploys, logs, timers (each fire runs once) and data are
cluster-wide; GET /__fn/health is the probe. See docs/scale-out.md.`,
		Example: `  $ fn serve --listen 127.0.0.1:8080 --data-dir /var/lib/fn
  $ FN_ADMIN_TOKEN=… fn serve --listen :8080 --public-url https://fn.example.com
  $ FN_ADMIN_TOKEN=… fn serve --listen :8080 --db postgres://fn:…@db/fn --shutdown-delay 10s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.LogRetention < 1 || opts.AppConcurrency < 1 {
				return usageErrorf("--log-retention and --app-concurrency must be at least 1")
			}
			if opts.ReadHeaderTimeout <= 0 || opts.ReadTimeout <= 0 || opts.WriteTimeout <= 0 || opts.IdleTimeout <= 0 {
				return usageErrorf("--read-header-timeout, --read-timeout, --write-timeout and --idle-timeout must be positive")
			}
			if opts.Sandbox != "auto" && opts.Sandbox != "require" && opts.Sandbox != "off" {
				return usageErrorf("--sandbox must be auto, require or off, got %q", opts.Sandbox)
			}
			if opts.Cgroups != "auto" && opts.Cgroups != "require" && opts.Cgroups != "off" {
				return usageErrorf("--cgroups must be auto, require or off, got %q", opts.Cgroups)
			}
			if opts.AppMemoryMax < 64 || opts.AppPidsMax < 16 {
				return usageErrorf("--app-memory-max must be at least 64 (MB) and --app-pids-max at least 16")
			}
			if opts.MaxConnsPerIP < 0 {
				return usageErrorf("--max-conns-per-ip must be 0 (no cap) or more, got %d", opts.MaxConnsPerIP)
			}
			if opts.DB == "" {
				opts.DB = os.Getenv("FN_DB")
			}
			if opts.DB != "" && !hosting.IsPostgresURL(opts.DB) {
				return usageErrorf("--db (or FN_DB) takes a postgres:// URL")
			}
			if opts.ShutdownDelay < 0 || opts.ShutdownDelay > 10*time.Minute {
				return usageErrorf("--shutdown-delay must be between 0 and 10m")
			}
			if opts.Check {
				return runServeCheck(cmd.Context(), opts)
			}
			return runServe(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Listen, "listen", "127.0.0.1:8080", "address to listen on")
	fl.StringVar(&opts.DataDir, "data-dir", "fn-data", "where apps, artifacts, data and logs live")
	fl.StringVar(&opts.AdminTokenFile, "admin-token-file", "", "read the admin token from this file")
	fl.StringVar(&opts.PublicURL, "public-url", "", "the URL clients and functions reach this server at (default: from --listen)")
	fl.StringVar(&opts.SDKDir, "sdk-dir", "", "a directory whose node_modules holds leanengine: online edits in the console deploy by building against it")
	fl.StringVar(&opts.WeChatAPI, "wechat-api", "https://api.weixin.qq.com", "WeChat API base URL (jscode2session)")
	fl.IntVar(&opts.LogRetention, "log-retention", 10000, "log records kept per app")
	fl.IntVar(&opts.AppConcurrency, "app-concurrency", 64, "in-flight invocations per app, so that one app cannot starve the others")
	fl.StringVar(&opts.Sandbox, "sandbox", "auto", "confine function workers with Landlock: auto (where the kernel has it), require (refuse to start without), off")
	fl.StringVar(&opts.AppUIDs, "app-uids", "auto", "run each app's workers as a uid of its own from this range (first-last) when fn serve runs as root; auto: "+sandbox.DefaultUIDs+" when root, off otherwise")
	fl.StringVar(&opts.Cgroups, "cgroups", "auto", "per-app cgroup v2 limits (memory, processes, CPU share): auto (where fn's cgroup is delegated), require, off")
	fl.IntVar(&opts.AppMemoryMax, "app-memory-max", 2048, "with cgroups: memory of all of one app's workers together, in MB")
	fl.IntVar(&opts.AppPidsMax, "app-pids-max", 1024, "with cgroups: processes and threads of one app's workers together")
	fl.BoolVar(&opts.NodePermissions, "node-permissions", false, "also run workers under Node's (experimental) permission model, same paths, when sandboxed: off by default, it refuses reads of deployed project trees")
	fl.DurationVar(&opts.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "time a client has to send a request's headers")
	fl.DurationVar(&opts.ReadTimeout, "read-timeout", 2*time.Minute, "time a client has to send a whole request, body included")
	fl.DurationVar(&opts.WriteTimeout, "write-timeout", 2*time.Minute, "time to answer a request, from the end of its headers (log follows excepted)")
	fl.DurationVar(&opts.IdleTimeout, "idle-timeout", time.Minute, "how long an idle keep-alive connection stays open")
	fl.IntVar(&opts.MaxConnsPerIP, "max-conns-per-ip", 256, "open connections one client address may hold (0: no cap; behind a proxy, cap at the proxy)")
	fl.StringVar(&opts.DB, "db", "", "PostgreSQL URL shared by several replicas (default: FN_DB, else embedded SQLite in --data-dir)")
	fl.BoolVar(&opts.Check, "check", false, "check that the database answers and its schema is current, then exit")
	fl.DurationVar(&opts.ShutdownDelay, "shutdown-delay", 0, "after SIGTERM, keep serving this long with the health check failing, so load balancers stop sending first")
	return cmd
}

func runServe(ctx context.Context, opts *serveOptions) error {
	node, err := nodejs.Find(ctx)
	if err != nil {
		return err
	}
	ios := opts.f.IO
	if fi, err := os.Stat(opts.DataDir); err == nil && fi.Mode().Perm()&0o066 != 0 && runtime.GOOS != "windows" {
		// hosting narrows it; say so, since it was readable by others until now
		fmt.Fprintf(ios.ErrOut, "warning: data directory %s was %04o (readable by other users); fn serve narrows it and everything in it to its owner (0700 directories, 0600 files)\n",
			opts.DataDir, fi.Mode().Perm())
	}
	token := os.Getenv("FN_ADMIN_TOKEN")
	if opts.AdminTokenFile != "" {
		b, err := os.ReadFile(opts.AdminTokenFile)
		if err != nil {
			return &UsageError{Err: fmt.Errorf("--admin-token-file: %w", err)}
		}
		token = strings.TrimSpace(string(b))
	}
	var confine *sandbox.Options
	status := sandbox.Check()
	switch {
	case opts.Sandbox == "off":
		status = sandbox.Status{Reason: "--sandbox off; functions can read and write whatever fn's user can"}
	case status.Enforced:
		confine = &sandbox.Options{NodePermissions: opts.NodePermissions}
	case opts.Sandbox == "require":
		return withHint(fmt.Errorf("--sandbox require: workers cannot be confined here: %s", status.Reason),
			"run on Linux 5.13+ with Landlock enabled, or accept unconfined workers with --sandbox auto")
	}
	uids, uidNote, err := appUIDs(opts.AppUIDs, opts.DataDir)
	if err != nil {
		return err
	}
	cgroups, cgroupNote, err := appCgroups(opts)
	if err != nil {
		return err
	}
	if cgroups != nil {
		defer cgroups.Close()
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return withHint(fmt.Errorf("%s is already in use", opts.Listen), "choose another address with --listen (port 0 picks a free one)")
		}
		return err
	}
	public := opts.PublicURL
	if public == "" {
		addr := ln.Addr().(*net.TCPAddr)
		host := addr.IP.String()
		if addr.IP.IsUnspecified() {
			host = "127.0.0.1"
		}
		public = fmt.Sprintf("http://%s", net.JoinHostPort(host, fmt.Sprint(addr.Port)))
	}
	cfg := hosting.Config{DataDir: opts.DataDir, Node: node.Path, NodeVersion: node.Version, Sandbox: confine, AppUIDs: uids, Cgroups: cgroups,
		AdminToken: token, PublicURL: strings.TrimRight(public, "/"), WeChatAPIBase: opts.WeChatAPI,
		LogRetention: opts.LogRetention, AppConcurrency: opts.AppConcurrency, SDKDir: opts.SDKDir}
	release := func() {}
	if opts.DB != "" {
		if token == "" {
			ln.Close()
			// replicas starting together would each mint one and all but the last be wrong
			return withHint(errors.New("with --db every replica needs the same admin token"), "set FN_ADMIN_TOKEN or --admin-token-file")
		}
		release, err = hosting.UsePostgres(ctx, &cfg, opts.DB)
		if err != nil {
			ln.Close()
			return withHint(err, "check --db / FN_DB; fn serve --check tests the connection")
		}
	}
	defer release()
	rt, newToken, err := hosting.Open(ctx, cfg)
	if err != nil {
		ln.Close()
		return err
	}
	cs := ios.Colors()
	if opts.f.Global.JSON {
		writeJSON(ios.Out, map[string]any{"event": "ready", "url": public, "adminToken": newToken, "dataDir": opts.DataDir, "sandbox": status, "appUIDs": uidNote, "cgroups": cgroupNote})
	} else {
		where := "data in " + opts.DataDir
		if opts.DB != "" {
			where = "data in PostgreSQL at " + hosting.DescribeDB(opts.DB)
		}
		fmt.Fprintf(ios.ErrOut, "%s %s · %s\n", cs.Bold("fn serve"), cs.Cyan(public), cs.Gray(where))
		fmt.Fprintf(ios.ErrOut, "  console: %s %s\n", cs.Cyan(public+"/__fn/console/"), cs.Gray("(log in with the admin token or an app's master key)"))
		if status.Enforced {
			fmt.Fprintf(ios.ErrOut, "  sandbox: %s\n", status)
		} else {
			fmt.Fprintf(ios.ErrOut, "  %s %s\n", cs.Yellow("sandbox:"), status)
		}
		fmt.Fprintf(ios.ErrOut, "  app uids: %s\n", uidNote)
		fmt.Fprintf(ios.ErrOut, "  cgroups: %s\n", cgroupNote)
		if newToken != "" {
			fmt.Fprintf(ios.ErrOut, "  admin token (shown once, only its hash is kept): %s\n", cs.Bold(newToken))
			// not --token <TOKEN>: a pasted command line keeps the token in the shell's history
			fmt.Fprintf(ios.ErrOut, "  log in with: fn login --server %s   (asks for the token without echoing it)\n", public)
		}
	}
	stop := make(chan struct{})
	srv := &http.Server{Handler: keepFollowsOpen(rt.Handler(stop)), ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout: opts.ReadTimeout, WriteTimeout: opts.WriteTimeout, IdleTimeout: opts.IdleTimeout}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(hosting.LimitPerIP(ln, opts.MaxConnsPerIP)) }()
	select {
	case err := <-errc:
		close(stop)
		rt.Close(5 * time.Second)
		return err
	case <-ctx.Done():
	}
	// followers of fn logs -f end now (they resume after a restart), the health check fails so
	// that load balancers stop sending; calls in flight drain
	close(stop)
	if opts.ShutdownDelay > 0 {
		select {
		case <-time.After(opts.ShutdownDelay):
		case err := <-errc:
			rt.Close(5 * time.Second)
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	rt.Close(10 * time.Second)
	if !opts.f.Global.JSON {
		fmt.Fprintln(ios.ErrOut, cs.Gray("fn serve stopped; in-flight calls drained, workers stopped"))
	}
	return ctx.Err()
}

// keepFollowsOpen lifts the write timeout of log follows (fn logs -f), which stream for as long
// as the client stays; every other response must be written within --write-timeout.
func keepFollowsOpen(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := r.URL.Query().Get("follow"); f == "1" || f == "true" {
			http.NewResponseController(w).SetWriteDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}

// runServeCheck is fn serve --check: the backends answer and are ready for this fn.
func runServeCheck(ctx context.Context, opts *serveOptions) error {
	ios := opts.f.IO
	if opts.DB == "" {
		if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
			return fmt.Errorf("--data-dir %s: %w", opts.DataDir, err)
		}
		if opts.f.Global.JSON {
			writeJSON(ios.Out, map[string]any{"ok": true, "backend": "sqlite", "dataDir": opts.DataDir})
		} else {
			fmt.Fprintf(ios.ErrOut, "ok: embedded SQLite backends in %s\n", opts.DataDir)
		}
		return nil
	}
	if err := hosting.CheckPostgres(ctx, opts.DB); err != nil {
		if opts.f.Global.JSON {
			writeJSON(ios.Out, map[string]any{"ok": false, "backend": "postgres", "error": err.Error()})
		}
		if errors.Is(err, hosting.ErrSchema) {
			return withHint(err, "start fn serve --db once: it migrates the schema")
		}
		return withHint(err, "check the URL, that PostgreSQL runs and accepts this user")
	}
	if opts.f.Global.JSON {
		writeJSON(ios.Out, map[string]any{"ok": true, "backend": "postgres", "database": hosting.DescribeDB(opts.DB)})
	} else {
		fmt.Fprintf(ios.ErrOut, "ok: PostgreSQL at %s answers and its schema is current\n", hosting.DescribeDB(opts.DB))
	}
	return nil
}

// appUIDs decides --app-uids: the range, and what to tell the operator.
func appUIDs(flag, dataDir string) (*sandbox.UIDRange, string, error) {
	switch flag {
	case "off":
		return nil, "off (--app-uids off): every worker runs as fn's user", nil
	case "auto":
		if !sandbox.RunAsAvailable() {
			return nil, "off (fn serve is not root): every worker runs as fn's user", nil
		}
		if err := sandbox.Searchable(dataDir); err != nil {
			return nil, "off: " + err.Error(), nil
		}
		flag = sandbox.DefaultUIDs
	}
	r, err := sandbox.ParseUIDRange(flag)
	if err != nil {
		return nil, "", usageErrorf("--app-uids: %v", err)
	}
	if !sandbox.RunAsAvailable() {
		return nil, "", usageErrorf("--app-uids %s: only root can run workers as other uids", flag)
	}
	if err := sandbox.Searchable(dataDir); err != nil {
		return nil, "", withHint(fmt.Errorf("--app-uids: %w", err), "put --data-dir under directories others can search (0711 or 0755), or use --app-uids off")
	}
	return &r, r.String() + " (each app's workers run as a uid of their own)", nil
}

// appCgroups decides --cgroups: the per-app groups, and what to tell the operator.
func appCgroups(opts *serveOptions) (*sandbox.Cgroups, string, error) {
	if opts.Cgroups == "off" {
		return nil, "off (--cgroups off): no per-app memory, CPU or process limits", nil
	}
	dir, err := detectCgroups()
	if err == nil {
		limits := sandbox.CgroupLimits{MemoryMax: int64(opts.AppMemoryMax) << 20, PidsMax: opts.AppPidsMax, CPUWeight: 100}
		var cg *sandbox.Cgroups
		if cg, err = sandbox.SetupCgroups(dir, limits); err == nil {
			return cg, fmt.Sprintf("a group per app in %s (memory.max %d MB, pids.max %d, cpu.weight %d)", dir, opts.AppMemoryMax, opts.AppPidsMax, limits.CPUWeight), nil
		}
	}
	if opts.Cgroups == "require" {
		return nil, "", withHint(fmt.Errorf("--cgroups require: %w", err), "run fn serve in a delegated cgroup v2 subtree (systemd Delegate=yes), or use --cgroups auto")
	}
	return nil, "off: " + err.Error(), nil
}

func detectCgroups() (string, error) {
	if runtime.GOOS != "linux" {
		return "", errors.New("cgroups are Linux-only: no per-app memory, CPU or process limits")
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	return sandbox.DetectCgroups("/sys/fs/cgroup", self)
}
