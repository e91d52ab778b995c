package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// webConfigExample is the shipped example --web.config.file.
const webConfigExample = "../../packaging/web-config.yml"

// TestPrometheusEndToEnd closes the loop with a real Prometheus server on
// loopback: it scrapes a probe that serves the fixture tree of an Azure VM
// whose GPU lost its driver after a kernel update, evaluates the shipped
// rules, and the alert for that regression fires. A second probe serves
// over TLS with basic auth through --web.config.file: Prometheus scrapes it
// with the right password and is refused with a wrong one. It runs against
// both Prometheus majors: Debian's 2.42 and a 3.x built by make prometheus3
// (3.x asks for OpenMetrics with escaping=allow-utf-8 and fails a scrape
// without an exact Content-Type).
func TestPrometheusEndToEnd(t *testing.T) {
	for major, prometheus := range prometheusTool(t, "prometheus") {
		t.Run(major, func(t *testing.T) { prometheusEndToEnd(t, prometheus) })
	}
}

func prometheusEndToEnd(t *testing.T, prometheus string) {
	dir := t.TempDir()
	tree, _ := filepath.Abs(filepath.Join(treesDir, "azure-gpu-nodriver"))

	// The tree is an Azure VM: the azure collector would ask the real
	// instance metadata address, which no test may do (TestFactsGolden
	// covers it against a loopback server).
	plain := startProbe(t, "--web.listen-address=127.0.0.1:0", "--path.rootfs="+tree, "--no-collector.azure")

	// TLS and basic auth for the second probe: the shipped example web
	// config (packaging/web-config.yml), with this test's certificate.
	certFile, keyFile := writeSelfSigned(t, dir)
	example, err := os.ReadFile(webConfigExample)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	writeFile(t, webConfig, strings.NewReplacer("/etc/azurelinux-probe/tls/probe.crt", certFile,
		"/etc/azurelinux-probe/tls/probe.key", keyFile).Replace(string(example)))
	secure := startProbe(t, "--web.listen-address=127.0.0.1:0", "--path.rootfs="+tree, "--no-collector.azure", "--web.config.file="+webConfig)

	// As root, a third probe reads this machine's kernel log (the kmsg
	// collector only): the test writes an oops and an Xid 79 to /dev/kmsg
	// and the shipped alerts for them fire.
	var kmsgProbe *probe
	kmsgJob := ""
	if os.Geteuid() == 0 {
		kmsgProbe = startProbe(t, "--web.listen-address=127.0.0.1:0", "--collector.disable-defaults", "--collector.kmsg")
		kmsgJob = fmt.Sprintf("  - job_name: azurelinux-probe-kmsg\n    static_configs: [{targets: [%q]}]\n", kmsgProbe.addr)
	}

	// The shipped rules, with every `for:` shortened so that the test does
	// not wait minutes; promtool's rule tests cover the durations.
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	rulesCopy := filepath.Join(dir, "rules.yml")
	writeFile(t, rulesCopy, regexp.MustCompile(`(?m)^(\s+)for: \S+$`).ReplaceAllString(string(rules), "${1}for: 0s"))

	promAddr := freeAddr(t)
	config := filepath.Join(dir, "prometheus.yml")
	writeFile(t, config, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: azurelinux-probe
    static_configs: [{targets: [%q]}]
  - job_name: azurelinux-probe-tls
    scheme: https
    tls_config: {ca_file: %q}
    basic_auth: {username: prometheus, password: replace-this-password}
    static_configs: [{targets: [%q]}]
  - job_name: azurelinux-probe-wrong-password
    scheme: https
    tls_config: {ca_file: %q}
    basic_auth: {username: prometheus, password: wrong}
    static_configs: [{targets: [%q]}]
%s`, rulesCopy, plain.addr, certFile, secure.addr, certFile, secure.addr, kmsgJob))

	startPrometheus(t, prometheus, config, dir, promAddr)

	api := func(path string, out any) bool {
		resp, err := http.Get("http://" + promAddr + path)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && json.Unmarshal(b, out) == nil
	}
	type vector struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	query := func(q string) vector {
		var v vector
		api("/api/v1/query?query="+url.QueryEscape(q), &v)
		return v
	}
	// Prometheus works on its own clock; poll its API until the state
	// arrives, with a deadline.
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 60s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	upOf := func(job string) string {
		for _, r := range query(`up{job="` + job + `"}`).Data.Result {
			return fmt.Sprint(r.Value[1])
		}
		return ""
	}
	eventually("all three jobs scraped", func() bool {
		return upOf("azurelinux-probe") != "" && upOf("azurelinux-probe-tls") != "" && upOf("azurelinux-probe-wrong-password") != ""
	})
	for job, want := range map[string]string{"azurelinux-probe": "1", "azurelinux-probe-tls": "1", "azurelinux-probe-wrong-password": "0"} {
		if got := upOf(job); got != want {
			t.Errorf("up{job=%q} = %s, want %s", job, got, want)
		}
	}
	if r := query(`azurelinux_gpu_devices{job="azurelinux-probe-tls",driver=""}`).Data.Result; len(r) != 1 || r[0].Value[1] != "1" {
		t.Errorf("facts over TLS: %+v", r)
	}
	if r := query(`azurelinux_kernel_info{job="azurelinux-probe"}`).Data.Result; len(r) != 1 || r[0].Metric["series"] != "6.18" {
		t.Errorf("kernel facts: %+v", r)
	}

	var alerts struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	firing := func(name, job string) bool {
		for _, a := range alerts.Data.Alerts {
			if a.Labels["alertname"] == name && a.Labels["job"] == job && a.State == "firing" {
				return true
			}
		}
		return false
	}
	eventually("AzureLinuxGPUWithoutDriver firing", func() bool {
		return api("/api/v1/alerts", &alerts) && firing("AzureLinuxGPUWithoutDriver", "azurelinux-probe")
	})
	for _, name := range []string{"AzureLinuxGPUDriverNotLoaded", "AzureLinuxProbeDown"} {
		eventually(name+" firing", func() bool {
			api("/api/v1/alerts", &alerts)
			job := "azurelinux-probe"
			if name == "AzureLinuxProbeDown" {
				job = "azurelinux-probe-wrong-password" // up is 0 there
			}
			return firing(name, job)
		})
	}

	if kmsgProbe != nil {
		// The kmsg probe has been scraped with its counters before the
		// lines are written, so the alerts fire on the increase.
		eventually("kmsg probe scraped", func() bool {
			return len(query(`azurelinux_kernel_log_events_total{job="azurelinux-probe-kmsg",category="oops"}`).Data.Result) == 1
		})
		time.Sleep(1100 * time.Millisecond) // a second scrape of the zero-valued Xid table
		marker := fmt.Sprintf("e2e%d", time.Now().UnixNano())
		pci := fmt.Sprintf("%04x:%02x:00", os.Getpid()&0xffff, time.Now().Nanosecond()&0xff)
		xidSeries := `azurelinux_gpu_nvidia_xid_errors_total{pci_address="` + pci + `",xid="79"} 1`
		written := time.Now()
		writeKmsgLines(t,
			"Oops: general protection fault, probably for non-canonical address 0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI "+marker,
			"NVRM: Xid (PCI:"+pci+"): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus. "+marker)
		// Served within a second of the write.
		for {
			if _, body := kmsgProbe.get("/metrics"); strings.Contains(body, xidSeries) {
				t.Logf("Xid 79 served %s after the write", time.Since(written))
				break
			}
			if time.Since(written) > time.Second {
				t.Fatalf("%s not served within 1s of the write", xidSeries)
			}
			time.Sleep(10 * time.Millisecond)
		}
		eventually("AzureLinuxKernelOops firing", func() bool {
			return api("/api/v1/alerts", &alerts) && firing("AzureLinuxKernelOops", "azurelinux-probe-kmsg")
		})
		eventually("AzureLinuxNvidiaFatalXid firing for "+pci, func() bool {
			if !api("/api/v1/alerts", &alerts) {
				return false
			}
			for _, a := range alerts.Data.Alerts {
				if a.Labels["alertname"] == "AzureLinuxNvidiaFatalXid" && a.Labels["pci_address"] == pci && a.State == "firing" {
					return true
				}
			}
			return false
		})
	}

	// The wrong password is refused by the probe itself, not just by
	// Prometheus' view of it.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfigFor(t, certFile)}}
	for pw, want := range map[string]int{"wrong": 401, "replace-this-password": 200} {
		req, _ := http.NewRequest(http.MethodGet, "https://"+secure.addr+"/metrics", nil)
		req.SetBasicAuth("prometheus", pw)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("password %q: status %d, want %d", pw, resp.StatusCode, want)
		}
	}
	// The status page and its JSON work behind the same TLS and basic auth
	// (polled: the checks publish after the collectors' first snapshots).
	for _, path := range []string{"/", "/status.json"} {
		eventually(path+" over TLS shows the checks", func() bool {
			req, _ := http.NewRequest(http.MethodGet, "https://"+secure.addr+path, nil)
			req.SetBasicAuth("prometheus", "replace-this-password")
			resp, err := client.Do(req)
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode == 200 && strings.Contains(string(b), "gpus-bound")
		})
	}
}

// writeKmsgLines writes each line to /dev/kmsg as one record (with the
// newline that finalizes it).
func writeKmsgLines(t *testing.T, lines ...string) {
	t.Helper()
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString("<4>" + l + "\n"); err != nil {
			t.Fatalf("write /dev/kmsg: %v", err)
		}
	}
}

func tlsConfigFor(t *testing.T, certFile string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(certFile)
	if err != nil || !pool.AppendCertsFromPEM(b) {
		t.Fatalf("load %s: %v", certFile, err)
	}
	return &tls.Config{RootCAs: pool}
}

// startPrometheus runs prometheus (either major) with config, its data
// under dir and its web API on addr, until the test ends; its log is
// shown when the test failed.
func startPrometheus(t *testing.T, prometheus, config, dir, addr string) {
	t.Helper()
	cmd := exec.Command(prometheus, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var promLog strings.Builder
	cmd.Stdout, cmd.Stderr = &promLog, &promLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", promLog.String())
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago (Prometheus cannot report the port it picked for :0).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeSelfSigned writes a certificate for 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "azurelinux-probe test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}
