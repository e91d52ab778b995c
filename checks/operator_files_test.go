package checks

import (
	"strings"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

// TestOperatorFilesFIFO: a FIFO (or a link to /dev/zero) as a checks.d file
// fails at once with an error naming it, instead of
// blocking in open(2) until a writer comes (issue 14, case 8).
func TestOperatorFilesFIFO(t *testing.T) {
	dir, fifo, zero := treetest.Traps(t, "50-fifo.yml", "60-zero.yml")
	treetest.Within(t, 5*time.Second, func() {
		_, err := LoadAll(true, dir)
		if err == nil || !strings.Contains(err.Error(), fifo+": not a regular file (a FIFO)") ||
			!strings.Contains(err.Error(), zero+": not a regular file (a character device)") {
			t.Errorf("LoadAll: %v", err)
		}
	})
}
