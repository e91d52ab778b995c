package factsdoc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func doc(collectors ...CollectorFacts) *Doc { return &Doc{Collectors: collectors} }

func kernelFacts(release string, nvidia float64, config string) CollectorFacts {
	return CollectorFacts{Name: "kernel", Success: true, DurationSeconds: 0.01, Metrics: []Sample{
		{Name: "azurelinux_kernel_info", Labels: map[string]string{"release": release, "series": "6.18", "version": "#1 SMP"}, Value: 1},
		{Name: "azurelinux_kernel_module_loaded", Labels: map[string]string{"module": "nvidia"}, Value: nvidia},
		{Name: "azurelinux_kernel_module_loaded", Labels: map[string]string{"module": "hv_vmbus"}, Value: 1},
		{Name: "azurelinux_kernel_config_info", Labels: map[string]string{"option": "CONFIG_BPF_LSM", "value": config}, Value: 1},
		{Name: "azurelinux_kernel_taint_flag", Labels: map[string]string{"flag": "P", "reason": "proprietary_module"}, Value: nvidia},
	}}
}

func gpuFacts(driver string) CollectorFacts {
	return CollectorFacts{Name: "gpu", Success: true, Metrics: []Sample{
		{Name: "azurelinux_gpu_device_info", Labels: map[string]string{"pci_address": "0001:00:00.0", "vendor": "nvidia", "driver": driver, "model": "H100"}, Value: 1},
		{Name: "azurelinux_gpu_devices", Labels: map[string]string{"vendor": "nvidia", "driver": driver}, Value: 1},
		{Name: "azurelinux_gpu_refresh_seconds", Value: 0.3},
	}}
}

func TestCompare(t *testing.T) {
	base := doc(kernelFacts("6.18.5-1.8.azl4.x86_64", 1, "y"), gpuFacts("nvidia"),
		CollectorFacts{Name: "os", Success: true, Metrics: []Sample{{Name: "azurelinux_os_version", Labels: map[string]string{"id": "azurelinux"}, Value: 4}}})
	now := doc(kernelFacts("6.18.31-1.3.azl4.x86_64", 0, "y"), gpuFacts(""),
		CollectorFacts{Name: "os", Success: false, Error: "no os-release"},
		CollectorFacts{Name: "ebpf", Success: true})
	drifts, skipped := Compare(base, now)
	want := []Drift{
		{"gpu", `azurelinux_gpu_device_info{pci_address="0001:00:00.0"}`,
			`{driver="nvidia",model="H100",vendor="nvidia"}`, `{driver="",model="H100",vendor="nvidia"}`},
		{"gpu", `azurelinux_gpu_devices{driver="",vendor="nvidia"}`, "", "1"},
		{"gpu", `azurelinux_gpu_devices{driver="nvidia",vendor="nvidia"}`, "1", ""},
		{"kernel", "azurelinux_kernel_info",
			`{release="6.18.5-1.8.azl4.x86_64",series="6.18",version="#1 SMP"}`, `{release="6.18.31-1.3.azl4.x86_64",series="6.18",version="#1 SMP"}`},
		{"kernel", `azurelinux_kernel_module_loaded{module="nvidia"}`, "1", "0"},
		{"kernel", `azurelinux_kernel_taint_flag{flag="P",reason="proprietary_module"}`, "1", "0"},
	}
	if !reflect.DeepEqual(drifts, want) {
		t.Errorf("drift:\n%s\nwant:\n%s", js(drifts), js(want))
	}
	if !reflect.DeepEqual(skipped, []string{"os: failed now", "ebpf: not in the baseline"}) {
		t.Errorf("skipped: %q", skipped)
	}
	if d, _ := Compare(base, base); len(d) != 0 {
		t.Errorf("a baseline drifts from itself: %v", d)
	}
}

