package collectors

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

type osCollector struct {
	paths      Paths
	info       *prometheus.Desc
	version    *prometheus.Desc
	supportEnd *prometheus.Desc
}

func newOSCollector(env Env, _ any) (Collector, error) {
	labels := make([]string, len(osInfoKeys))
	for i, k := range osInfoKeys {
		labels[i] = strings.ToLower(k)
	}
	return &osCollector{
		paths: env.Paths,
		info: newDesc("os", "info",
			"Operating system identity from os-release; constant 1.", labels...),
		version: newDesc("os", "version",
			"VERSION_ID of os-release as a number (4.0 reads 4).", "id"),
		supportEnd: newDesc("os", "support_end_timestamp_seconds",
			"SUPPORT_END of os-release as a Unix timestamp (start of that day, UTC).", "id"),
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
	m.Gauge(c.info, 1, values...)
	id := vars["ID"]
	if v, ok := vars["VERSION_ID"]; ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			m.Gauge(c.version, f, id)
		}
	}
	if v, ok := vars["SUPPORT_END"]; ok {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return errors.Join(perr, fmt.Errorf("%s: SUPPORT_END is not YYYY-MM-DD (%s)", path, host.Invalid(v)))
		}
		m.Gauge(c.supportEnd, float64(t.Unix()), id)
	}
	return perr
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
