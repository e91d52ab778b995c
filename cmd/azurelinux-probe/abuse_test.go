package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"
)

// The attackers dial from other loopback addresses than the scraper
// (127.0.0.0/8 is all local on Linux), as a hostile neighbour would.
var attackerIPs = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"}

// attackPace spaces each flooding client's requests. The attackers share
// loopback and two cores with the probe and the scraper; unpaced they only
// measure the test machine's CPU (a neighbour across a network pays its own
// CPU). 100 clients at this pace send up to 20,000 requests per second.
const attackPace = 5 * time.Millisecond

// authAttackers send distinct wrong passwords, each every 2*attackPace
// (up to 3,200 requests per second).
const authAttackers = 32

// usage is what the probe process holds.
type usage struct {
	rssKB, fds, goroutines int
}

func (u usage) String() string {
	return fmt.Sprintf("RSS %d kB, %d fds, %d goroutines", u.rssKB, u.fds, u.goroutines)
}

func measure(t *testing.T, p *probe, scrape func() (int, string, time.Duration)) usage {
	t.Helper()
	pid := p.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var u usage
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			u.rssKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	u.fds = len(fds)
	// The task count is the OS threads; goroutines come from the probe's
	// own go_goroutines (its body may be up to 1 s old, which the
	// attacks outlast).
	_, body, _ := scrape()
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, "go_goroutines "); ok {
			u.goroutines, _ = strconv.Atoi(v)
		}
	}
	return u
}

