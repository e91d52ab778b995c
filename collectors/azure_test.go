package collectors

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// imdsServer is a loopback stand-in for the instance metadata service. It
// answers with handler and counts the requests it got.
type imdsServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newIMDS(t *testing.T, handler http.HandlerFunc) *imdsServer {
	t.Helper()
	s := &imdsServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/scheduledevents") {
			// No maintenance pending (TestScheduledEvents covers events).
			w.Write([]byte(`{"DocumentIncarnation":0,"Events":[]}`))
			return
		}
		s.hits.Add(1)
		if r.Header.Get("Metadata") != "true" {
			// What the real service does without the header.
			http.Error(w, `{"error":"Bad request. Required metadata header not specified"}`, http.StatusBadRequest)
			return
		}
		handler(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func serveFile(t *testing.T, name string) http.HandlerFunc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/imds", name))
	if err != nil {
		t.Fatal(err)
	}
	return serveBytes(b)
}

func serveBytes(b []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(b)
	}
}

func runAzure(t *testing.T, root string, o *azureOptions) (*Metrics, error) {
	t.Helper()
	c, err := newAzureCollector(Env{Paths: DefaultPaths(root)}, o)
	if err != nil {
		t.Fatal(err)
	}
	m := &Metrics{}
	err = c.Update(context.Background(), m)
	return m, err
}

func azureOpts(endpoint string) *azureOptions {
	o := defaultAzureOptions()
	o.Endpoint = endpoint + "/metadata/instance?api-version=2023-07-01"
	return o
}

const azureTree = "testdata/trees/azl4-azure-gen2"

func TestAzureInstanceDocuments(t *testing.T) {
	const labels = `image_id=%q,image_offer=%q,image_publisher=%q,image_sku=%q,image_version=%q,location=%q,security_type=%q,vm_id=%q,vm_size=%q,zone=%q`
	for _, tc := range []struct {
		name string
		doc  http.HandlerFunc
		want string // the instance_info labels; "" when none
	}{
		{
			name: "marketplace image, trusted launch, zone",
			doc:  serveFile(t, "azl4-azure-gen2.json"),
			want: `image_id="",image_offer="azure-linux-4",image_publisher="MicrosoftCBLMariner",image_sku="azure-linux-4-gen2",image_version="4.0.20260915",location="westus2",security_type="TrustedLaunch",vm_id="5c0f3a1e-8d4b-4e8a-9f4e-2b7c1d9a6e31",vm_size="Standard_NC80adis_H100_v5",zone="1"`,
		},
		{
			name: "compute gallery image, no security type, no zone",
			doc:  serveFile(t, "azl4-azure-boost.json"),
			want: `image_id="/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/azl4_gallery/images/azl4-golden-gen2/versions/2026.9.15",image_offer="",image_publisher="",image_sku="",image_version="",location="eastus2",security_type="",vm_id="e1b2c3d4-0a9b-4c8d-8e7f-6a5b4c3d2e1f",vm_size="Standard_E4bds_v5",zone=""`,
		},
		{
			name: "confidential VM from a shared gallery",
			doc: serveBytes([]byte(`{"compute":{"location":"northeurope","vmId":"0d6b8f1a-2c3e-4d5f-8a9b-1c2d3e4f5a6b","vmSize":"Standard_DC4as_v5","zone":"2",
				"securityProfile":{"secureBootEnabled":"true","virtualTpmEnabled":"true","securityType":"ConfidentialVM"},
				"storageProfile":{"imageReference":{"id":"","offer":"","publisher":"","sku":"","version":"",
				"sharedGalleryImageId":"/SharedGalleries/abcd1234-5678-90ab-cdef-1234567890ab-AZL4LAB/Images/azl4-cvm/Versions/1.0.0"}}}}`)),
			want: `image_id="/SharedGalleries/abcd1234-5678-90ab-cdef-1234567890ab-AZL4LAB/Images/azl4-cvm/Versions/1.0.0",image_offer="",image_publisher="",image_sku="",image_version="",location="northeurope",security_type="ConfidentialVM",vm_id="0d6b8f1a-2c3e-4d5f-8a9b-1c2d3e4f5a6b",vm_size="Standard_DC4as_v5",zone="2"`,
		},
		{
			name: "standard security type",
			doc:  serveBytes([]byte(`{"compute":{"vmId":"v","vmSize":"Standard_B2s","securityProfile":{"securityType":"Standard"}}}`)),
			want: `image_id="",image_offer="",image_publisher="",image_sku="",image_version="",location="",security_type="Standard",vm_id="v",vm_size="Standard_B2s",zone=""`,
		},
		{
			name: "old api-version: no securityProfile, storageProfile or zone",
			doc:  serveBytes([]byte(`{"compute":{"location":"westeurope","vmId":"11111111-2222-3333-4444-555555555555","vmSize":"Standard_A3"},"network":{}}`)),
			want: `image_id="",image_offer="",image_publisher="",image_sku="",image_version="",location="westeurope",security_type="",vm_id="11111111-2222-3333-4444-555555555555",vm_size="Standard_A3",zone=""`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newIMDS(t, tc.doc)
			m, err := runAzure(t, azureTree, azureOpts(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			if got := samples(t, m, "azurelinux_azure_metadata_up"); got[""] != 1 || len(got) != 1 {
				t.Errorf("metadata_up = %v, want 1", got)
			}
			info := samples(t, m, "azurelinux_azure_instance_info")
			if len(info) != 1 || info[tc.want] != 1 {
				t.Errorf("instance_info = %v\nwant {%s} 1", info, tc.want)
			}
			if srv.hits.Load() != 1 {
				t.Errorf("%d requests, want 1", srv.hits.Load())
			}
		})
	}
}

func TestAzureMetadataFailures(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"garbage", serveBytes([]byte("<html><body>Bad Gateway</body></html>")), "not a metadata document"},
		{"JSON that is not a metadata document", serveBytes([]byte(`{"error":"x"}`)), "no compute object"},
		{"compute without identity", serveBytes([]byte(`{"compute":{"location":"westus"}}`)), "neither vmId nor vmSize"},
		{"truncated", serveBytes([]byte(`{"compute":{"vmId":"a","vmSize":"`)), "not a metadata document"},
		{"throttled", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"Too many requests"}`, http.StatusTooManyRequests)
		}, "HTTP 429"},
		{"redirect is not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://192.0.2.1/elsewhere", http.StatusFound)
		}, "HTTP 302"},
		{"too large", serveBytes([]byte(`{"compute":{"vmId":"` + strings.Repeat("a", maxIMDSSize) + `"}}`)), "larger than"},
		{"slow answer", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}, "no answer within 150ms"},
		{"slow body", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"compute":{`))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}, "no complete answer within 150ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newIMDS(t, tc.handler)
			o := azureOpts(srv.URL)
			o.RequestTimeout = 150 * time.Millisecond
			start := time.Now()
			m, err := runAzure(t, azureTree, o)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s: the request timeout did not hold", took)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if got := samples(t, m, "azurelinux_azure_metadata_up"); got[""] != 0 || len(got) != 1 {
				t.Errorf("metadata_up = %v, want 0", got)
			}
			if got := samples(t, m, "azurelinux_azure_instance_info"); len(got) != 0 {
				t.Errorf("instance_info without a valid document: %v", got)
			}
		})
	}
}

