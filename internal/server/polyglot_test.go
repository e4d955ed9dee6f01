package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
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

// javaClasspath is what `make -s java-classpath` prints (Debian's jars and
// the stubs' jar, built once for the whole test binary), as docs/clients.md
// tells a Java caller to get it.
var javaClasspath = sync.OnceValues(func() (string, error) {
	// stdout only: javac's notes on stderr are not part of the classpath.
	out, err := exec.Command("make", "-s", "-C", "../..", "java-classpath").Output()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return string(ee.Stderr), err
	}
	return strings.TrimSpace(string(out)), err
})

func needsJava(t *testing.T) (javac, java, cp string) {
	t.Helper()
	javac, errC := exec.LookPath("javac")
	java, errJ := exec.LookPath("java")
	needs(t, errC == nil && errJ == nil, "a JDK (javac, java)")
	cp, err := javaClasspath()
	if err != nil {
		// clients/java/classpath.sh names the Debian package of a missing jar.
		needs(t, false, "Java's classpath: "+cp)
	}
	return javac, java, cp
}

// TestJavaClient compiles the Java example of docs/clients.md against the
// classpath `make java-classpath` prints (no Maven), and runs it.
func TestJavaClient(t *testing.T) {
	t.Parallel()
	javac, java, cp := needsJava(t)
	e := start(t)
	classes := t.TempDir()
	if out, err := exec.Command(javac, "-nowarn", "-d", classes, "-cp", cp, "../../test/java/KeyserviceE2E.java").CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, "-cp", classes+":"+cp, "KeyserviceE2E")
	cmd.Env = append(os.Environ(), "KEYSERVICE_ADDR="+e.srv.GRPCAddr().String(), "KEYSERVICE_ADMIN_TOKEN="+adminToken)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("java client: %v\n%s", err, out)
	}
	checkE2E(t, "java", out)
}

// TestJavaVerifyPasted: the Verify.java docs/clients.md shows, pasted into
// an empty directory, compiles and runs with the commands shown there.
func TestJavaVerifyPasted(t *testing.T) {
	t.Parallel()
	_, _, _ = needsJava(t)
	docs, err := os.ReadFile("../../docs/clients.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(docs), "```java\n// Verify.java")
	code, _, ok2 := strings.Cut(rest, "```")
	_, cmds, ok3 := strings.Cut(rest, "```sh\n")
	cmds, _, ok4 := strings.Cut(cmds, "```")
	if !ok || !ok2 || !ok3 || !ok4 {
		t.Fatal("docs/clients.md shows no Verify.java followed by its commands")
	}
	src, err := os.ReadFile("../../clients/java/Verify.java")
	if err != nil || "// Verify.java"+code != string(src) {
		t.Fatal("docs/clients.md's Verify.java is not clients/java/Verify.java word for word")
	}
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	key, err := e.grpc.CreateKey(admin(ctx), &keyservicev1.CreateKeyRequest{Name: "java", Owner: "acme-java"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Verify.java"), []byte("// Verify.java"+code), 0o644); err != nil {
		t.Fatal(err)
	}
	repo, _ := filepath.Abs("../..")
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", cmds)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KEYSERVICE_REPO="+repo, "KEYSERVICE_ADDR="+e.srv.GRPCAddr().String(), "KEY="+key.GetSecret())
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "true CODE_VALID acme-java" {
		t.Fatalf("the docs' commands: %v\n%s", err, out)
	}
}

// TestJavaClasspathNamesAMissingPackage: without Debian's jars, the
// classpath fails naming the packages to install, not with javac's
// thousands of errors.
func TestJavaClasspathNamesAMissingPackage(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("../../clients/java/classpath.sh")
	cmd.Env = append(os.Environ(), "JAVA_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "apt-get install") || !strings.Contains(string(out), "libprotobuf-java") || !strings.Contains(string(out), "libgrpc-java") {
		t.Fatalf("classpath.sh without jars: %v\n%s", err, out)
	}
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
