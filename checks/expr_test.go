package checks

import (
	"strings"
	"testing"
)

func TestParseExpr(t *testing.T) {
	for _, tc := range []struct {
		in       string
		quant    string
		metric   string
		matchers int
		op       string
		value    float64
	}{
		{"azurelinux_kernel_info", "any", "azurelinux_kernel_info", 0, "", 0},
		{`azurelinux_kernel_info{series="6.18"}`, "any", "azurelinux_kernel_info", 1, "", 0},
		{`  azurelinux_systemd_version>=258 `, "any", "azurelinux_systemd_version", 0, ">=", 258},
		{`all azurelinux_gpu_device_info{driver!=""}`, "all", "azurelinux_gpu_device_info", 1, "", 0},
		{`none azurelinux_hyperv_vmbus_device_info{driver="", class=~"net.*|storage"}`, "none", "azurelinux_hyperv_vmbus_device_info", 2, "", 0},
		{`azurelinux_kernel_lsm_enabled{lsm="bpf",} == 1`, "any", "azurelinux_kernel_lsm_enabled", 1, "==", 1},
		{`azurelinux_kernel_tainted != 0`, "any", "azurelinux_kernel_tainted", 0, "!=", 0},
		{`azurelinux_host_memory_bytes < 1e9`, "any", "azurelinux_host_memory_bytes", 0, "<", 1e9},
		{`any_metric_named_any`, "any", "any_metric_named_any", 0, "", 0},
		{`all{}`, "any", "all", 0, "", 0}, // a metric called "all"
	} {
		e, err := ParseExpr(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if e.Quantifier != tc.quant || e.Metric != tc.metric || len(e.Matchers) != tc.matchers || e.Op != tc.op || e.Value != tc.value {
			t.Errorf("%q: got %+v", tc.in, e)
		}
	}
}

func TestParseExprErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                                    "want a metric name",
		"any ":                                "want a metric name",
		"9metric":                             "want a metric name",
		`m{series=6.18}`:                      "want a double-quoted value",
		`m{series="6.18"`:                     "want ',' or '}'",
		`m{series="6.18}`:                     "unterminated",
		`m{="x"}`:                             "want a label name",
		`m{a~"x"}`:                            "want =, !=, =~ or !~",
		`m{a=~"("}`:                           "invalid regular expression",
		`m >`:                                 "want a number after >",
		`m >= NaN`:                            "want a number",
		`m >= 1 2`:                            "want a number",
		`m and n`:                             "want a comparison",
		`sum(azurelinux_gpu_devices) > 1`:     "want a comparison",
		`azurelinux_systemd_version => 258`:   "want a comparison",
		`azurelinux_systemd_version >= "258"`: "want a number",
	} {
		_, err := ParseExpr(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to contain %q", in, err, want)
		}
	}
}

// series builds the facts of a host: one GPU without a driver, one with.
var gpuSeries = []Series{
	{Name: "azurelinux_gpu_device_info", Labels: map[string]string{"pci_address": "0001:00:00.0", "driver": "nvidia"}, Value: 1},
	{Name: "azurelinux_gpu_device_info", Labels: map[string]string{"pci_address": "0002:00:00.0", "driver": ""}, Value: 1},
	{Name: "azurelinux_systemd_version", Labels: map[string]string{}, Value: 258.4},
}

func TestExprEval(t *testing.T) {
	for _, tc := range []struct {
		expr   string
		pass   bool
		reason string
	}{
		{`azurelinux_systemd_version >= 258`, true, "azurelinux_systemd_version 258.4"},
		{`azurelinux_systemd_version >= 259`, false, "azurelinux_systemd_version 258.4"},
		{`azurelinux_systemd_version == 258.4`, true, ""},
		{`azurelinux_gpu_device_info{driver="nvidia"}`, true, `{driver="nvidia"} 1`},
		{`azurelinux_gpu_device_info{driver="amdgpu"}`, false, `no series matches azurelinux_gpu_device_info{driver="amdgpu"}; found azurelinux_gpu_device_info{driver="nvidia"}, azurelinux_gpu_device_info{driver=""}`},
		{`none azurelinux_gpu_device_info{driver=""}`, false, `pci_address="0002:00:00.0"`},
		{`none azurelinux_gpu_device_info{driver="amdgpu"}`, true, "no series matches"},
		{`all azurelinux_gpu_device_info{driver!=""}`, true, ""},
		{`all azurelinux_gpu_device_info{driver=~"nv.*"}`, true, ""},
		{`all azurelinux_gpu_device_info{driver=~"nv"}`, false, "no series matches"}, // anchored
		{`all azurelinux_gpu_device_info{driver!~"nvidia|amdgpu"}`, true, ""},
		{`all azurelinux_gpu_device_info == 2`, false, "fails == 2"},
		{`azurelinux_gpu_device_info{missing_label=""}`, true, ""}, // a missing label reads as ""
	} {
		e, err := ParseExpr(tc.expr)
		if err != nil {
			t.Fatalf("%q: %v", tc.expr, err)
		}
		pass, reason := e.eval(gpuSeries)
		if pass != tc.pass || !strings.Contains(reason, tc.reason) {
			t.Errorf("%q: pass %v reason %q; want %v and %q", tc.expr, pass, reason, tc.pass, tc.reason)
		}
	}
}
