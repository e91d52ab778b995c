package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

// TestConfigFileFIFO: a FIFO or a link to /dev/zero as --config.file fails
// at once, naming the file, instead of hanging the daemon's start or its
// reload loop (issue 14, case 8).
func TestConfigFileFIFO(t *testing.T) {
	_, fifo, zero := treetest.Traps(t, "config.yml", "zero.yml")
	for _, p := range []string{fifo, zero} {
		treetest.Within(t, 5*time.Second, func() {
			if _, err := loadConfig(p); err == nil || !strings.Contains(err.Error(), p+": not a regular file") {
				t.Errorf("loadConfig(%s): %v", p, err)
			}
		})
	}
}
