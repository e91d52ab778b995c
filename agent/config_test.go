package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// TestDefaultConfigMatchesCode: the embedded default config (also shipped
// as /etc/azurelinux-probe/config.yml) shows every collector's real
// defaults, so that editing a copy of it starts from the truth.
func TestDefaultConfigMatchesCode(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range collectors.Specs() {
		cc := cfg.Collectors[spec.Name]
		if cc.Interval != spec.Interval || cc.Timeout != spec.Timeout {
			t.Errorf("%s: default.yml says interval %s timeout %s, the code %s and %s",
				spec.Name, cc.Interval, cc.Timeout, spec.Interval, spec.Timeout)
		}
		if !strings.Contains(string(defaultConfig), "\n  "+spec.Name+":\n") {
			t.Errorf("default.yml has no section for %s", spec.Name)
		}
		if spec.Options == nil {
			continue
		}
		got, err := cfg.options(spec)
		if err != nil {
			t.Fatal(err)
		}
		if want := spec.Options(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: default.yml options %+v, the code's defaults %+v", spec.Name, got, want)
		}
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigOverlay(t *testing.T) {
	cfg, err := loadConfig(writeConfig(t, "collectors:\n  kernel:\n    interval: 1m\n    modules: [nvidia]\n  os:\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Collectors["kernel"]
	if k.Interval != time.Minute || k.Timeout != 5*time.Second {
		t.Errorf("kernel schedule %s/%s, want 1m/5s (timeout kept from the default)", k.Interval, k.Timeout)
	}
	spec, _ := collectors.Lookup("kernel")
	opts, err := cfg.options(spec)
	if err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(opts).Elem()
	if got := v.FieldByName("Modules").Interface(); !reflect.DeepEqual(got, []string{"nvidia"}) {
		t.Errorf("modules = %v, want the file's [nvidia]", got)
	}
	if got := v.FieldByName("ConfigOptions").Len(); got == 0 {
		t.Error("config_options lost: a key left out of the file must keep its default")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"collectors:\n  kernal:\n    interval: 1m\n", `unknown collector "kernal"`},
		{"colectors:\n  kernel: {}\n", "field colectors not found"},
		{"collectors:\n  kernel:\n    modules: nvidia\n", "cannot unmarshal"},
		{"collectors:\n  kernel:\n    module: [nvidia]\n", "field module not found"},
		{"collectors:\n  os:\n    timeout: 30s\n", "must be above 0 and at most the interval"},
		{"collectors:\n  os:\n    interval: 10ms\n", "shorter than 1s"},
		{"collectors:\n  os:\n    interval: soon\n", "collectors.os"},
		{"collectors:\n  os: [1]\n", "want a mapping"},
		{"collectors:\n  os:\n    colour: blue\n", "takes no options"},
		{"collectors:\n  kernel:\n    config_options: [BPF]\n", `"BPF" does not start with CONFIG_`},
		// The kmsg classification table: a bad rule is named.
		{"collectors:\n  kmsg:\n    categories:\n      - name: mine\n        rules:\n          - name: broken\n            regex: '(unclosed'\n",
			`collector kmsg: kmsg category "mine" rule "broken": error parsing regexp`},
		{"collectors:\n  kmsg:\n    categories:\n      - name: mine\n        rules:\n          - name: r\n            regexp: 'x'\n", "field regexp not found"},
	} {
		cfg, err := loadConfig(writeConfig(t, tc.text))
		if err == nil {
			_, err = buildSetInProcess(cfg, []string{"os", "kernel", "kmsg"}, collectors.Env{Paths: collectors.DefaultPaths("/"), Logger: discard()})
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.text, err, tc.want)
		}
	}
	if _, err := loadConfig("/nonexistent/config.yml"); err == nil {
		t.Error("a missing config file was accepted")
	}
}
