package collectors

import (
	"errors"
	"os"
	"testing"
)

// TestLiveHyperVAndGPU runs both collectors on this host: whatever it is,
// they must succeed (ErrNoData counts as success), and their answers must
// agree with what the host plainly has.
func TestLiveHyperVAndGPU(t *testing.T) {
	if _, err := os.Stat("/sys/bus"); err != nil {
		t.Skip("no sysfs on this host")
	}
	paths := DefaultPaths("/")
	hv, err := runCollector(t, "hyperv", paths)
	if err != nil && !errors.Is(err, ErrNoData) {
		t.Errorf("hyperv: %v", err)
	}
	_, vmbus := os.Stat("/sys/bus/vmbus")
	if guest := hv["azurelinux_hyperv_guest"]; (vmbus == nil) && guest != 1 {
		t.Errorf("/sys/bus/vmbus exists but guest = %v", guest)
	}
	if hv["azurelinux_hyperv_guest"] == 0 && !errors.Is(err, ErrNoData) {
		t.Errorf("not a guest, but err = %v, want ErrNoData", err)
	}

	gpu, err := runCollector(t, "gpu", paths)
	if err != nil && !errors.Is(err, ErrNoData) {
		t.Errorf("gpu: %v", err)
	}
	for _, d := range []string{"nvidia", "amdgpu"} {
		if _, ok := gpu[`azurelinux_gpu_driver_loaded{driver="`+d+`"}`]; !ok {
			t.Errorf("driver_loaded{driver=%q} not reported", d)
		}
	}
	if n := len(seriesOf(gpu, "azurelinux_gpu_device_info")); n == 0 && err == nil && gpu[`azurelinux_gpu_driver_loaded{driver="nvidia"}`] == 0 &&
		gpu[`azurelinux_gpu_driver_loaded{driver="amdgpu"}`] == 0 {
		t.Errorf("no GPU and no driver, but err = nil, want ErrNoData")
	}
	t.Logf("hyperv guest=%v; %d GPUs", hv["azurelinux_hyperv_guest"], len(seriesOf(gpu, "azurelinux_gpu_device_info")))
}
