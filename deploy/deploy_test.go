package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fnhq/fn/internal/testutil"
)

type doc = map[string]any

// get walks a path of map keys and list indexes ("spec.template.spec.containers.0").
func get(t *testing.T, d any, path string) any {
	t.Helper()
	cur := d
	for _, p := range strings.Split(path, ".") {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[p]
			if !ok {
				t.Fatalf("%s: no %q", path, p)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				t.Fatalf("%s: index %d of %d", path, i, len(x))
			}
			cur = x[i]
		default:
			t.Fatalf("%s: %q of a %T", path, p, cur)
		}
	}
	return cur
}

func str(t *testing.T, d any, path string) string {
	t.Helper()
	s, ok := get(t, d, path).(string)
	if !ok || s == "" {
		t.Fatalf("%s: want a non-empty string, got %#v", path, get(t, d, path))
	}
	return s
}

func num(t *testing.T, d any, path string) int {
	t.Helper()
	n, ok := get(t, d, path).(int)
	if !ok {
		t.Fatalf("%s: want an integer, got %#v", path, get(t, d, path))
	}
	return n
}

// manifests reads every document of the Kubernetes files by kind.
func manifests(t *testing.T) map[string]doc {
	out := map[string]doc{}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests in kubernetes/")
	}
	apiVersions := map[string]string{"Secret": "v1", "Service": "v1", "Deployment": "apps/v1", "HorizontalPodAutoscaler": "autoscaling/v2"}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		for {
			var d doc
			err := dec.Decode(&d)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kind := str(t, d, "kind")
			if want, ok := apiVersions[kind]; !ok || str(t, d, "apiVersion") != want {
				t.Fatalf("%s: %s with apiVersion %v (want one of %v)", f, kind, d["apiVersion"], apiVersions)
			}
			str(t, d, "metadata.name")
			if _, dup := out[kind]; dup {
				t.Fatalf("%s: a second %s", f, kind)
			}
			out[kind] = d
		}
	}
	for kind := range apiVersions {
		if out[kind] == nil {
			t.Fatalf("no %s among the manifests", kind)
		}
	}
	return out
}

// serveFlags are fn serve's flags, read from its source so that the kit cannot name one that
// does not exist.
func serveFlags(t *testing.T) map[string]bool {
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "commands", "serve.go"))
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`fl\.\w+Var\(&opts\.\w+, "([a-z-]+)"`).FindAllStringSubmatch(string(b), -1) {
		flags["--"+m[1]] = true
	}
	if !flags["--db"] || !flags["--shutdown-delay"] {
		t.Fatalf("fn serve's flags as read from its source: %v", flags)
	}
	return flags
}

func checkArgs(t *testing.T, where string, args []any, flags map[string]bool) {
	for _, a := range args {
		s, _ := a.(string)
		if strings.HasPrefix(s, "--") && !flags[strings.SplitN(s, "=", 2)[0]] {
			t.Errorf("%s passes %s, which fn serve does not have", where, s)
		}
	}
}

