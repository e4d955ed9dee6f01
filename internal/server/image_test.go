package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/testdb"
)

// TestContainerImageServes builds the image (make image, with podman),
// exports its filesystem, and runs its entrypoint from that filesystem,
// chrooted, as the image's user, against the test PostgreSQL: `podman run`
// cannot set up cgroups on this machine. A key is then created and
// validated over both ports.
func TestContainerImageServes(t *testing.T) {
	t.Parallel() // the image build is slow (a static build, podman): overlap it
	podman, err := exec.LookPath("podman")
	needs(t, err == nil, "podman")
	if os.Geteuid() != 0 {
		needs(t, false, "root (to chroot into the image's filesystem)")
	}
	image := fmt.Sprintf("localhost/keyservice-test:%d", time.Now().UnixNano())
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = "../.."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("make", "image", "IMAGE="+image, "IMAGE_CONTEXT="+t.TempDir()) // its own staging folder
	t.Cleanup(func() { _ = exec.Command(podman, "rmi", "-f", image).Run() })
	ctr := run(podman, "create", image)
	t.Cleanup(func() { _ = exec.Command(podman, "rm", "-f", ctr).Run() })
	root := t.TempDir()
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	run(podman, "export", "-o", tarball, ctr)
	run("tar", "-xf", tarball, "-C", root)

	// What the image holds, and what it does not.
	for _, want := range []string{"usr/local/bin/keyservice", "etc/ssl/certs/ca-certificates.crt", "usr/share/zoneinfo/Europe/Paris", "etc/passwd"} {
		if _, err := os.Stat(filepath.Join(root, want)); err != nil {
			t.Errorf("image lacks /%s", want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "bin/sh")); err == nil {
		t.Error("image has a shell")
	}
	user := run(podman, "image", "inspect", "--format", "{{.Config.User}}", image)
	if user != "65532:65532" {
		t.Fatalf("image user %q, want 65532:65532 (not root)", user)
	}

	u, _ := testdb.New(t)
	grpcAddr, httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "chroot", "--userspec=65532:65532", root, "/usr/local/bin/keyservice", "serve")
	cmd.Env = []string{"DATABASE_URL=" + u, "KEYSERVICE_GRPC_ADDR=" + grpcAddr, "KEYSERVICE_HTTP_ADDR=" + httpAddr,
		"KEYSERVICE_ADMIN_TOKENS=" + adminToken, "KEYSERVICE_LOG_LEVEL=warn", "TZ=Europe/Paris"}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := keyservicev1.NewKeyServiceClient(conn)
	created, err := client.CreateKey(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken),
		&keyservicev1.CreateKeyRequest{Name: "image", Owner: "acme"})
	if err != nil {
		t.Fatalf("CreateKey: %v\n%s", err, logs.String())
	}
	if r, err := client.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: created.GetSecret()}); err != nil || !r.GetValid() {
		t.Fatalf("gRPC Validate: %v %v", r, err)
	}
	resp, err := http.Post("http://"+httpAddr+"/v1/keys:validate", "application/json", strings.NewReader(fmt.Sprintf(`{"key":%q}`, created.GetSecret())))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("REST Validate: %v %v", resp, err)
	}
	resp.Body.Close()
}
