package collectors

import (
	"fmt"
	"os"

	"github.com/azurelinux-probe/azurelinux-probe/bpf"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// The ebpf collector's canary: whether a real CO-RE program (bpf/canary.c)
// loads, attaches and runs on the running kernel right now.

var ebpfCanarySuccessFact = declare(Fact{
	Collector: "ebpf", Name: "canary_success",
	Help:     "1 when the canary CO-RE program got through the stage (load, attach, run) in the latest refresh, 0 when it or an earlier stage failed. Live only.",
	Labels:   []string{"stage"},
	Identity: []string{"stage"}, Bound: "3 stages",
})

var ebpfCanaryLoadDurationSecondsFact = declare(Fact{
	Collector: "ebpf", Name: "canary_load_duration_seconds",
	Help:     "How long loading the canary took: kernel BTF, CO-RE relocation and verification. Live only.",
	Volatile: true,
})

var ebpfCanaryVerifiedInstructionsFact = declare(Fact{
	Collector: "ebpf", Name: "canary_verified_instructions",
	Help:     "Instructions the verifier processed for the canary (Linux 5.16). Live only.",
	Volatile: true,
})

// updateCanary runs the canary and reports its stages. A failing canary is
// a fact about the kernel, not a failure of the collector: it is logged
// with the verifier's or the kernel's own error text.
func (c *ebpfCollector) updateCanary(m *Metrics) error {
	dev, ino, err := host.NamespaceID("pid")
	if err != nil {
		return fmt.Errorf("canary: %w", err)
	}
	res := bpf.Run(bpf.Target{PIDNamespaceDev: dev, PIDNamespaceIno: ino, TGID: uint32(os.Getpid())})
	for _, s := range bpf.Stages {
		m.SetBool(ebpfCanarySuccessFact, res.Succeeded(s), string(s))
	}
	if res.LoadDuration > 0 {
		m.Set(ebpfCanaryLoadDurationSecondsFact, res.LoadDuration.Seconds())
	}
	if res.HaveVerifiedInstructions {
		m.Set(ebpfCanaryVerifiedInstructionsFact, float64(res.VerifiedInstructions))
	}
	if res.Err != nil {
		c.logger.Error("eBPF canary failed", "passed", string(res.Passed), "err", res.Err)
	}
	return nil
}
