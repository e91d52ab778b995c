package agent

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
)

// landingPage is the page served at /: links only to what this handler
// serves (the profiling links only with --web.enable-pprof).
func landingPage(o HandlerOptions) (http.Handler, error) {
	profiling := "false"
	if o.EnablePprof {
		profiling = "true"
	}
	return web.NewLandingPage(web.LandingConfig{
		Name:        "azurelinux-probe",
		Description: "Facts about Azure Linux hosts: kernel, Hyper-V, GPU drivers, eBPF, systemd and userland",
		Version:     version.Info(),
		Links: []web.LandingLinks{
			{Address: o.TelemetryPath, Text: "Metrics"},
			{Address: "/-/healthy", Text: "Health"},
			{Address: "/-/ready", Text: "Readiness"},
		},
		Profiling: profiling,
	})
}

// addPprof serves the runtime profiles that the landing page links to
// (exporter-toolkit web/landing_page.html: debug/pprof/heap and
// debug/pprof/profile) and the rest of net/http/pprof's index.
func addPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