// TestServeUnderAbuse runs the probe with its default connection limits
// and, for each attack the endpoint met on loopback, asserts that the
// process holds bounded memory, fds and goroutines and that a legitimate
// scrape on a fresh connection (full and filtered) answers within 100 ms
// throughout.
func TestServeUnderAbuse(t *testing.T) {
	tree, _ := filepath.Abs(filepath.Join(treesDir, "azure-gpu-nodriver"))
	p := startProbe(t, "--web.listen-address=127.0.0.1:0", "--path.rootfs="+tree, "--no-collector.azure")
	addr := p.addr

	scraper := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	scrapeURL := func(path string) func() (int, string, time.Duration) {
		return func() (int, string, time.Duration) {
			start := time.Now()
			var connected, firstByte time.Duration
			req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				ConnectDone:          func(string, string, error) { connected = time.Since(start) },
				GotFirstResponseByte: func() { firstByte = time.Since(start) },
			}))
			defer func() {
				if d := time.Since(start); d > 100*time.Millisecond {
					t.Logf("slow %s: connected after %s, first byte after %s, done after %s", path, connected, firstByte, d)
				}
			}()
			resp, err := scraper.Do(req)
			if err != nil {
				return 0, err.Error(), time.Since(start)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b), time.Since(start)
		}
	}
	full, filtered := scrapeURL("/metrics"), scrapeURL("/metrics?collect[]=gpu&collect[]=kernel")
	// Ready: every first refresh is done.
	deadline := time.Now().Add(20 * time.Second)
	for code, _, _ := scrapeURL("/-/ready")(); code != 200; code, _, _ = scrapeURL("/-/ready")() {
		if time.Now().After(deadline) {
			t.Fatal("not ready within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	base := measure(t, p, full)
	t.Logf("baseline: %s", base)

	// Bounds over the baseline: the default caps are 256 connections
	// and 64 per source, each holding an fd, three goroutines (net/http's
	// conn, its background read, a blocked write) and at most a 16 KiB
	// header plus buffers; the goroutine bound leaves one more per
	// connection for the collectors' own that run meanwhile (885 over a
	// baseline of 20 were seen on a loaded machine, against 812 for three
	// per connection).
	const maxExtraConns = 256 + 8
	bounded := func(name string, u usage) {
		t.Helper()
		if u.fds > base.fds+maxExtraConns {
			t.Errorf("%s: %d fds, baseline %d", name, u.fds, base.fds)
		}
		if u.goroutines > base.goroutines+4*maxExtraConns {
			t.Errorf("%s: %d goroutines, baseline %d", name, u.goroutines, base.goroutines)
		}
		if u.rssKB > base.rssKB+32*1024 {
			t.Errorf("%s: RSS %d kB, baseline %d kB", name, u.rssKB, base.rssKB)
		}
	}
	// during scrapes n times, full and filtered, asserting each answers
	// 200, 90 % within 100 ms and none past 500 ms (the attackers run on
	// the same two cores as the probe, and the machine that runs the
	// tests is shared: a scheduling hiccup is not the endpoint's); it
	// returns the slowest.
	during := func(name string, n int) time.Duration {
		t.Helper()
		var worst time.Duration
		slow := 0
		for range n {
			for _, s := range []func() (int, string, time.Duration){full, filtered} {
				code, body, d := s()
				if code != 200 || !strings.Contains(body, "azurelinux_kernel_info") {
					t.Errorf("%s: legitimate scrape answered %d after %s: %.200s", name, code, d, body)
				}
				if d > 100*time.Millisecond {
					slow++
				}
				if d > 500*time.Millisecond {
					t.Errorf("%s: legitimate scrape took %s", name, d)
				}
				worst = max(worst, d)
			}
		}
		if slow > 2*n/10 {
			t.Errorf("%s: %d of %d legitimate scrapes took over 100 ms", name, slow, 2*n)
		}
		return worst
	}

	dial := func(ip string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
		return d.Dial("tcp", addr)
	}
	var conns []net.Conn
	var connsMu sync.Mutex
	keep := func(c net.Conn) {
		connsMu.Lock()
		conns = append(conns, c)
		connsMu.Unlock()
	}
	release := func() {
		connsMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		connsMu.Unlock()
	}
	// settle waits until the probe holds no more than the baseline fds
	// plus a few (the attack's connections closed).
	settle := func(name string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			u := measure(t, p, full)
			if u.fds <= base.fds+4 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s: still %s", name, u)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// open runs n attacker connections spread over the attacker
	// addresses, each doing attack, 64 at a time.
	open := func(n int, attack func(c net.Conn)) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		for i := range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c, err := dial(attackerIPs[i%len(attackerIPs)])
				if err != nil {
					return // refused at the kernel's backlog: fine
				}
				keep(c)
				attack(c)
			}()
		}
		wg.Wait()
	}

	t.Run("idle keep-alive connections", func(t *testing.T) {
		// 4,000 connections that made one request and stay open (on
		// main: 10,000 added 187 MB, 10,000 goroutines and fds, never
		// closed; at the fd limit every scrape timed out).
		open(4000, func(c net.Conn) {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
			bufio.NewReader(c).ReadString('\n')
		})
		u := measure(t, p, full)
		worst := during("idle", 10)
		t.Logf("4000 idle keep-alive connections: %s; slowest legitimate scrape %s", u, worst)
		bounded("idle", u)
		release()
		settle("idle")
	})

	t.Run("clients that never read", func(t *testing.T) {
		// 1,000 connections pipelining scrapes without reading (on
		// main: 5,000 pinned 162 MB of kernel socket memory).
		req := strings.Repeat("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 64)
		open(1000, func(c net.Conn) {
			c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			c.Write([]byte(req))
		})
		u := measure(t, p, full)
		worst := during("never read", 10)
		t.Logf("1000 clients that never read: %s; slowest legitimate scrape %s", u, worst)
		bounded("never read", u)
		release()
		settle("never read")
	})

	t.Run("unfinished 1 MB header lines", func(t *testing.T) {
		// 400 requests whose header line never ends (on main: 457 MB
		// until the 10 s header timeout). The 16 KiB cap answers 431.
		line := "GET /metrics HTTP/1.1\r\nX-Junk: " + strings.Repeat("a", 1<<20)
		open(400, func(c net.Conn) {
			c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			c.Write([]byte(line))
		})
		u := measure(t, p, full)
		worst := during("headers", 10)
		t.Logf("400 unfinished 1 MB header lines: %s; slowest legitimate scrape %s", u, worst)
		bounded("headers", u)
		release()
		settle("headers")
	})

	t.Run("junk filtered scrapes", func(t *testing.T) {
		// 100 clients looping over invalid collect[] names and distinct
		// valid filter sets (on main: every legitimate filtered scrape
		// got 503, full scrapes went from 5 ms to 0.7-1.3 s).
		stop := make(chan struct{})
		var wg sync.WaitGroup
		junk := []string{"/metrics?collect[]=junk", "/metrics?collect[]=os&exclude[]=gpu", "/metrics?collect[]=%zz",
			"/metrics?collect[]=os", "/metrics?exclude[]=os", "/metrics?collect[]=hyperv&collect[]=storage",
			"/metrics?" + strings.Repeat("collect[]=os&", 300)}
		var mu sync.Mutex
		codes := map[int]int{}
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tr := &http.Transport{DialContext: nil, MaxIdleConnsPerHost: 1}
				tr.Dial = func(_, _ string) (net.Conn, error) { return dial(attackerIPs[i%len(attackerIPs)]) }
				cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
				defer tr.CloseIdleConnections()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					resp, err := cl.Get("http://" + addr + junk[n%len(junk)])
					if err != nil {
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					time.Sleep(attackPace) // pacing the flood, not synchronising
					mu.Lock()
					codes[resp.StatusCode]++
					mu.Unlock()
				}
			}()
		}
		u := measure(t, p, full)
		worst := during("junk filters", 10)
		close(stop)
		wg.Wait()
		t.Logf("100 clients of junk filtered scrapes (answers %v): %s; slowest legitimate scrape %s", codes, u, worst)
		bounded("junk filters", u)
		settle("junk filters")
	})
}

