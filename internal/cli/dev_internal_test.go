package cli

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// The development server listens on loopback unless told otherwise.
func TestDevListensOnLoopbackByDefault(t *testing.T) {
	t.Parallel()
	d := devDefaults()
	for _, addr := range []string{d.GRPCAddr, d.HTTPAddr} {
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			t.Errorf("dev listens on %q, want a loopback address", addr)
		}
	}
}

// The development admin token is kept with the data: the same one next
// time, readable by its owner only.
func TestDevTokenIsKeptWithTheData(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ".data", "admin-token")
	first, note1, err := devToken(path)
	if err != nil {
		t.Fatal(err)
	}
	second, note2, err := devToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if first != second || note1 == note2 {
		t.Fatalf("tokens %q then %q (%q, %q): want the same, said differently", first, second, note1, note2)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st.Mode(), err)
	}
}

// A token file planted by someone else, or readable by others, is refused.
func TestDevTokenFileMustBePrivate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(path, []byte("dev_planted-token-0123456789\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := devToken(path); err == nil {
		t.Fatal("a world-readable token file was used")
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, _, err := devToken(link); err == nil {
		t.Fatal("a symlinked token file was used")
	}
}
