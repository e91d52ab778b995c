package agent

import (
	"reflect"
	"testing"

	"github.com/alecthomas/kingpin/v2"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// TestOptionFlags: --collector.azure.force (an option tagged `flag`) lays
// its value over the configuration file, and an absent flag leaves the
// file's value alone.
func TestOptionFlags(t *testing.T) {
	spec, ok := collectors.Lookup("azure")
	if !ok {
		t.Fatal("no azure collector")
	}
	for _, tc := range []struct {
		name, config string
		args         []string
		want         bool
	}{
		{"default", "", nil, false},
		{"flag", "", []string{"--collector.azure.force"}, true},
		{"flag over the file", "collectors:\n  azure:\n    force: false\n", []string{"--collector.azure.force"}, true},
		{"negated flag over the file", "collectors:\n  azure:\n    force: true\n", []string{"--no-collector.azure.force"}, false},
		{"file without the flag", "collectors:\n  azure:\n    force: true\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := kingpin.New("test", "")
			flags := addOptionFlags(app)
			if _, err := app.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			path := ""
			if tc.config != "" {
				path = writeConfig(t, tc.config)
			}
			cfg, err := loadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			applyOptionFlags(cfg, flags)
			opts, err := cfg.options(spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := reflect.ValueOf(opts).Elem().FieldByName("Force").Bool(); got != tc.want {
				t.Errorf("force = %v, want %v", got, tc.want)
			}
			// Other options keep their defaults.
			if ep := reflect.ValueOf(opts).Elem().FieldByName("Endpoint").String(); ep != collectors.DefaultIMDSEndpoint {
				t.Errorf("endpoint = %q, want the default", ep)
			}
		})
	}
}