func js(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		s         Sample
		key, want string
	}{
		{Sample{Name: "azurelinux_kernel_tainted", Value: 0}, "azurelinux_kernel_tainted", "0"},
		{Sample{Name: "azurelinux_kernel_config_info", Labels: map[string]string{"option": "CONFIG_X", "value": "m"}, Value: 1},
			`azurelinux_kernel_config_info{option="CONFIG_X"}`, `{value="m"}`},
		{Sample{Name: "azurelinux_os_info", Labels: map[string]string{"id": "azurelinux", "version_id": "4.0"}, Value: 1},
			"azurelinux_os_info", `{id="azurelinux",version_id="4.0"}`},
		{Sample{Name: "azurelinux_userland_tool_info", Labels: map[string]string{"tool": "openssl", "version": "3.5.4", "path": "/usr/bin/openssl"}, Value: 1},
			`azurelinux_userland_tool_info{tool="openssl"}`, `{path="/usr/bin/openssl",version="3.5.4"}`},
		// Not an _info metric, but its declaration names the tag by name:
		// a changed value is one drifted fact, not one gone and one new.
		{Sample{Name: "azurelinux_azure_instance_tag", Labels: map[string]string{"name": "team", "value": "gpu"}, Value: 1},
			`azurelinux_azure_instance_tag{name="team"}`, `{value="gpu"}`},
		{Sample{Name: "azurelinux_kernel_module_loaded", Labels: map[string]string{"module": "nvidia"}, Value: 0},
			`azurelinux_kernel_module_loaded{module="nvidia"}`, "0"},
		// A metric nothing declares (a baseline of another version): every
		// label identifies it.
		{Sample{Name: "azurelinux_gone_info", Labels: map[string]string{"a": "b"}, Value: 1},
			`azurelinux_gone_info{a="b"}`, "1"},
	} {
		if k := Key(tc.s); k != tc.key {
			t.Errorf("Key(%v) = %q, want %q", tc.s, k, tc.key)
		}
		if v := value(tc.s); v != tc.want {
			t.Errorf("value(%v) = %q, want %q", tc.s, v, tc.want)
		}
	}
}

func TestVolatileFactsIgnored(t *testing.T) {
	base := doc(CollectorFacts{Name: "ebpf", Success: true, Metrics: []Sample{
		{Name: "azurelinux_ebpf_programs_loaded", Labels: map[string]string{"type": "kprobe"}, Value: 3},
		{Name: "azurelinux_ebpf_canary_load_duration_seconds", Value: 0.01},
		{Name: "azurelinux_systemd_unit_restarts_total", Labels: map[string]string{"name": "x"}, Value: 1},
	}})
	now := doc(CollectorFacts{Name: "ebpf", Success: true, Metrics: []Sample{
		{Name: "azurelinux_ebpf_programs_loaded", Labels: map[string]string{"type": "kprobe"}, Value: 9},
		{Name: "azurelinux_ebpf_canary_load_duration_seconds", Value: 0.02},
	}})
	if d, _ := Compare(base, now); len(d) != 0 {
		t.Errorf("volatile facts drifted: %v", d)
	}
}

func TestSaveAndLoadBaseline(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "baseline.json")
	b, _ := json.Marshal(doc(kernelFacts("6.18.31", 0, "y")))
	if err := Save(path, b); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, b); err != nil { // over an existing file
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after saving, want only the baseline (no temporary file left)", len(entries))
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Collectors) != 1 || got.Collectors[0].Name != "kernel" || len(got.Collectors[0].Metrics) != 5 {
		t.Errorf("loaded %+v", got)
	}
	if err := Save(filepath.Join(dir, "missing", "b.json"), b); err == nil {
		t.Error("saving into a missing directory succeeded")
	}
}

// TestLoadBaselineCorrupt: every broken baseline is reported as such, with
// the file's name, and is never modified.
func TestLoadBaselineCorrupt(t *testing.T) {
	good, _ := json.Marshal(doc(kernelFacts("6.18.31", 0, "y")))
	for name, tc := range map[string]struct {
		content string
		want    string
	}{
		"empty":         {"", "empty file"},
		"truncated":     {string(good[:len(good)/2]), "JSON ends early"},
		"garbage":       {"\x00\x01binary", "invalid JSON at byte 1"},
		"not facts":     {`{"checks": []}`, `no "collectors" list`},
		"wrong type":    {`{"collectors": 3}`, "not a facts document"},
		"trailing data": {string(good) + "\n{}", "data after the JSON document"},
		"no name":       {`{"collectors":[{"success":true}]}`, "collector #1 has no name"},
		"duplicate":     {`{"collectors":[{"name":"os"},{"name":"os"}]}`, "collector os appears twice"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "baseline.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path+" is corrupt or truncated") {
				t.Errorf("error %v, want %q about %s", err, tc.want, path)
			}
			after, _ := os.ReadFile(path)
			if string(after) != tc.content {
				t.Error("the baseline was modified")
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing baseline: %v", err)
	}
}
