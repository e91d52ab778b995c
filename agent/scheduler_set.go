package agent

import (
	"fmt"
	"io"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// buildSetInProcess builds the enabled collectors, in registry order, with options and
// schedules from cfg.
func buildSetInProcess(cfg *probeConfig, enabled []string, env collectors.Env) (*collectorSet, error) {
	return buildSet(cfg, enabled, env, nil)
}

// buildSet is buildSetInProcess with isolated collectors refreshing in child
// processes when iso is not nil (in-process otherwise).
func buildSet(cfg *probeConfig, enabled []string, env collectors.Env, iso *isolation) (*collectorSet, error) {
	set := &collectorSet{}
	for _, spec := range collectors.Specs() {
		if !contains(enabled, spec.Name) {
			continue
		}
		opts, err := cfg.options(spec)
		if err != nil {
			return nil, err
		}
		cenv := env
		cenv.Logger = env.Logger.With("collector", spec.Name)
		var c collectors.Collector
		c, err = spec.New(cenv, opts)
		if err != nil {
			return nil, fmt.Errorf("collector %s: %w", spec.Name, err)
		}
		if na := spec.ApplicableTo(env.Paths); na != nil {
			// Built above only to validate its options: under an image
			// it does not run at all, in-process or in a child.
			if closer, ok := c.(io.Closer); ok {
				closer.Close()
			}
			c = notApplicable{na}
		} else if spec.Isolated && iso != nil {
			// The in-process collector above validated the options.
			if closer, ok := c.(io.Closer); ok {
				closer.Close()
			}
			if c, err = newIsolated(spec, opts, iso); err != nil {
				return nil, err
			}
		}
		cc := cfg.Collectors[spec.Name]
		set.jobs = append(set.jobs, &job{name: spec.Name, c: c, interval: cc.Interval, timeout: cc.Timeout})
	}
	return set, nil
}

// validateDisabled builds, and closes at once, every collector that is not
// in enabled, so that the options of a disabled collector are validated
// when the configuration loads, not on the day it is enabled.
func validateDisabled(cfg *probeConfig, enabled []string, env collectors.Env) error {
	for _, spec := range collectors.Specs() {
		if contains(enabled, spec.Name) {
			continue
		}
		opts, err := cfg.options(spec)
		if err != nil {
			return fmt.Errorf("%w (the collector is disabled; its options are validated all the same)", err)
		}
		c, err := spec.New(env, opts)
		if err != nil {
			return fmt.Errorf("collector %s (disabled; its options are validated all the same): %w", spec.Name, err)
		}
		if closer, ok := c.(io.Closer); ok {
			closer.Close()
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