// TestAzureNotAzure: off Azure the collector reports no data and never
// sends a request, unless forced.
func TestAzureNotAzure(t *testing.T) {
	// hyperv-gen1-onprem is a Hyper-V guest whose asset tag is not Azure's.
	for _, tree := range []string{"testdata/trees/azl4-baremetal", "testdata/trees/hyperv-gen1-onprem",
		"testdata/trees/kvm-guest", "testdata/trees/amd-mi300x-baremetal", "testdata/trees/empty"} {
		srv := newIMDS(t, serveFile(t, "azl4-azure-gen2.json"))
		m, err := runAzure(t, tree, azureOpts(srv.URL))
		if !errors.Is(err, ErrNoData) {
			t.Errorf("%s: error %v, want ErrNoData", tree, err)
		}
		if len(m.List()) != 0 || srv.hits.Load() != 0 {
			t.Errorf("%s: %d metrics, %d requests; want none", tree, len(m.List()), srv.hits.Load())
		}

		o := azureOpts(srv.URL)
		o.Force = true
		m, err = runAzure(t, tree, o)
		if err != nil || srv.hits.Load() != 1 || samples(t, m, "azurelinux_azure_metadata_up")[""] != 1 {
			t.Errorf("%s forced: error %v, %d requests", tree, err, srv.hits.Load())
		}
	}
}

