package agent

import (
	"os"
	"testing"
)

// runMainEnv makes the test binary act as azurelinux-probe itself when a
// test starts it as a child (rpmLister's `rpm-packages`).
const runMainEnv = "AZURELINUX_PROBE_AGENT_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
