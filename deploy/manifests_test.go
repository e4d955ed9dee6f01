// Package deploy holds the deployment files; its test (a module of its
// own, so the service's go.mod stays free of Kubernetes) decodes every
// manifest strictly into the Kubernetes API types and checks its probes,
// ports, migration step, memory limit, autoscaler and Redis wiring against
// each other and against the server's real defaults.
package deploy

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
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

// manifestKinds are the kinds the manifests may hold: each with the only
// apiVersion accepted (strict decoding alone would take any apiVersion
// string) and a new object to decode it into.
var manifestKinds = map[string]struct {
	apiVersion string
	new        func() any
}{
	"Deployment":              {"apps/v1", func() any { return new(appsv1.Deployment) }},
	"Service":                 {"v1", func() any { return new(corev1.Service) }},
	"PodDisruptionBudget":     {"policy/v1", func() any { return new(policyv1.PodDisruptionBudget) }},
	"HorizontalPodAutoscaler": {"autoscaling/v2", func() any { return new(autoscalingv2.HorizontalPodAutoscaler) }},
	"Job":                     {"batch/v1", func() any { return new(batchv1.Job) }},
}

// manifests decodes every document of a file strictly, keyed "Kind/name"
// (several Deployments and Services may share a kind).
func manifests(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]any{}
	for i, doc := range strings.Split(string(raw), "\n---\n") {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		k, ok := manifestKinds[meta.Kind]
		if !ok {
			t.Fatalf("document %d: unexpected kind %q", i+1, meta.Kind)
		}
		if meta.APIVersion != k.apiVersion {
			t.Errorf("%s %s: apiVersion %q, want %q", meta.Kind, meta.Metadata.Name, meta.APIVersion, k.apiVersion)
		}
		key := meta.Kind + "/" + meta.Metadata.Name
		if meta.Metadata.Name == "" {
			t.Fatalf("document %d: %s without a name", i+1, meta.Kind)
		}
		if _, dup := objs[key]; dup {
			t.Fatalf("%s twice", key)
		}
		into := k.new()
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			t.Fatalf("%s does not decode strictly: %v", key, err)
		}
		objs[key] = into
	}
	return objs
}

// get returns the object key names, failing the test if it is missing.
func get[T any](t *testing.T, objs map[string]any, key string) *T {
	t.Helper()
	o, ok := objs[key].(*T)
	if !ok {
		t.Fatalf("no %s in the manifests", key)
	}
	return o
}

func TestKubernetesManifestsDecodeStrictlyAndMatchTheServer(t *testing.T) {
	objs := manifests(t, "kubernetes/keyservice.yaml")
	dep := get[appsv1.Deployment](t, objs, "Deployment/keyservice")
	svc := get[corev1.Service](t, objs, "Service/keyservice")

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
	// Termination outlasts the worst stop: the delay, the port's close
	// (1.2 s at most), the drain and the flush (the timeout each), the
	// hold after the port closed (1.2 s at most).
	var drain int64 = 5 + 2 + 15 + 15 + 2
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
}

