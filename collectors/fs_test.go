package collectors

import (
	"testing"
)

func TestLive(t *testing.T) {
	if !DefaultPaths("/").Live() {
		t.Error("/proc is not recognised as the live procfs")
	}
	if DefaultPaths(t.TempDir()).Live() {
		t.Error("an empty tree is taken for the live procfs")
	}
}
