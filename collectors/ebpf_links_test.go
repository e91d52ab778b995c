package collectors

import (
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
)

// TestEBPFLinksVerdicts: an attach that works is 1, one the kernel refuses
// is 0, and an inconclusive one (EPERM) has no series (logged, the other
// types still served); a fixture tree is not the running kernel: no data.
func TestEBPFLinksVerdicts(t *testing.T) {
	if !DefaultPaths("/").Live() {
		t.Skip("/proc is not this process's procfs")
	}
	answers := map[string]error{"kprobe_multi": ebpf.ErrNotSupported, "uprobe_multi": nil, "fentry": syscall.EPERM}
	var log strings.Builder
	c := &ebpfLinksCollector{paths: DefaultPaths("/"), logger: slog.New(slog.NewTextHandler(&log, nil)),
		probe: func(typ string) error { return answers[typ] }}
	got, err := collectOnce(t, c)
	if err != nil || !strings.Contains(log.String(), "type=fentry err=\"operation not permitted\"") {
		t.Errorf("error %v, log %q: want success and fentry's EPERM logged", err, log.String())
	}
	want := map[string]float64{
		`azurelinux_ebpf_link_type_supported{type="kprobe_multi"}`: 0,
		`azurelinux_ebpf_link_type_supported{type="uprobe_multi"}`: 1,
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	tree := &ebpfLinksCollector{paths: treePaths(t, "azl4-azure-gen2"), probe: func(string) error { t.Fatal("probed a tree"); return nil }}
	if _, err := collectOnce(t, tree); !errors.Is(err, ErrNoData) {
		t.Errorf("on a fixture tree: %v, want ErrNoData", err)
	}
}
