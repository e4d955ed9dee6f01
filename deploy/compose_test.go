package deploy

import (
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// composeFile is the part of the Compose spec compose.yaml may use: what
// both docker compose and Debian's podman-compose 1.0.3 read the same
// way. Decoding is strict, so anything else fails the test: ipam and
// ipv4_address (1.0.3 cannot fix a subnet or an address), depends_on
// conditions (1.0.3 ignores them and starts without waiting; only the
// list form decodes here), and every key not listed.
type composeFile struct {
	Services map[string]composeService `json:"services"`
	Networks map[string]struct {
		Internal bool `json:"internal,omitempty"`
	} `json:"networks"`
}

type composeService struct {
	Image       string            `json:"image"`
	Command     []string          `json:"command,omitempty"`
	Environment map[string]string `json:"environment,omitempty"` // strings only: 1.0.3 would pass a YAML true as "True"
	Healthcheck *struct {
		Test     []string `json:"test"`
		Interval string   `json:"interval,omitempty"`
	} `json:"healthcheck,omitempty"`
	DependsOn []string `json:"depends_on,omitempty"`
	Ports     []string `json:"ports,omitempty"`
	Volumes   []string `json:"volumes,omitempty"`
	Networks  []string `json:"networks,omitempty"`
}

var replicas = []string{"keyservice-1", "keyservice-2"}

func composeSpec(t *testing.T) composeFile {
	t.Helper()
	raw, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Named in the message, wherever they are (decoding would also refuse
	// them, less clearly).
	for _, k := range []string{"ipam", "ipv4_address", "ipv6_address", "condition"} {
		if regexp.MustCompile(`(?m)^[^#\n]*\b` + k + `\s*:`).Match(raw) {
			t.Errorf("compose.yaml uses %s, which podman-compose 1.0.3 does not support", k)
		}
	}
	var f composeFile
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		t.Fatalf("compose.yaml uses more than the subset both tools read: %v", err)
	}
	return f
}

func TestComposeFile(t *testing.T) {
	f := composeSpec(t)
	for _, name := range []string{"postgres", "redis", "keyservice-1", "keyservice-2", "nginx"} {
		if f.Services[name].Image == "" {
			t.Errorf("service %s missing", name)
		}
	}
	for name, s := range f.Services {
		for _, n := range s.Networks {
			if _, ok := f.Networks[n]; !ok {
				t.Errorf("service %s is on network %q, which is not declared", name, n)
			}
		}
		for _, d := range s.DependsOn {
			if _, ok := f.Services[d]; !ok {
				t.Errorf("service %s depends on %q, not a service", name, d)
			}
		}
	}
	for _, name := range replicas {
		s := f.Services[name]
		env := s.Environment
		if s.Image != "localhost/keyservice:latest" {
			t.Errorf("%s image %q, want make image's localhost/keyservice:latest", name, s.Image)
		}
		// Without depends_on conditions, the replica migrates itself and
		// waits for PostgreSQL (serve --migrate retries both).
		if !slices.Equal(s.Command, []string{"serve"}) || env["KEYSERVICE_MIGRATE"] != "true" {
			t.Errorf("%s runs %v with KEYSERVICE_MIGRATE %q: want serve, migrating at start", name, s.Command, env["KEYSERVICE_MIGRATE"])
		}
		if !slices.Contains(s.DependsOn, "postgres") {
			t.Errorf("%s does not start after postgres", name)
		}
		if u, err := url.Parse(env["DATABASE_URL"]); err != nil || u.Hostname() != "postgres" {
			t.Errorf("%s DATABASE_URL %q: want the postgres service", name, env["DATABASE_URL"])
		}
		if d, err := time.ParseDuration(env["KEYSERVICE_SHUTDOWN_DELAY"]); err != nil || d <= 0 || d > 5*time.Second {
			t.Errorf("%s KEYSERVICE_SHUTDOWN_DELAY %q: want a short delay (it keeps a stopping replica up until its port refuses, behind nginx)", name, env["KEYSERVICE_SHUTDOWN_DELAY"])
		}
		if u, err := url.Parse(env["KEYSERVICE_REDIS_URL"]); err != nil || u.Scheme != "redis" || u.Hostname() != "redis" || u.Port() != "6379" {
			t.Errorf("%s KEYSERVICE_REDIS_URL %q: want redis://redis:6379/…", name, env["KEYSERVICE_REDIS_URL"])
		}
		if !strings.HasPrefix(env["KEYSERVICE_ADMIN_TOKENS"], "${KEYSERVICE_ADMIN_TOKEN:?") {
			t.Errorf("%s KEYSERVICE_ADMIN_TOKENS %q: want the operator's, required", name, env["KEYSERVICE_ADMIN_TOKENS"])
		}
		// Every address trusted to name clients is private, and the
		// replicas publish no port: only what is on the private network
		// reaches them.
		proxies := env["KEYSERVICE_TRUSTED_PROXIES"]
		if proxies == "" {
			t.Errorf("%s trusts no proxy: every REST client would be nginx", name)
		}
		for _, p := range strings.Split(proxies, ",") {
			pfx, err := netip.ParsePrefix(p)
			if err != nil {
				t.Errorf("%s KEYSERVICE_TRUSTED_PROXIES %q: %v", name, p, err)
				continue
			}
			last := pfx.Masked().Addr().As4()
			for i := range last {
				last[i] |= ^byte(0) >> min(8, max(0, pfx.Bits()-8*i))
			}
			if !pfx.Addr().IsPrivate() || !netip.AddrFrom4(last).IsPrivate() {
				t.Errorf("%s trusts %s, not only private addresses", name, p)
			}
		}
		if len(s.Ports) != 0 {
			t.Errorf("%s publishes %v: a replica that trusts the private network must be reached through nginx only", name, s.Ports)
		}
		if _, set := env["KEYSERVICE_DATABASE_READ_URL"]; set {
			t.Errorf("%s sets KEYSERVICE_DATABASE_READ_URL: it is optional (commented out)", name)
		}
	}
	if !slices.Equal(f.Services["nginx"].DependsOn, replicas) {
		t.Errorf("nginx depends on %v, want the replicas (it resolves them at start)", f.Services["nginx"].DependsOn)
	}
	for _, p := range f.Services["nginx"].Ports {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("nginx publishes %s beyond loopback", p)
		}
	}

	// nginx sends to the replicas, and sets X-Forwarded-For itself (what
	// makes trusting it right).
	conf, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	grpcPort, httpPort := "9090", "8080" // the image's KEYSERVICE_*_ADDR (Containerfile)
	for _, m := range regexp.MustCompile(`server ([^:;\s]+):(\d+);`).FindAllStringSubmatch(string(conf), -1) {
		if !slices.Contains(replicas, m[1]) || (m[2] != grpcPort && m[2] != httpPort) {
			t.Errorf("nginx upstream %s:%s is not a replica's port", m[1], m[2])
		}
	}
	if !strings.Contains(string(conf), "proxy_set_header X-Forwarded-For $remote_addr;") {
		t.Error("nginx passes on the client's X-Forwarded-For")
	}
}

