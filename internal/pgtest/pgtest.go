// Package pgtest gives tests a PostgreSQL database: the server named by FN_TEST_PG_DSN, or a
// throwaway cluster started from the local server binaries (initdb into a temp dir, pg_ctl on a
// free port, as the postgres user when the tests run as root, which PostgreSQL refuses to be).
// Each DSN call creates a fresh database and drops it when the test ends. Tests skip only when
// there is neither a DSN nor a server binary, and fail instead when FN_REQUIRE_PG is set (CI).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	once     sync.Once
	baseDSN  string
	startErr error
	cluster  *local
	seq      atomic.Int64
)

type local struct {
	dir    string
	pgCtl  string
	runAs  string // "" when the tests do not run as root
	logDir string
}

// Main runs a package's tests and stops the cluster they started, if any: call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops a cluster started by this process and removes its files.
func Stop() {
	if cluster == nil {
		return
	}
	cluster.run(cluster.pgCtl, "-D", cluster.dir, "-m", "immediate", "-w", "stop")
	os.RemoveAll(filepath.Dir(cluster.dir))
	cluster = nil
}

// Available reports why no server can be had ("" when one can), without starting one.
func Available() string {
	if os.Getenv("FN_TEST_PG_DSN") != "" {
		return ""
	}
	if _, err := findBin("initdb"); err != nil {
		return "no PostgreSQL: set FN_TEST_PG_DSN or install the server (apt-get install postgresql): " + err.Error()
	}
	return ""
}

// Admin returns the DSN of the server's maintenance database (starting the server if needed).
func Admin(t testing.TB) string {
	t.Helper()
	if why := Available(); why != "" {
		if os.Getenv("FN_REQUIRE_PG") != "" {
			t.Fatal(why + " (FN_REQUIRE_PG is set: CI must have PostgreSQL)")
		}
		t.Skip(why)
	}
	once.Do(func() {
		if dsn := os.Getenv("FN_TEST_PG_DSN"); dsn != "" {
			baseDSN = dsn
			return
		}
		baseDSN, startErr = start()
	})
	if startErr != nil {
		t.Fatalf("starting PostgreSQL: %v", startErr)
	}
	return baseDSN
}

// DSN returns the DSN of a new, empty database, dropped when the test ends.
func DSN(t testing.TB) string {
	t.Helper()
	admin := Admin(t)
	name := fmt.Sprintf("fn_test_%d_%d", os.Getpid(), seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("connecting to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil || u.Scheme == "" {
		// a key=value DSN
		return admin + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

func findBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", fmt.Errorf("%s is not on PATH nor under /usr/lib/postgresql/*/bin", name)
}

func (l *local) run(bin string, args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if l.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", l.runAs, "--", bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd.CombinedOutput()
}

func start() (string, error) {
	initdb, err := findBin("initdb")
	if err != nil {
		return "", err
	}
	pgCtl, err := findBin("pg_ctl")
	if err != nil {
		return "", err
	}
	root, err := os.MkdirTemp("", "fn-pgtest-")
	if err != nil {
		return "", err
	}
	l := &local{dir: filepath.Join(root, "data"), pgCtl: pgCtl}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(root)
			return "", errors.New("running as root, and there is no postgres user to run the server as")
		}
		l.runAs = "postgres"
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(root, uid, gid); err != nil {
			os.RemoveAll(root)
			return "", err
		}
	}
	if out, err := l.run(initdb, "-D", l.dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		os.RemoveAll(root)
		return "", fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(root)
		return "", err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
		port, root)
	logFile := filepath.Join(root, "server.log")
	if out, err := l.run(pgCtl, "-D", l.dir, "-o", opts, "-l", logFile, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(logFile)
		os.RemoveAll(root)
		return "", fmt.Errorf("pg_ctl start: %v: %s %s", err, out, strings.TrimSpace(string(log)))
	}
	cluster = l
	l.watch(root)
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), nil
}

// watch stops the cluster and removes its files when this process is gone without calling
// Stop (a test binary that panicked or was killed): a detached shell polls for it.
func (l *local) watch(root string) {
	stop := fmt.Sprintf("%q -D %q -m immediate -w stop", l.pgCtl, l.dir)
	if l.runAs != "" {
		stop = "runuser -u " + l.runAs + " -- " + stop
	}
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; [ -d %q ] && { %s; rm -rf %q; }", os.Getpid(), l.dir, stop, root)
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = detached()
	if cmd.Start() == nil {
		go cmd.Wait()
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
