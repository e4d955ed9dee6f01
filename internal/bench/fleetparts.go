package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// The fleet's parts (fleet.go runs the scenario): the nginx in front of
// the replicas, the private Redis behind them, and small helpers.

var fleetNginx = template.Must(template.New("").Parse(`
daemon off;
master_process off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path {{.Dir}}/body;
  proxy_temp_path {{.Dir}}/proxy;
  fastcgi_temp_path {{.Dir}}/fastcgi;
  uwsgi_temp_path {{.Dir}}/uwsgi;
  scgi_temp_path {{.Dir}}/scgi;
  upstream keyservice_http {
{{range .Replicas}}    server {{.HTTP}} max_fails=1 fail_timeout=1s;
{{end}}    keepalive 64;
  }
  upstream keyservice_grpc {
{{range .Replicas}}    server {{.GRPC}} max_fails=1 fail_timeout=1s;
{{end}}    # No idle connections kept: nginx cannot pass a gRPC call on once its
    # body is sent (it is not buffered), so a kept connection that the
    # replica closes as it stops would fail the call sent on it; a new
    # connection refused is passed on.
  }
  server {
    listen 127.0.0.1:{{.HTTPPort}};
    location / {
      proxy_pass http://keyservice_http;
      proxy_connect_timeout 2s;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
      # A replica that shuts down refuses new connections and closes idle
      # ones: the call goes to the next replica. Validate may be retried
      # (non_idempotent): a call the replica never read was never answered.
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_next_upstream_tries 3;
    }
  }
  server {
    listen 127.0.0.1:{{.GRPCPort}} http2;
    location / {
      grpc_pass grpc://keyservice_grpc;
      grpc_connect_timeout 2s;
      grpc_next_upstream error timeout http_502 http_503 non_idempotent;
      grpc_next_upstream_tries 3;
    }
  }
}
`))

// refusalName names a call's error for the report.
func refusalName(err error) string {
	var r *restRefusal
	if errors.As(err, &r) {
		return "HTTP " + strconv.Itoa(r.httpStatus)
	}
	s := err.Error()
	if i := strings.Index(s, "code = "); i >= 0 {
		s = s[i+len("code = "):]
		if j := strings.IndexByte(s, ' '); j > 0 {
			s = s[:j]
		}
		return "gRPC " + s
	}
	return "error"
}

func port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func waitListening(ctx context.Context, addr string) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); sleep(ctx, 20*time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("nothing listens on %s after 10 s", addr)
}

// startRedis runs a private redis-server for the fleet's shared per-key
// budgets.
func startRedis(dir string) (string, func(), error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "", nil, errors.New("--fleet needs redis-server (apt-get install redis-server)")
	}
	addr := freeAddr()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port(addr)), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	if err := waitListening(context.Background(), addr); err != nil {
		stop()
		return "", nil, err
	}
	return "redis://" + addr + "/0", stop, nil
}