// The Services, the autoscaler, the disruption budget and the memory
// limit fit together.
func TestKubernetesScalingAndMemory(t *testing.T) {
	objs := manifests(t, "kubernetes/keyservice.yaml")
	dep := get[appsv1.Deployment](t, objs, "Deployment/keyservice")
	pdb := get[policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget/keyservice")
	hpa := get[autoscalingv2.HorizontalPodAutoscaler](t, objs, "HorizontalPodAutoscaler/keyservice")
	c := dep.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}

	// Every Service selects the pods of exactly one Deployment.
	for key, o := range objs {
		s, ok := o.(*corev1.Service)
		if !ok {
			continue
		}
		var selected []string
		for dkey, d := range objs {
			if d, ok := d.(*appsv1.Deployment); ok && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				selected = append(selected, dkey)
			}
		}
		if len(s.Spec.Selector) == 0 || len(selected) != 1 {
			t.Errorf("%s selects the pods of %v, want one Deployment's", key, selected)
		}
	}

	// The autoscaler owns the replica count, scales the keyservice
	// Deployment on CPU (which needs a CPU request), and never goes below
	// what lets the PodDisruptionBudget evict a pod.
	if dep.Spec.Replicas != nil {
		t.Errorf("Deployment sets replicas: %d, which every kubectl apply would reset under the autoscaler", *dep.Spec.Replicas)
	}
	if r := hpa.Spec.ScaleTargetRef; r.APIVersion != "apps/v1" || r.Kind != "Deployment" || r.Name != dep.Name {
		t.Errorf("HorizontalPodAutoscaler targets %+v, want apps/v1 Deployment %s", r, dep.Name)
	}
	cpu := false
	for _, m := range hpa.Spec.Metrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
			m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil {
			cpu = true
		}
	}
	if !cpu {
		t.Errorf("HorizontalPodAutoscaler metrics %+v, want CPU utilisation", hpa.Spec.Metrics)
	}
	if c.Resources.Requests.Cpu().IsZero() {
		t.Error("no CPU request: the autoscaler's utilisation is a share of it")
	}
	if hpa.Spec.MinReplicas == nil || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
		t.Fatalf("HorizontalPodAutoscaler replicas %v to %d", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntVal+1 > *hpa.Spec.MinReplicas {
		t.Errorf("PodDisruptionBudget minAvailable %v would block every eviction of %d replicas", pdb.Spec.MinAvailable, *hpa.Spec.MinReplicas)
	}
	if !labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("PodDisruptionBudget selects %v, not the keyservice pods", pdb.Spec.Selector)
	}

	// GOMEMLIMIT, in the Go runtime's syntax, 70–95 % of the memory limit.
	limit := c.Resources.Limits.Memory().Value()
	if gml, err := goMemLimit(env["GOMEMLIMIT"]); err != nil {
		t.Errorf("GOMEMLIMIT: %v", err)
	} else if share := float64(gml) / float64(limit); share < 0.70 || share > 0.95 {
		t.Errorf("GOMEMLIMIT %s is %.1f %% of limits.memory %s, want 70–95 %%", env["GOMEMLIMIT"], 100*share, c.Resources.Limits.Memory())
	}

	// KEYSERVICE_DATABASE_READ_URL is offered, commented out: a setting
	// for read replicas, optional.
	if raw, _ := os.ReadFile("kubernetes/keyservice.yaml"); !regexp.MustCompile(`(?m)^\s*#.*KEYSERVICE_DATABASE_READ_URL`).Match(raw) {
		t.Error("the manifest does not mention KEYSERVICE_DATABASE_READ_URL (optional, commented out)")
	}
	if _, set := env["KEYSERVICE_DATABASE_READ_URL"]; set {
		t.Error("KEYSERVICE_DATABASE_READ_URL is set: it is optional, and needs a Secret key of its own")
	}
}

// A fresh install becomes ready by itself: `keyservice migrate` runs, in
// an init container of the keyservice pods or a Job, with the serving
// container's image and database.
func TestKubernetesMigrationStep(t *testing.T) {
	objs := manifests(t, "kubernetes/keyservice.yaml")
	dep := get[appsv1.Deployment](t, objs, "Deployment/keyservice")
	serving := dep.Spec.Template.Spec.Containers[0]
	type step struct {
		where string
		c     corev1.Container
	}
	var steps []step
	for _, c := range dep.Spec.Template.Spec.InitContainers {
		steps = append(steps, step{"init container " + c.Name, c})
	}
	for key, o := range objs {
		j, ok := o.(*batchv1.Job)
		if !ok {
			continue
		}
		if j.Spec.BackoffLimit == nil || j.Spec.TTLSecondsAfterFinished == nil {
			t.Errorf("%s: backoffLimit %v, ttlSecondsAfterFinished %v: want both", key, j.Spec.BackoffLimit, j.Spec.TTLSecondsAfterFinished)
		}
		for _, c := range j.Spec.Template.Spec.Containers {
			steps = append(steps, step{key + " container " + c.Name, c})
		}
	}
	migrates := 0
	for _, s := range steps {
		// The image's ENTRYPOINT is the binary: args name the command,
		// and a command would replace the entrypoint.
		if len(s.c.Command) != 0 || !reflect.DeepEqual(s.c.Args, []string{"migrate"}) {
			continue
		}
		migrates++
		if s.c.Image != serving.Image {
			t.Errorf("%s runs %s, the server runs %s", s.where, s.c.Image, serving.Image)
		}
		if got, want := envSource(s.c, "DATABASE_URL"), envSource(serving, "DATABASE_URL"); want == nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s takes DATABASE_URL from %+v, the server from %+v", s.where, got, want)
		}
		if sc := s.c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: no read-only root filesystem", s.where)
		}
	}
	if migrates != 1 {
		t.Errorf("%d steps run migrate (args [migrate], same entrypoint): want one", migrates)
	}
}