// TestAuthFlood: with basic auth from the web config, a flood of wrong
// passwords from other addresses does not delay a scrape with the right
// one past 100 ms (90 % of them; none past 500 ms) (on main each distinct wrong password cost a 47 ms
// bcrypt, one at a time, ahead of the right one).
func TestAuthFlood(t *testing.T) {
	// The shipped example (basic auth at its bcrypt cost, rate_limit),
	// without its TLS section: the flood measures the password checks,
	// not handshakes.
	example, err := os.ReadFile(webConfigExample)
	if err != nil {
		t.Fatal(err)
	}
	noTLS := regexp.MustCompile(`(?ms)^tls_server_config:\n.*?\n\n`).ReplaceAllString(string(example), "")
	if strings.Contains(noTLS, "tls_server_config") || !strings.Contains(noTLS, "rate_limit:") {
		t.Fatalf("could not take the TLS section out of %s", webConfigExample)
	}
	webConfig := filepath.Join(t.TempDir(), "web.yml")
	writeFile(t, webConfig, noTLS)
	tree, _ := filepath.Abs(filepath.Join(treesDir, "azure-gpu-nodriver"))
	p := startProbe(t, "--web.listen-address=127.0.0.1:0", "--path.rootfs="+tree, "--no-collector.azure",
		"--web.config.file="+webConfig)

	scraper := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	scrape := func() (int, time.Duration) {
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/metrics", nil)
		req.SetBasicAuth("prometheus", "replace-this-password")
		start := time.Now()
		var connected, firstByte time.Duration
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			ConnectDone:          func(string, string, error) { connected = time.Since(start) },
			GotFirstResponseByte: func() { firstByte = time.Since(start) },
		}))
		defer func() {
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Logf("slow right-password scrape: connected after %s, first byte after %s, done after %s", connected, firstByte, d)
			}
		}()
		resp, err := scraper.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}
	// Ready (the body of every collector rendered once), then the flood.
	deadline := time.Now().Add(20 * time.Second)
	for code, _ := scrape(); code != 200; code, _ = scrape() {
		if time.Now().After(deadline) {
			t.Fatal("no 200 within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := range authAttackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{}
			tr.Dial = func(_, _ string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(attackerIPs[i%len(attackerIPs)])}}
				return d.Dial("tcp", p.addr)
			}
			cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			defer tr.CloseIdleConnections()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+p.addr+"/metrics", nil)
				req.SetBasicAuth("prometheus", fmt.Sprintf("wrong-%d-%d", i, n)) // distinct: never cached
				resp, err := cl.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				time.Sleep(2 * attackPace) // pacing the flood, not synchronising
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	var worst time.Duration
	var took []string
	slow := 0
	for i := range 20 {
		code, d := scrape()
		worst = max(worst, d)
		took = append(took, d.Round(time.Millisecond).String())
		if d > 100*time.Millisecond {
			slow++
		}
		if code != 200 || d > 500*time.Millisecond {
			t.Errorf("right password during the flood, scrape %d: %d after %s", i, code, d)
		}
		time.Sleep(50 * time.Millisecond) // pacing the scrapes, not synchronising
	}
	close(stop)
	wg.Wait()
	t.Logf("wrong-password flood from %d addresses, %d clients: answers %v; right-password scrapes took %s", len(attackerIPs), authAttackers, codes, strings.Join(took, " "))
	if slow > 2 { // 90 % within 100 ms, as in TestServeUnderAbuse
		t.Errorf("%d of 20 right-password scrapes took over 100 ms", slow)
	}
	if codes[401] == 0 || codes[429] == 0 {
		t.Errorf("the flood was not answered 401 and then 429: %v", codes)
	}
}

// TestWebConfigExample: the shipped example web config loads (with real
// certificate paths) and says what its comments say: TLS 1.2 at least, a
// bcrypt cost of 5 for the placeholder password, exporter-toolkit's
// rate_limit at 100 per second.
func TestWebConfigExample(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	example, err := os.ReadFile(webConfigExample)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		TLS struct {
			CertFile   string `yaml:"cert_file"`
			KeyFile    string `yaml:"key_file"`
			MinVersion string `yaml:"min_version"`
		} `yaml:"tls_server_config"`
		Users     map[string]string `yaml:"basic_auth_users"`
		RateLimit struct {
			Interval string `yaml:"interval"`
			Burst    int    `yaml:"burst"`
		} `yaml:"rate_limit"`
	}
	if err := yaml.Unmarshal(example, &c); err != nil {
		t.Fatal(err)
	}
	if c.TLS.MinVersion != "TLS12" || c.RateLimit.Interval != "10ms" || c.RateLimit.Burst != 100 {
		t.Errorf("example says %+v", c)
	}
	if cost, err := bcrypt.Cost([]byte(c.Users["prometheus"])); err != nil || cost != 5 {
		t.Errorf("bcrypt cost %d (%v), want 5", cost, err)
	}
	if bcrypt.CompareHashAndPassword([]byte(c.Users["prometheus"]), []byte("replace-this-password")) != nil {
		t.Error("the hash is not of the placeholder password the comment names")
	}
	webConfig := filepath.Join(dir, "web.yml")
	writeFile(t, webConfig, strings.NewReplacer(c.TLS.CertFile, certFile, c.TLS.KeyFile, keyFile).Replace(string(example)))
	if err := web.Validate(webConfig); err != nil {
		t.Errorf("exporter-toolkit refuses the example: %v", err)
	}
}
