package collectors

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

func init() {
	register(Spec{
		Name:           "os",
		DefaultEnabled: true,
		Interval:       15 * time.Second,
		Timeout:        5 * time.Second,
		New:            newOSCollector,
	})
}

// osInfoKeys are the os-release keys exported as labels of
// azurelinux_os_info, in label order.
var osInfoKeys = []string{"ID", "ID_LIKE", "NAME", "PRETTY_NAME", "VERSION", "VERSION_ID", "VARIANT_ID", "BUILD_ID", "RELEASE_TYPE"}

// lowerAll returns the os-release keys as label names.
func lowerAll(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.ToLower(k)
	}
	return out
}

var osInfoFact = declare(Fact{
	Collector: "os", Name: "info",
	Help:   "Operating system identity from os-release; constant 1.",
	Labels: lowerAll(osInfoKeys),
})

var osVersionFact = declare(Fact{
	Collector: "os", Name: "version",
	Help:     "VERSION_ID of os-release as a number (4.0 reads 4).",
	Labels:   []string{"id"},
	Identity: []string{"id"},
})

var osSupportEndTimestampSecondsFact = declare(Fact{
	Collector: "os", Name: "support_end_timestamp_seconds",
	Help:     "SUPPORT_END of os-release as a Unix timestamp (start of that day, UTC).",
	Labels:   []string{"id"},
	Identity: []string{"id"}, Volatile: true,
})

type osCollector struct {
	paths Paths
}

func newOSCollector(env Env, _ any) (Collector, error) {
	return &osCollector{
		paths: env.Paths,
	}, nil
}

func (c *osCollector) Update(_ context.Context, m *Metrics) error {
	vars, path, perr := host.ReadOSRelease(c.paths.Root())
	if isNotExist(perr) {
		return fmt.Errorf("no os-release: neither /etc/os-release nor /usr/lib/os-release under %s", c.paths.RootFS)
	}
	if vars == nil {
		return perr
	}
	if len(vars) == 0 {
		if perr != nil {
			return perr
		}
		return fmt.Errorf("%s: no KEY=value lines", path)
	}

	values := make([]string, len(osInfoKeys))
	for i, k := range osInfoKeys {
		values[i] = vars[k]
	}
	m.Set(osInfoFact, 1, values...)
	id := vars["ID"]
	if v, ok := vars["VERSION_ID"]; ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			m.Set(osVersionFact, f, id)
		}
	}
	if v, ok := vars["SUPPORT_END"]; ok {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return errors.Join(perr, fmt.Errorf("%s: SUPPORT_END is not YYYY-MM-DD (%s)", path, host.Invalid(v)))
		}
		m.Set(osSupportEndTimestampSecondsFact, float64(t.Unix()), id)
	}
	return perr
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
