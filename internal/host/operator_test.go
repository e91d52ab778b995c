package host

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

func TestReadRegularFile(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(reg, []byte("collectors: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.yml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.yml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yml")
	if err := os.Symlink(reg, link); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yml")
	if err := os.WriteFile(big, make([]byte, 2049), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"regular", reg, ""},
		{"link to a regular file", link, ""},
		{"fifo", fifo, "not a regular file (a FIFO)"},
		{"link to /dev/zero", zero, "not a regular file (a character device)"},
		{"directory", dir, "not a regular file (a directory)"},
		{"too large", big, "larger than the limit of 2048 bytes"},
		{"missing", filepath.Join(dir, "nope"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			treetest.Within(t, 5*time.Second, func() {
				b, err := ReadRegularFile(tc.path, 2048)
				if tc.want == "" {
					if err != nil || string(b) != "collectors: {}\n" {
						t.Errorf("got %q, %v", b, err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("err %v, want it to say %q", err, tc.want)
				}
				if tc.name == "too large" && !errors.Is(err, ErrTooLarge) {
					t.Errorf("err %v is not ErrTooLarge", err)
				}
			})
		})
	}
}
