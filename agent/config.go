package agent

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// defaultConfig is the configuration used when no --config.file is given,
// and the base that a config file is laid over. packaging/ ships the same
// file as /etc/azurelinux-probe/config.yml.
//
//go:embed default.yml
var defaultConfig []byte

// probeConfig is the parsed configuration: per collector, its refresh schedule and
// its option layers.
type probeConfig struct {
	Collectors map[string]collectorConfig
}

// collectorConfig is one collector's section.
type collectorConfig struct {
	// Interval is how often the collector refreshes in the background.
	Interval time.Duration
	// Timeout bounds one refresh; a run that exceeds it is abandoned and
	// reported as failed.
	Timeout time.Duration
	// options holds the collector's option mappings, lowest precedence
	// first, with the scheduling keys removed.
	options []*yaml.Node
}

// scheduleKeys are the keys every collector section may hold besides the
// collector's own options.
var scheduleKeys = []string{"interval", "timeout"}

// maxConfigSize bounds the config file; the shipped one is a few kilobytes.
const maxConfigSize = 1 << 20

// loadConfig parses the embedded default configuration and, when path is not
// empty, lays the file at path over it: a key set in the file replaces the
// default, a key left out keeps it.
func loadConfig(path string) (*probeConfig, error) {
	cfg := &probeConfig{Collectors: map[string]collectorConfig{}}
	for _, s := range collectors.Specs() {
		cfg.Collectors[s.Name] = collectorConfig{Interval: s.Interval, Timeout: s.Timeout}
	}
	if err := cfg.apply(defaultConfig); err != nil {
		return nil, fmt.Errorf("embedded default config: %w", err)
	}
	if path != "" {
		b, err := host.ReadRegularFile(path, maxConfigSize)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if err := cfg.apply(b); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	return cfg, nil
}

func (cfg *probeConfig) apply(b []byte) error {
	var doc struct {
		Collectors map[string]yaml.Node `yaml:"collectors"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	names := make([]string, 0, len(doc.Collectors))
	for name := range doc.Collectors {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		node := doc.Collectors[name]
		cc, ok := cfg.Collectors[name]
		if !ok {
			return fmt.Errorf("collectors: unknown collector %q", name)
		}
		if node.Kind == 0 || node.Tag == "!!null" {
			continue // "name:" with nothing under it
		}
		if node.Kind != yaml.MappingNode {
			return fmt.Errorf("collectors.%s: line %d: want a mapping", name, node.Line)
		}
		var sched struct {
			Interval *time.Duration `yaml:"interval"`
			Timeout  *time.Duration `yaml:"timeout"`
		}
		if err := node.Decode(&sched); err != nil {
			return fmt.Errorf("collectors.%s: %w", name, err)
		}
		if sched.Interval != nil {
			cc.Interval = *sched.Interval
		}
		if sched.Timeout != nil {
			cc.Timeout = *sched.Timeout
		}
		if cc.Interval < time.Second {
			return fmt.Errorf("collectors.%s: interval %s is shorter than 1s", name, cc.Interval)
		}
		if cc.Timeout <= 0 || cc.Timeout > cc.Interval {
			return fmt.Errorf("collectors.%s: timeout %s must be above 0 and at most the interval %s", name, cc.Timeout, cc.Interval)
		}
		opts := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for i := 0; i+1 < len(node.Content); i += 2 {
			if !slices.Contains(scheduleKeys, node.Content[i].Value) {
				opts.Content = append(opts.Content, node.Content[i], node.Content[i+1])
			}
		}
		if len(opts.Content) > 0 {
			cc.options = append(slices.Clone(cc.options), opts)
		}
		cfg.Collectors[name] = cc
	}
	return nil
}

// options returns spec's options decoded from the configuration's layers
// over the collector's built-in defaults.
func (cfg *probeConfig) options(spec collectors.Spec) (any, error) {
	layers := cfg.Collectors[spec.Name].options
	if spec.Options == nil {
		if len(layers) > 0 {
			return nil, fmt.Errorf("collectors.%s: the collector takes no options besides %v", spec.Name, scheduleKeys)
		}
		return nil, nil
	}
	v := spec.Options()
	for _, n := range layers {
		raw, err := yaml.Marshal(n)
		if err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(v); err != nil {
			return nil, fmt.Errorf("collectors.%s: %w", spec.Name, err)
		}
	}
	return v, nil
}
