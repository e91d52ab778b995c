package heapprofile

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestInitTurnsSamplingOff checks that the package's init left heap
// sampling off in this test binary, and that Enable restores the default
// rate, unless GODEBUG set one (then both leave it alone).
func TestInitTurnsSamplingOff(t *testing.T) {
	if strings.Contains(os.Getenv("GODEBUG"), "memprofilerate=") {
		t.Skip("GODEBUG sets the rate")
	}
	if runtime.MemProfileRate != 0 {
		t.Fatalf("MemProfileRate = %d after init, want 0", runtime.MemProfileRate)
	}
	Enable()
	if runtime.MemProfileRate != DefaultRate {
		t.Fatalf("MemProfileRate = %d after Enable, want %d", runtime.MemProfileRate, DefaultRate)
	}
	Enable() // idempotent
	if runtime.MemProfileRate != DefaultRate {
		t.Fatalf("MemProfileRate = %d after a second Enable", runtime.MemProfileRate)
	}
}

// TestGODEBUGRateWins runs this test binary again with
// GODEBUG=memprofilerate=4096: the rate the operator chose stays, through
// init and Enable.
func TestGODEBUGRateWins(t *testing.T) {
	if os.Getenv("HEAPPROFILE_CHILD") == "1" {
		Enable()
		if runtime.MemProfileRate != 4096 {
			t.Fatalf("MemProfileRate = %d, want GODEBUG's 4096", runtime.MemProfileRate)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGODEBUGRateWins$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HEAPPROFILE_CHILD=1", "GODEBUG=memprofilerate=4096")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
