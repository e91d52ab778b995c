package collectors

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// NVMe controllers and their namespaces by model, the way LISA counts them
// (microsoft/testsuites/nvme/nvme.py verify_nvme_basic: as many namespaces
// as controllers for the local "Microsoft NVMe Direct Disk"s; the remote
// disks of Azure Boost, model "MSFT NVMe Accelerator v1.0", are counted
// apart). /sys/class/nvme/nvme<N> is a controller (drivers/nvme/host/core.c
// nvme_init_ctrl), its model attribute the Identify Controller model
// number, and its nvme<N>n<M> (or, with multipath, nvme<S>c<N>n<M>)
// children its namespaces.

var (
	storageNVMeControllers = declare(Fact{Collector: "storage", Name: "nvme_controllers",
		Help:   "NVMe controllers per model (/sys/class/nvme/*/model).",
		Labels: []string{"model"}, Identity: []string{"model"},
		Bound: "one series per distinct controller model: a handful"})
	storageNVMeNamespaces = declare(Fact{Collector: "storage", Name: "nvme_namespaces",
		Help:   "NVMe namespaces of the controllers of each model.",
		Labels: []string{"model"}, Identity: []string{"model"},
		Bound: "one series per distinct controller model"})
)

var nvmeNamespaceRE = regexp.MustCompile(`^nvme\d+(c\d+)?n\d+$`)

// maxNVMeModelLen caps a model label: the Identify field is 40 bytes.
const maxNVMeModelLen = 64

func (c *storageCollector) updateNVMe(ctx context.Context, m *Metrics) error {
	dir := c.paths.Sys("class/nvme")
	entries, err := dir.ReadDir()
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nvme: %w", err)
	}
	ctrls, nss := map[string]int{}, map[string]int{}
	var errs []error
	for _, e := range entries {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !strings.HasPrefix(e.Name(), "nvme") {
			continue
		}
		model, err := readValue(dir.Join(e.Name(), "model"))
		if err != nil {
			errs = append(errs, fmt.Errorf("nvme controller %s: %w", e.Name(), err))
			continue
		}
		if len(model) > maxNVMeModelLen {
			errs = append(errs, fmt.Errorf("nvme controller %s: model of %d bytes is not an Identify model number", e.Name(), len(model)))
			continue
		}
		ctrls[model]++
		children, _ := dir.Join(e.Name()).ReadDir()
		for _, ch := range children {
			if nvmeNamespaceRE.MatchString(ch.Name()) {
				nss[model]++
			}
		}
	}
	models := make([]string, 0, len(ctrls))
	for model := range ctrls {
		models = append(models, model)
	}
	sort.Strings(models)
	for _, model := range models {
		m.Set(storageNVMeControllers, float64(ctrls[model]), model)
		m.Set(storageNVMeNamespaces, float64(nss[model]), model)
	}
	return errors.Join(errs...)
}
