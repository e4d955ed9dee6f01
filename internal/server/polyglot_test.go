package server_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needs fails the test under CI (and skips it elsewhere) when a
// distribution package is missing; .ci/run installs them.
func needs(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing (.ci/run installs it)", what)
	}
	t.Skipf("%s is missing (.ci/run installs it)", what)
}

// checkE2E reads the last line of a client's output: {"ok": true, "id": …}.
func checkE2E(t *testing.T, name string, out []byte) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res struct {
		OK bool   `json:"ok"`
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || !res.OK || res.ID == "" {
		t.Fatalf("%s client: %v\n%s", name, err, out)
	}
	if len(lines) < 3 || !strings.EqualFold(lines[0], "true") || !strings.EqualFold(lines[1], "false") {
		t.Fatalf("%s client printed %q, want true then false", name, lines)
	}
}

// TestPythonClient runs the Python example of docs/clients.md with Debian's
// python3-grpcio against the stubs in api/gen/python: create, validate,
// revoke, validate again.
func TestPythonClient(t *testing.T) {
	t.Parallel()
	const py = "/usr/bin/python3" // Debian's packages are for this interpreter
	_, err := os.Stat(py)
	needs(t, err == nil && exec.Command(py, "-c", "import grpc, google.protobuf").Run() == nil, "python3-grpcio and python3-protobuf for /usr/bin/python3")
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "../../test/python/keyservice_e2e.py")
	cmd.Env = append(os.Environ(), "PYTHONPATH=../../api/gen/python", "KEYSERVICE_ADDR="+e.srv.GRPCAddr().String(), "KEYSERVICE_ADMIN_TOKEN="+adminToken)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python client: %v\n%s", err, out)
	}
	checkE2E(t, "python", out)
}

// javaJars are Debian's gRPC Java and its dependencies.
var javaJars = []string{"grpc-api", "grpc-core", "grpc-context", "grpc-netty", "grpc-protobuf", "grpc-protobuf-lite", "grpc-stub",
	"guava", "protobuf", "perfmark-api", "netty-transport", "netty-buffer", "netty-common", "netty-codec", "netty-codec-http",
	"netty-codec-http2", "netty-handler", "netty-resolver", "netty-handler-proxy", "netty-codec-socks",
	"netty-transport-native-unix-common", "geronimo-annotation-1.3-spec", "error_prone_annotations", "jsr305"}

// TestJavaClient compiles the Java example of docs/clients.md and the stubs in
// api/gen/java with javac against Debian's jars (no Maven), and runs it.
func TestJavaClient(t *testing.T) {
	t.Parallel()
	javac, errC := exec.LookPath("javac")
	java, errJ := exec.LookPath("java")
	needs(t, errC == nil && errJ == nil, "a JDK (javac, java)")
	var cp []string
	for _, j := range javaJars {
		p := filepath.Join("/usr/share/java", j+".jar")
		_, err := os.Stat(p)
		needs(t, err == nil, p+" (libgrpc-java, libnetty-java, libprotobuf-java, libperfmark-java, libgeronimo-annotation-1.3-spec-java)")
		cp = append(cp, p)
	}
	e := start(t)
	classes := t.TempDir()
	var sources []string
	_ = filepath.WalkDir("../../api/gen/java", func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".java") {
			sources = append(sources, p)
		}
		return nil
	})
	args := append([]string{"-nowarn", "-d", classes, "-cp", strings.Join(cp, ":")}, append(sources, "../../test/java/KeyserviceE2E.java")...)
	if out, err := exec.Command(javac, args...).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, "-cp", classes+":"+strings.Join(cp, ":"), "KeyserviceE2E")
	cmd.Env = append(os.Environ(), "KEYSERVICE_ADDR="+e.srv.GRPCAddr().String(), "KEYSERVICE_ADMIN_TOKEN="+adminToken)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("java client: %v\n%s", err, out)
	}
	checkE2E(t, "java", out)
}

// TestDocsShowThePolyglotExamplesWordForWord: the Python and Java code
// in docs/clients.md is the code the tests above run.
func TestDocsShowThePolyglotExamplesWordForWord(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../docs/clients.md")
	if err != nil {
		t.Fatal(err)
	}
	for file, marks := range map[string][2]string{
		"../../test/python/keyservice_e2e.py": {"# --- docs/clients.md: Python ---\n", "# --- end ---"},
		"../../test/java/KeyserviceE2E.java":  {"  // --- docs/clients.md: Java ---\n", "    // --- end ---"},
	} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok1 := strings.Cut(string(src), marks[0])
		snippet, _, ok2 := strings.Cut(rest, marks[1])
		if !ok1 || !ok2 || !strings.Contains(string(readme), snippet) {
			t.Errorf("docs/clients.md does not show %s's example word for word", file)
		}
	}
}