// podman-compose 1.0.3 (Debian's) reads the file and builds every
// container's podman command: run with --dry-run and true as podman, so
// nothing is created. (It has no config command.) CI installs it.
func TestComposeFileUnderPodmanCompose(t *testing.T) {
	pc, err := exec.LookPath("podman-compose")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("podman-compose is not installed (.ci/run installs it)")
		}
		t.Skip("podman-compose is not installed")
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	run := func(env ...string) (string, error) {
		cmd := exec.Command(pc, "--dry-run", "--podman-path", truePath, "-p", "kstest", "-f", "compose.yaml", "up", "-d")
		cmd.Env = env
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "KEYSERVICE_ADMIN_TOKEN=") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Unset (1.0.3 takes an empty one as set).
	if out, err := run(); err == nil || !strings.Contains(out, "set KEYSERVICE_ADMIN_TOKEN") {
		t.Errorf("without KEYSERVICE_ADMIN_TOKEN: %v\n%s", err, out)
	}
	out, err := run("KEYSERVICE_ADMIN_TOKEN=compose-test-token-0123456789")
	if err != nil {
		t.Fatalf("podman-compose up --dry-run: %v\n%s", err, out)
	}
	// The order it starts containers in, and each one's arguments.
	var order []string
	args := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if m := regexp.MustCompile(`^\S+ run --name=kstest_(\S+)_1 (.*)$`).FindStringSubmatch(line); m != nil {
			order = append(order, m[1])
			args[m[1]] = m[2]
		}
	}
	if len(order) != len(composeSpec(t).Services) {
		t.Fatalf("podman-compose would start %v\n%s", order, out)
	}
	pos := func(s string) int { return slices.Index(order, s) }
	if pos("nginx") < pos("keyservice-1") || pos("nginx") < pos("keyservice-2") || pos("keyservice-1") < pos("postgres") {
		t.Errorf("start order %v: want postgres, the replicas, then nginx", order)
	}
	for _, r := range replicas {
		a := args[r]
		for _, want := range []string{"-e KEYSERVICE_MIGRATE=true ", "-e KEYSERVICE_ADMIN_TOKENS=compose-test-token-0123456789 ", "--net kstest_keyservice ", "localhost/keyservice:latest serve"} {
			if !strings.Contains(a+" ", want) {
				t.Errorf("%s: podman run %s\nwant %q", r, a, want)
			}
		}
	}
	if !strings.Contains(args["nginx"], "-p 127.0.0.1:8080:8080 -p 127.0.0.1:9090:9090") {
		t.Errorf("nginx: podman run %s", args["nginx"])
	}
}

// TestNginxConfigParses runs nginx -t on deploy/nginx.conf, with the
// replicas' compose names pointed at loopback (nginx resolves upstreams
// while it checks).
func TestNginxConfigParses(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
		if _, serr := os.Stat(nginx); serr != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("nginx is missing (.ci/run installs it)")
			}
			t.Skip("nginx is missing")
		}
	}
	raw, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := strings.NewReplacer("keyservice-1:", "127.0.0.1:", "keyservice-2:", "127.0.0.1:").Replace(string(raw))
	conf = "pid " + dir + "/nginx.pid;\nerror_log " + dir + "/error.log;\n" + conf
	path := dir + "/nginx.conf"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nginx, "-t", "-c", path, "-p", dir, "-e", dir+"/error.log").CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}
