package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPrometheusBootAlerts: a real Prometheus scrapes a probe per boot
// fixture tree (boot collector only) and the shipped next-boot alerts fire
// for each tree's regression, with the reason naming the module.
func TestPrometheusBootAlerts(t *testing.T) {
	prometheus := needTool(t, "prometheus")
	dir := t.TempDir()
	want := map[string][][2]string{ // tree: {alertname, reason}
		"azl4-gpu-newkernel": {{"AzureLinuxNextBootGPUDriverMissing", "missing:nvidia"}, {"AzureLinuxNextBootKernelNotReady", "missing:nvidia_uvm"}},
		"azl4-gpu-secureboot": {{"AzureLinuxNextBootModuleSignatureRejected", "unsigned:nvidia"},
			{"AzureLinuxNextBootModuleSignatureRejected", "untrusted:nvidia_uvm"}},
		"hyperv-gen1-newinitrd": {{"AzureLinuxNextBootInitramfsLacksBootDriver", "initramfs:hv_storvsc"}},
	}
	var targets []string
	for tree := range want {
		root, _ := filepath.Abs(filepath.Join(treesDir, tree))
		p := startProbe(t, "--web.listen-address=127.0.0.1:0", "--path.rootfs="+root, "--collector.disable-defaults", "--collector.boot")
		targets = append(targets, fmt.Sprintf("{targets: [%q], labels: {tree: %q}}", p.addr, tree))
	}
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	rulesCopy := filepath.Join(dir, "rules.yml")
	writeFile(t, rulesCopy, regexp.MustCompile(`(?m)^(\s+)for: \S+$`).ReplaceAllString(string(rules), "${1}for: 0s"))
	promAddr := freeAddr(t)
	config := filepath.Join(dir, "prometheus.yml")
	writeFile(t, config, fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [%q]\n"+
		"scrape_configs:\n  - job_name: azurelinux-probe\n    static_configs: [%s]\n", rulesCopy, strings.Join(targets, ", ")))
	startPrometheus(t, prometheus, config, dir, promAddr)
	var alerts struct {
		Data struct {
			Alerts []struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
				State       string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	fetch := func() bool {
		resp, err := http.Get("http://" + promAddr + "/api/v1/alerts")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return json.Unmarshal(b, &alerts) == nil
	}
	firing := func(tree, name, reason string) bool {
		for _, a := range alerts.Data.Alerts {
			if a.Labels["tree"] == tree && a.Labels["alertname"] == name && a.Labels["reason"] == reason && a.State == "firing" &&
				strings.Contains(a.Annotations["summary"], reason) {
				return true
			}
		}
		return false
	}
	// Prometheus works on its own clock: poll with a deadline.
	deadline := time.Now().Add(60 * time.Second)
	for tree, list := range want {
		for _, w := range list {
			for !(fetch() && firing(tree, w[0], w[1])) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s{reason=%q} not firing within 60s: %+v", tree, w[0], w[1], alerts.Data.Alerts)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	// The running kernels are ready: nothing fires for them.
	for _, a := range alerts.Data.Alerts {
		if strings.HasPrefix(a.Labels["alertname"], "AzureLinuxNextBoot") && a.Labels["release"] != "6.18.40-1.1.azl4.x86_64" {
			t.Errorf("alert for a kernel that is not next: %v", a.Labels)
		}
	}
}
