// Package deploy holds the deployment files; its test (a module of its
// own, so the service's go.mod stays free of Kubernetes) decodes every
// manifest strictly into the Kubernetes API types and checks its probes
// and ports against the server's real ones.
package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// serverDefaults asks the real binary for its listen addresses.
func serverDefaults(t *testing.T) (grpcPort, httpPort string) {
	t.Helper()
	out, _ := exec.Command("go", "-C", "..", "run", "./cmd/keyservice", "serve", "--help").CombinedOutput()
	find := func(flag string) string {
		m := regexp.MustCompile(`-` + flag + ` string\s+[^\n]*\n?[^\n]*\(default "[^"]*:(\d+)"\)`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("no default for --%s in serve --help:\n%s", flag, out)
		}
		return m[1]
	}
	return find("grpc-addr"), find("http-addr")
}

func TestKubernetesManifestsDecodeStrictlyAndMatchTheServer(t *testing.T) {
	raw, err := os.ReadFile("kubernetes/keyservice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var (
		dep appsv1.Deployment
		svc corev1.Service
		pdb policyv1.PodDisruptionBudget
	)
	kinds := map[string]any{"Deployment": &dep, "Service": &svc, "PodDisruptionBudget": &pdb}
	seen := map[string]bool{}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		into, ok := kinds[meta.Kind]
		if !ok {
			t.Fatalf("unexpected kind %q", meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			t.Fatalf("%s does not decode strictly: %v", meta.Kind, err)
		}
		seen[meta.Kind] = true
	}
	if len(seen) != len(kinds) {
		t.Fatalf("kinds found: %v", seen)
	}

	grpcPort, httpPort := serverDefaults(t)
	c := dep.Spec.Template.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["KEYSERVICE_GRPC_ADDR"] != ":"+grpcPort || env["KEYSERVICE_HTTP_ADDR"] != ":"+httpPort {
		t.Errorf("listen addresses %q %q, want the server's :%s and :%s", env["KEYSERVICE_GRPC_ADDR"], env["KEYSERVICE_HTTP_ADDR"], grpcPort, httpPort)
	}
	if itoa(ports["grpc"]) != grpcPort || itoa(ports["http"]) != httpPort {
		t.Errorf("container ports %v, want grpc %s and http %s", ports, grpcPort, httpPort)
	}
	port := func(p intstr.IntOrString) string {
		if p.Type == intstr.String {
			return itoa(ports[p.StrVal])
		}
		return itoa(p.IntVal)
	}
	// The probes use the server's real endpoints: /healthz (alive),
	// /readyz (filter loaded), gRPC health on the gRPC port.
	if p := c.LivenessProbe.HTTPGet; p == nil || p.Path != "/healthz" || port(p.Port) != httpPort {
		t.Errorf("liveness probe %+v, want GET /healthz on %s", c.LivenessProbe, httpPort)
	}
	if p := c.StartupProbe.HTTPGet; p == nil || p.Path != "/readyz" || port(p.Port) != httpPort {
		t.Errorf("startup probe %+v, want GET /readyz on %s", c.StartupProbe, httpPort)
	}
	if p := c.ReadinessProbe.GRPC; p == nil || itoa(p.Port) != grpcPort {
		t.Errorf("readiness probe %+v, want gRPC health on %s", c.ReadinessProbe, grpcPort)
	}
	// Termination outlasts the delay and the drain.
	var drain int64 = 20
	if env["KEYSERVICE_SHUTDOWN_TIMEOUT"] != "15s" || env["KEYSERVICE_SHUTDOWN_DELAY"] != "5s" {
		t.Errorf("KEYSERVICE_SHUTDOWN_TIMEOUT %q, KEYSERVICE_SHUTDOWN_DELAY %q", env["KEYSERVICE_SHUTDOWN_TIMEOUT"], env["KEYSERVICE_SHUTDOWN_DELAY"])
	}
	if g := dep.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g <= drain {
		t.Errorf("terminationGracePeriodSeconds %v, want more than the %d s of delay and drain", g, drain)
	}
	if sc := dep.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("pods may run as root")
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Error("no memory request or limit")
	}
	for _, p := range svc.Spec.Ports {
		if _, ok := ports[p.TargetPort.StrVal]; !ok {
			t.Errorf("service port %s targets %v, not a container port", p.Name, p.TargetPort)
		}
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntVal >= *dep.Spec.Replicas {
		t.Errorf("PodDisruptionBudget %v would block every eviction of %d replicas", pdb.Spec.MinAvailable, *dep.Spec.Replicas)
	}
}

// The compose file is YAML, and names the image make image builds.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image string `json:"image"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"postgres", "redis", "keyservice-1", "keyservice-2", "nginx"} {
		if doc.Services[name].Image == "" {
			t.Errorf("service %s missing", name)
		}
	}
	if doc.Services["keyservice-1"].Image != "localhost/keyservice:latest" {
		t.Errorf("replica image %q, want make image's localhost/keyservice:latest", doc.Services["keyservice-1"].Image)
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
