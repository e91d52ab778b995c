package collectors

import (
	"errors"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
)

// The ebpf collector's feature matrix: which watched program and map types
// the running kernel loads, from cilium/ebpf's feature probes.

var ebpfProgramTypeSupportedFact = declare(Fact{
	Collector: "ebpf", Name: "program_type_supported",
	Help:     "1 when the kernel loads programs of the type, 0 when it does not (cilium/ebpf features probe); no series when the probe was inconclusive; live only.",
	Labels:   []string{"type"},
	Identity: []string{"type"}, Bound: "the watched program types (collectors.ebpf.program_types)",
})

var ebpfMapTypeSupportedFact = declare(Fact{
	Collector: "ebpf", Name: "map_type_supported",
	Help:     "1 when the kernel creates maps of the type, 0 when it does not (cilium/ebpf features probe); no series when the probe was inconclusive; live only.",
	Labels:   []string{"type"},
	Identity: []string{"type"}, Bound: "the watched map types (collectors.ebpf.map_types)",
})

var ebpfFeatureProbeInconclusiveFact = declare(Fact{
	Collector: "ebpf", Name: "feature_probe_inconclusive",
	Help:     "1 for each program or map type (kind is program or map) whose feature probe failed without an answer, for example refused with EPERM; the error is logged. Live only.",
	Labels:   []string{"kind", "type"},
	Identity: []string{"kind", "type"}, Bound: "the watched program and map types",
})

// updateFeatures probes each watched program and map type. cilium/ebpf
// caches conclusive answers for the life of the process, which for this
// isolated collector is one refresh: every refresh pays for them (about
// half a second; tracing and lsm parse the kernel BTF). lacking names the
// capabilities the probe lacks that some types need (CAP_NET_ADMIN for
// xdp, sched_cls, cgroup_sock..., CAP_PERFMON for tracing types), for the
// log.
func (c *ebpfCollector) updateFeatures(m *Metrics, lacking []string) {
	for _, t := range c.progTypes {
		c.feature(m, ebpfProgramTypeSupportedFact, "program", typeName(progTypeNames, t),
			features.HaveProgramType(ebpf.ProgramType(t)), lacking)
	}
	for _, t := range c.mapTypes {
		c.feature(m, ebpfMapTypeSupportedFact, "map", typeName(mapTypeNames, t),
			features.HaveMapType(ebpf.MapType(t)), lacking)
	}
}

// feature emits one probe's answer. Only success and ErrNotSupported are
// answers: any other error (EPERM from a kernel that refuses the probe
// program, or from missing capabilities) is logged and gives no series,
// never a false 0.
func (c *ebpfCollector) feature(m *Metrics, fact *Fact, kind, name string, err error, lacking []string) {
	switch {
	case err == nil:
		m.Set(fact, 1, name)
	case errors.Is(err, ebpf.ErrNotSupported):
		m.Set(fact, 0, name)
	default:
		m.Set(ebpfFeatureProbeInconclusiveFact, 1, kind, name)
		args := []any{"kind", kind, "type", name, "err", err}
		if errors.Is(err, os.ErrPermission) && len(lacking) > 0 {
			args = append(args, "hint", "the probe lacks "+strings.Join(lacking, " and ")+", which some types need")
		}
		c.logger.Error("eBPF feature probe inconclusive", args...)
	}
}