func TestAzureTags(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		allow     []string
		want      []string
	}{
		{"none by default", `{"compute":{"vmId":"a","tags":"env:lab;owner:jdoe"}}`, []string{}, nil},
		{"tags string", `{"compute":{"vmId":"a","tags":"env:lab;owner:jdoe;secret:hunter2"}}`, []string{"env", "owner"},
			[]string{`name="env",value="lab"`, `name="owner",value="jdoe"`}},
		{"tagsList wins, values with ; and :", `{"compute":{"vmId":"a","tags":"x:1","tagsList":[{"name":"url","value":"http://a;b"},{"name":"x","value":"1"}]}}`,
			[]string{"url"}, []string{`name="url",value="http://a;b"`}},
		{"a duplicate name is one series", `{"compute":{"vmId":"a","tagsList":[{"name":"env","value":"lab"},{"name":"env","value":"prod"}]}}`,
			[]string{"env"}, []string{`name="env",value="lab"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newIMDS(t, serveBytes([]byte(tc.doc)))
			o := azureOpts(srv.URL)
			o.Tags = tc.allow
			m, err := runAzure(t, azureTree, o)
			if err != nil {
				t.Fatal(err)
			}
			got := samples(t, m, "azurelinux_azure_instance_tag")
			if len(got) != len(tc.want) {
				t.Errorf("tags %v, want %v", got, tc.want)
			}
			for _, w := range tc.want {
				if got[w] != 1 {
					t.Errorf("tag {%s} missing from %v", w, got)
				}
			}
		})
	}
}

// TestAzureNoProxy: the metadata request must never go through a proxy
// from the environment (a proxy cannot reach the VM's link-local service
// and would see the request). Go never proxies loopback, so the transport
// itself is checked.
func TestAzureNoProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://192.0.2.1:3128")
	t.Setenv("http_proxy", "http://192.0.2.1:3128")
	c, err := newAzureCollector(Env{Paths: DefaultPaths(azureTree)}, defaultAzureOptions())
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := c.(*azureCollector).client.Transport.(*http.Transport)
	if !ok || tr.Proxy != nil {
		t.Fatalf("transport %T with a proxy function: requests would honour HTTP_PROXY", c.(*azureCollector).client.Transport)
	}
	req, _ := http.NewRequest(http.MethodGet, DefaultIMDSEndpoint, nil)
	if u, err := http.ProxyFromEnvironment(req); err != nil || u == nil {
		t.Fatalf("test setup: HTTP_PROXY not in effect (%v, %v)", u, err)
	}
}

func TestAzureOptionsInvalid(t *testing.T) {
	for _, tc := range []struct {
		set  func(*azureOptions)
		want string
	}{
		{func(o *azureOptions) { o.Endpoint = "169.254.169.254/metadata" }, "not an http(s) URL"},
		{func(o *azureOptions) { o.Endpoint = "file:///etc/passwd" }, "not an http(s) URL"},
		{func(o *azureOptions) { o.RequestTimeout = 0 }, "request_timeout"},
	} {
		o := defaultAzureOptions()
		tc.set(o)
		if _, err := newAzureCollector(Env{Paths: DefaultPaths(azureTree)}, o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

// azureDMITree builds a sysfs with the given DMI attributes (nil: absent).
func azureDMITree(t *testing.T, attrs map[string][]byte, vmbus bool) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "sys/class/dmi/id")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range attrs {
		if err := os.WriteFile(filepath.Join(dir, k), v, 0o400); err != nil {
			t.Fatal(err)
		}
	}
	if vmbus {
		if err := os.MkdirAll(filepath.Join(root, "sys/bus/vmbus/devices"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestIsAzure(t *testing.T) {
	hv := map[string][]byte{"sys_vendor": []byte("Microsoft Corporation\n"), "product_name": []byte("Virtual Machine\n")}
	with := func(m map[string][]byte, k string, v []byte) map[string][]byte {
		out := map[string][]byte{k: v}
		for kk, vv := range m {
			out[kk] = vv
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		attrs map[string][]byte
		vmbus bool
		want  bool
		err   string
	}{
		{"azure asset tag", with(hv, "chassis_asset_tag", []byte(azureAssetTag+"\n")), true, true, ""},
		{"asset tag decides even without vmbus", map[string][]byte{"chassis_asset_tag": []byte(azureAssetTag + "\n")}, false, true, ""},
		{"on-premises hyper-v: empty tag", with(hv, "chassis_asset_tag", []byte("\n")), true, false, ""},
		{"other tag", with(hv, "chassis_asset_tag", []byte("Default string\n")), true, false, ""},
		{"tag unreadable: hyper-v guest counts as azure", hv, true, true, ""},
		{"tag unreadable, no vmbus", hv, false, false, ""},
		{"surface laptop", map[string][]byte{"sys_vendor": []byte("Microsoft Corporation\n"), "product_name": []byte("Surface Laptop 5\n")}, false, false, ""},
		{"bare metal", map[string][]byte{"sys_vendor": []byte("Dell Inc.\n"), "product_name": []byte("PowerEdge R650\n"), "chassis_asset_tag": []byte("\n")}, false, false, ""},
		{"no DMI", nil, false, false, ""},
		{"binary tag", with(hv, "chassis_asset_tag", []byte("7783\x00\x01")), true, false, "chassis_asset_tag: binary data"},
		{"binary vendor", map[string][]byte{"sys_vendor": []byte("Micro\x00soft")}, true, false, "sys_vendor: binary data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := isAzure(DefaultPaths(azureDMITree(t, tc.attrs, tc.vmbus)))
			if got != tc.want {
				t.Errorf("isAzure = %v, want %v", got, tc.want)
			}
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}

func TestParseIMDSTags(t *testing.T) {
	c := imdsCompute{Tags: "a:1;b:x:y;;:nameless;c"}
	got := c.tags()
	want := []imdsTag{{"a", "1"}, {"b", "x:y"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("tags() = %v, want %v", got, want)
	}
}

func FuzzParseIMDS(f *testing.F) {
	// Seeds stay small: the fuzzer mutates kilobyte documents slowly, and
	// the full documents are covered by the table tests.
	f.Add([]byte(`{"compute":{"location":"westus2","vmId":"5c0f3a1e","vmSize":"Standard_D2ds_v5","zone":"1",` +
		`"securityProfile":{"securityType":"TrustedLaunch"},"storageProfile":{"imageReference":{"id":"","offer":"azure-linux-4",` +
		`"publisher":"MicrosoftCBLMariner","sku":"azure-linux-4-gen2","version":"4.0.20260915"}},` +
		`"tags":"env:lab;owner:jdoe","tagsList":[{"name":"env","value":"lab"}]}}`))
	f.Add([]byte(`{"compute":null}`))
	f.Add([]byte(`{"compute":{"vmId":1}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := parseIMDS(b)
		if err != nil {
			return
		}
		if doc.Compute.VMID == "" && doc.Compute.VMSize == "" {
			t.Errorf("accepted a document without vmId and vmSize: %q", b)
		}
		for _, tag := range doc.Compute.tags() {
			if tag.Name == "" {
				t.Errorf("nameless tag from %q", b)
			}
		}
	})
}

// TestLiveAzure: on this host, which is not an Azure VM, the collector
// reports no data without sending a request; on an Azure VM it would ask
// the loopback server instead of the real service.
func TestLiveAzure(t *testing.T) {
	srv := newIMDS(t, serveFile(t, "azl4-azure-gen2.json"))
	azure, err := isAzure(DefaultPaths("/"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := runAzure(t, "/", azureOpts(srv.URL))
	if azure {
		t.Logf("this host is an Azure VM: the loopback server answered (%v)", err)
		if srv.hits.Load() != 1 {
			t.Errorf("%d requests on an Azure host, want 1", srv.hits.Load())
		}
		return
	}
	if !errors.Is(err, ErrNoData) || len(m.List()) != 0 || srv.hits.Load() != 0 {
		t.Errorf("not Azure: error %v, %d metrics, %d requests; want ErrNoData and no request", err, len(m.List()), srv.hits.Load())
	}
}

// TestIsAzureWithoutClassLink: where /sys/class/dmi/id is missing, the DMI
// attributes are read from /sys/devices/virtual/dmi/id, as the hyperv
// collector does.
func TestIsAzureWithoutClassLink(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "sys/devices/virtual/dmi/id")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chassis_asset_tag"), []byte(azureAssetTag+"\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	if azure, err := isAzure(DefaultPaths(root)); err != nil || !azure {
		t.Errorf("isAzure = %v, %v; want true", azure, err)
	}
}

func TestScheduledEvents(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      map[[2]string]int
		err       string
	}{
		{"none pending", `{"DocumentIncarnation":1,"Events":[]}`, map[[2]string]int{}, ""},
		{"freeze and reboot", `{"DocumentIncarnation":4,"Events":[
			{"EventId":"a","EventType":"Freeze","EventStatus":"Scheduled","ResourceType":"VirtualMachine"},
			{"EventId":"b","EventType":"Reboot","EventStatus":"Started"},
			{"EventId":"c","EventType":"Freeze","EventStatus":"Scheduled"}]}`,
			map[[2]string]int{{"Freeze", "Scheduled"}: 2, {"Reboot", "Started"}: 1}, ""},
		{"values outside the grammar", `{"DocumentIncarnation":1,"Events":[{"EventType":"\u001b[2JExplode","EventStatus":"Soon"}]}`,
			map[[2]string]int{{"other", "other"}: 1}, ""},
		{"the instance document instead", `{"compute":{"vmId":"x"}}`, nil, "no DocumentIncarnation or Events"},
		{"garbage", `<html>`, nil, "not a scheduled events document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseScheduledEvents([]byte(tc.doc))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	u, err := scheduledEventsURL("http://169.254.169.254/metadata/instance?api-version=2023-07-01")
	if err != nil || u != "http://169.254.169.254/metadata/scheduledevents?api-version=2020-07-01" {
		t.Errorf("scheduledEventsURL = %q, %v", u, err)
	}
}