// KEYSERVICE_REDIS_URL names the Redis Service, on its port, and that
// Service reaches the Redis container's port.
func TestKubernetesRedisForSharedBudgets(t *testing.T) {
	objs := manifests(t, "kubernetes/keyservice.yaml")
	dep := get[appsv1.Deployment](t, objs, "Deployment/keyservice")
	rdep := get[appsv1.Deployment](t, objs, "Deployment/keyservice-redis")
	rsvc := get[corev1.Service](t, objs, "Service/keyservice-redis")

	v := envSource(dep.Spec.Template.Spec.Containers[0], "KEYSERVICE_REDIS_URL")
	if v == nil || v.Value == "" {
		t.Fatal("KEYSERVICE_REDIS_URL is not set")
	}
	u, err := url.Parse(v.Value)
	if err != nil || u.Scheme != "redis" {
		t.Fatalf("KEYSERVICE_REDIS_URL %q: want a redis:// URL (%v)", v.Value, err)
	}
	if host := u.Hostname(); host != rsvc.Name && !strings.HasPrefix(host, rsvc.Name+".") {
		t.Errorf("KEYSERVICE_REDIS_URL host %q, want the Service %s", host, rsvc.Name)
	}
	var sp *corev1.ServicePort
	for i, p := range rsvc.Spec.Ports {
		if itoa(p.Port) == u.Port() {
			sp = &rsvc.Spec.Ports[i]
		}
	}
	if sp == nil {
		t.Fatalf("KEYSERVICE_REDIS_URL port %q is none of the Service's %+v", u.Port(), rsvc.Spec.Ports)
	}
	rc := rdep.Spec.Template.Spec.Containers[0]
	found := false
	for _, p := range rc.Ports {
		if p.Name == sp.TargetPort.StrVal || (sp.TargetPort.Type == intstr.Int && p.ContainerPort == sp.TargetPort.IntVal) {
			found = p.ContainerPort == 6379
		}
	}
	if !found {
		t.Errorf("Service %s port %d targets %v, not Redis's 6379 in %+v", rsvc.Name, sp.Port, sp.TargetPort, rc.Ports)
	}
	if !labels.SelectorFromSet(rsvc.Spec.Selector).Matches(labels.Set(rdep.Spec.Template.Labels)) {
		t.Errorf("Service %s selects %v, not the Redis pods %v", rsvc.Name, rsvc.Spec.Selector, rdep.Spec.Template.Labels)
	}
	if sc := rdep.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("Redis may run as root")
	}
	if rc.Resources.Limits.Memory().IsZero() {
		t.Error("Redis has no memory limit")
	}
}

func TestGoMemLimitSyntax(t *testing.T) {
	for in, want := range map[string]int64{"123": 123, "460MiB": 460 << 20, "1GiB": 1 << 30, "2KiB": 2048, "7B": 7, "1TiB": 1 << 40} {
		if got, err := goMemLimit(in); err != nil || got != want {
			t.Errorf("goMemLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	// Kubernetes quantities are not the runtime's syntax.
	for _, in := range []string{"", "460Mi", "1G", "1.5GiB", "-1", "460 MiB", "off"} {
		if got, err := goMemLimit(in); err == nil {
			t.Errorf("goMemLimit(%q) = %d, want an error", in, got)
		}
	}
}

// goMemLimit parses GOMEMLIMIT as the Go runtime does (runtime's
// parseByteCount): a whole number of bytes, with an optional B, KiB, MiB,
// GiB or TiB suffix. ("off" is accepted by the runtime but means no
// limit: refused here.)
func goMemLimit(s string) (int64, error) {
	m := regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB|TiB)?$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a byte count the Go runtime reads (digits, then B, KiB, MiB, GiB or TiB)", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, err
	}
	shift := map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[2]]
	if n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("%q overflows", s)
	}
	return n << shift, nil
}

// envSource returns the named variable of c.
func envSource(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
