package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
)

// The ebpf_links collector: which eBPF link types runtime security agents
// attach with work on the running kernel, from real attach attempts. It is
// a collector of its own (not part of ebpf.go) so that its probes, which
// load kernel BTF for fentry, run in their own child process and schedule.
//
// Why these three: Tetragon and Falco's modern probe attach kprobe_multi
// (many kernel functions in one link, Linux 5.18, needs CONFIG_FPROBE,
// kernel/trace/bpf_trace.c bpf_kprobe_multi_link_attach returns
// -EOPNOTSUPP without it), uprobe_multi (Linux 6.6, needs CONFIG_UPROBES)
// and fentry (BPF trampolines, needs
// CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS on x86_64, kernel/bpf/trampoline.c).
// Azure Linux 4.0 builds x86_64 without CONFIG_FPROBE, so kprobe_multi
// fails there while aarch64 has it.
func init() {
	register(Spec{
		Name:           "ebpf_links",
		DefaultEnabled: true,
		Interval:       30 * time.Minute, // the kernel's answer changes only with the kernel
		Timeout:        30 * time.Second,
		// The fentry probe loads the kernel's BTF (several MB of heap).
		Isolated: true,
		New: func(env Env, _ any) (Collector, error) {
			logger := env.Logger
			if logger == nil {
				logger = slog.New(slog.DiscardHandler)
			}
			return &ebpfLinksCollector{paths: env.Paths, logger: logger, probe: probeLinkTypes}, nil
		},
	})
}

var ebpfLinkTypeSupported = declare(Fact{
	Collector: "ebpf_links", Subsystem: "ebpf", Name: "link_type_supported",
	Help:     "1 when a program attaches with the link type on the running kernel, 0 when the kernel refuses it (kprobe_multi without CONFIG_FPROBE); no series when the attempt was inconclusive (refused with EPERM by a sandbox or an LSM policy; the log says why). From a real attach attempt; live only.",
	Labels:   []string{"type"},
	Identity: []string{"type"}, Bound: "3 link types: kprobe_multi, uprobe_multi, fentry",
})

// ebpfLinkTypes are the link types probed, in order.
var ebpfLinkTypes = []string{"kprobe_multi", "uprobe_multi", "fentry"}

type ebpfLinksCollector struct {
	paths  Paths
	logger *slog.Logger
	// probe attaches with one link type: nil when it worked,
	// ebpf.ErrNotSupported when the kernel refuses the type, another error
	// when the attempt says nothing (EPERM without CAP_BPF). Tests replace
	// it.
	probe func(typ string) error
}

func (c *ebpfLinksCollector) Update(ctx context.Context, m *Metrics) error {
	// Attach attempts answer for the kernel this process runs on, which is
	// the host only when procfs is the live one (not a fixture tree or an
	// image).
	if !c.paths.Live() {
		return ErrNoData
	}
	for _, typ := range ebpfLinkTypes {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := c.probe(typ)
		switch {
		case err == nil:
			m.Set(ebpfLinkTypeSupported, 1, typ)
		case errors.Is(err, ebpf.ErrNotSupported):
			m.Set(ebpfLinkTypeSupported, 0, typ)
		default:
			// As the ebpf collector's feature probes: an attempt that
			// says nothing about the kernel (EPERM from a seccomp or LSM
			// policy, as some container sandboxes refuse tracing
			// programs) leaves the type unknown, not the collector
			// failed, so that the other types are still served.
			c.logger.Warn("eBPF link type probe inconclusive", "type", typ, "err", err)
		}
	}
	return nil
}

// probeLinkTypes attaches a program that returns 0 with the link type.
// kprobe_multi and uprobe_multi are cilium/ebpf's feature tests, which
// create the link (kprobe_multi on vprintk; uprobe_multi on "/", which a
// kernel that has the type refuses with EBADF after parsing the request).
// fentry attaches a tracing program to vprintk through a BPF trampoline.
func probeLinkTypes(typ string) error {
	switch typ {
	case "kprobe_multi":
		return features.HaveBPFLinkKprobeMulti()
	case "uprobe_multi":
		return features.HaveBPFLinkUprobeMulti()
	case "fentry":
		return probeFentry()
	}
	return fmt.Errorf("unknown link type %q", typ)
}

func probeFentry() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "probe_fentry",
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceFEntry,
		AttachTo:     "vprintk",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		return err
	}
	return l.Close()
}