func TestKubernetes(t *testing.T) {
	m := manifests(t)
	flags := serveFlags(t)
	secret, dep, svc, hpa := m["Secret"], m["Deployment"], m["Service"], m["HorizontalPodAutoscaler"]

	if n := num(t, dep, "spec.replicas"); n < 2 {
		t.Errorf("the Deployment runs %d replica(s); scale-out wants at least 2", n)
	}
	labels := get(t, dep, "spec.template.metadata.labels").(map[string]any)
	for k, v := range get(t, dep, "spec.selector.matchLabels").(map[string]any) {
		if labels[k] != v {
			t.Errorf("the Deployment's selector %s=%v does not match its pods' labels %v", k, v, labels)
		}
	}
	c := get(t, dep, "spec.template.spec.containers.0")
	str(t, c, "image")
	checkArgs(t, "the Deployment", get(t, c, "args").([]any), flags)
	port := get(t, c, "ports.0")
	portName, containerPort := str(t, port, "name"), num(t, port, "containerPort")
	// the Dockerfile's entrypoint listens there
	if df, err := os.ReadFile("Dockerfile"); err != nil || !strings.Contains(string(df), "0.0.0.0:"+itoa(containerPort)) {
		t.Errorf("the container port %d is not where the image's fn serve listens (%v)", containerPort, err)
	}
	// the database URL and admin token come from the Secret
	stringData := get(t, secret, "stringData").(map[string]any)
	envs := map[string]bool{}
	for _, e := range get(t, c, "env").([]any) {
		name := str(t, e, "name")
		envs[name] = true
		if ref := str(t, e, "valueFrom.secretKeyRef.name"); ref != str(t, secret, "metadata.name") {
			t.Errorf("env %s reads Secret %q, not %q", name, ref, secret["metadata"].(map[string]any)["name"])
		}
		if key := str(t, e, "valueFrom.secretKeyRef.key"); stringData[key] == nil {
			t.Errorf("env %s reads key %q, which the Secret does not have", name, key)
		}
	}
	if !envs["FN_DB"] || !envs["FN_ADMIN_TOKEN"] {
		t.Errorf("the container's env %v lacks FN_DB or FN_ADMIN_TOKEN", envs)
	}
	if db, _ := stringData["database-url"].(string); !strings.HasPrefix(db, "postgres://") {
		t.Errorf("the Secret's database-url %q is not a postgres:// URL", db)
	}
	// probes on the health endpoint, on the container's port
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		if p := str(t, c, probe+".httpGet.path"); !strings.HasPrefix(p, "/__fn/health") {
			t.Errorf("%s probes %s, not /__fn/health", probe, p)
		}
		if p := get(t, c, probe+".httpGet.port"); p != portName && p != containerPort {
			t.Errorf("%s probes port %v, not the container's %s/%d", probe, p, portName, containerPort)
		}
	}
	// the drain fits the grace period: the readiness probe notices within period×threshold,
	// which the shutdown delay must cover, and delay + HTTP drain (15 s) + workers (10 s) < grace
	delay := 0
	args := get(t, c, "args").([]any)
	for i, a := range args {
		if a == "--shutdown-delay" && i+1 < len(args) {
			delay = atoiSeconds(t, args[i+1].(string))
		}
	}
	notice := num(t, c, "readinessProbe.periodSeconds") * num(t, c, "readinessProbe.failureThreshold")
	if delay < notice {
		t.Errorf("--shutdown-delay %d s is shorter than the readiness probe takes to notice (%d s)", delay, notice)
	}
	if grace := num(t, dep, "spec.template.spec.terminationGracePeriodSeconds"); delay+15+10 > grace {
		t.Errorf("terminationGracePeriodSeconds %d < shutdown delay %d + drain 25", grace, delay)
	}
	str(t, c, "resources.requests.cpu") // the HPA's utilisation is relative to it

	// the Service reaches the pods
	for k, v := range get(t, svc, "spec.selector").(map[string]any) {
		if labels[k] != v {
			t.Errorf("the Service selects %s=%v, which the pods do not carry", k, v)
		}
	}
	if tp := get(t, svc, "spec.ports.0.targetPort"); tp != portName && tp != containerPort {
		t.Errorf("the Service targets port %v, not the container's %s/%d", tp, portName, containerPort)
	}
	// the HPA scales this Deployment
	if str(t, hpa, "spec.scaleTargetRef.kind") != "Deployment" || str(t, hpa, "spec.scaleTargetRef.name") != str(t, dep, "metadata.name") {
		t.Errorf("the HPA scales %v", get(t, hpa, "spec.scaleTargetRef"))
	}
	if lo, hi := num(t, hpa, "spec.minReplicas"), num(t, hpa, "spec.maxReplicas"); lo < 2 || hi < lo {
		t.Errorf("the HPA scales between %d and %d", lo, hi)
	}
	if str(t, hpa, "spec.metrics.0.resource.name") != "cpu" {
		t.Errorf("the HPA scales on %v", get(t, hpa, "spec.metrics.0"))
	}
}

func TestCompose(t *testing.T) {
	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var d doc
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	flags := serveFlags(t)
	services := get(t, d, "services").(map[string]any)
	var replicas []string
	for name, s := range services {
		if strings.HasPrefix(name, "fn") {
			replicas = append(replicas, name)
			env := get(t, s, "environment").(map[string]any)
			db, _ := env["FN_DB"].(string)
			if !strings.HasPrefix(db, "postgres://") || !strings.Contains(db, "@postgres:") {
				t.Errorf("%s: FN_DB %q does not point at the postgres service", name, db)
			}
			if env["FN_ADMIN_TOKEN"] == nil {
				t.Errorf("%s: no FN_ADMIN_TOKEN: replicas must share one", name)
			}
			if str(t, s, "depends_on.postgres.condition") != "service_healthy" {
				t.Errorf("%s starts before PostgreSQL is ready", name)
			}
			if !strings.Contains(strings.Join(toStrings(get(t, s, "healthcheck.test")), " "), "/__fn/health") {
				t.Errorf("%s: the health check does not use /__fn/health", name)
			}
			checkArgs(t, name, get(t, s, "command").([]any), flags)
		}
	}
	if len(replicas) < 2 {
		t.Fatalf("%d fn replicas in the compose file, want 2", len(replicas))
	}
	str(t, services, "postgres.image")
	str(t, services, "postgres.healthcheck.test.1")
	lb := services["lb"]
	str(t, lb, "ports.0")
	conf, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range replicas {
		if !strings.Contains(string(conf), "server "+r+":8080") {
			t.Errorf("nginx.conf does not balance over %s", r)
		}
	}
	if !strings.Contains(string(conf), "proxy_buffering off") {
		t.Error("nginx buffers responses: fn logs -f would not stream")
	}
}

func toStrings(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoiSeconds(t *testing.T, s string) int {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return int(d / time.Second)
}
