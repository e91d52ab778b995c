package collectors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

func init() {
	register(Spec{
		Name:           "azure",
		Needs:          "a running Azure VM (the instance metadata service)",
		DefaultEnabled: true,
		// The instance metadata a VM sees changes only when it is
		// redeployed, resized or re-tagged; IMDS throttles callers.
		Interval: 5 * time.Minute,
		Timeout:  5 * time.Second,
		Options:  func() any { return defaultAzureOptions() },
		New:      newAzureCollector,
	})
}

// DefaultIMDSEndpoint is Azure's instance metadata service. api-version
// 2023-07-01 is the first to carry everything the collector reads
// (securityProfile.securityType arrived in 2022-08-01).
const DefaultIMDSEndpoint = "http://169.254.169.254/metadata/instance?api-version=2023-07-01"

type azureOptions struct {
	// Endpoint is the instance metadata URL (http or https).
	Endpoint string `yaml:"endpoint"`
	// RequestTimeout bounds one metadata request; it is kept below the
	// collector's timeout so that a slow service reads as metadata_up 0.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// Force asks the metadata service even when the host does not look
	// like an Azure VM (the DMI chassis asset tag unreadable or unusual).
	Force bool `yaml:"force" flag:"force" help:"Ask the Azure instance metadata service even where the host does not look like an Azure VM."`
	// Tags is the allow-list of VM tag names exported by
	// azurelinux_azure_instance_tag. Tags are not exported by default:
	// their number is unbounded and people put secrets in them.
	Tags []string `yaml:"tags"`
}

func defaultAzureOptions() *azureOptions {
	return &azureOptions{Endpoint: DefaultIMDSEndpoint, RequestTimeout: 2 * time.Second, Tags: []string{}}
}

var azureInstanceInfoFact = declare(Fact{
	Collector: "azure", Name: "instance_info",
	Help: "The Azure VM from the instance metadata service; constant 1. The image is the marketplace reference " +
		"(publisher, offer, sku, version) or a gallery image id; security_type is TrustedLaunch, ConfidentialVM or " +
		"Standard when the service reports one.",
	Labels: []string{"vm_size", "location", "zone", "vm_id", "image_publisher", "image_offer", "image_sku", "image_version", "image_id", "security_type"},
})

var azureMetadataUpFact = declare(Fact{
	Collector: "azure", Name: "metadata_up",
	Help: "1 when the instance metadata service answered with a valid document, 0 when it failed, timed out or returned garbage. " +
		"Absent where the host is not an Azure VM (and collectors.azure.force is off): the service is then never asked.",
})

var azureInstanceTagFact = declare(Fact{
	Collector: "azure", Name: "instance_tag",
	Help:     "A VM tag whose name is in the collectors.azure.tags allow-list; constant 1.",
	Labels:   []string{"name", "value"},
	Identity: []string{"name"}, Bound: "the tags named in collectors.azure.tags, each once",
})

type azureCollector struct {
	paths  Paths
	opts   *azureOptions
	client *http.Client
	logger *slog.Logger
}

func newAzureCollector(env Env, opts any) (Collector, error) {
	o := opts.(*azureOptions)
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint: %q is not an http(s) URL", o.Endpoint)
	}
	if o.RequestTimeout <= 0 {
		return nil, fmt.Errorf("request_timeout: %s must be above 0", o.RequestTimeout)
	}
	// IMDS answers only on the VM's own link, so a proxy from the
	// environment (HTTP_PROXY, common on lab VMs) must never see the
	// request; redirects are not followed either.
	transport := &http.Transport{
		Proxy:                  nil,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 64 << 10,
		ResponseHeaderTimeout:  o.RequestTimeout,
	}
	return &azureCollector{
		paths:  env.Paths,
		opts:   o,
		logger: env.Logger,
		client: &http.Client{
			Transport:     transport,
			Timeout:       o.RequestTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

func (c *azureCollector) Update(ctx context.Context, m *Metrics) error {
	if !c.opts.Force {
		azure, err := isAzure(c.paths)
		if err != nil {
			return err
		}
		if !azure {
			return fmt.Errorf("not an Azure VM (DMI), instance metadata not asked: %w", ErrNoData)
		}
	}
	doc, err := c.fetch(ctx)
	if err != nil {
		m.Set(azureMetadataUpFact, 0)
		return fmt.Errorf("instance metadata: %w", err)
	}
	m.Set(azureMetadataUpFact, 1)
	inst := doc.Compute
	img := inst.StorageProfile.ImageReference
	m.Set(azureInstanceInfoFact, 1, inst.VMSize, inst.Location, inst.Zone, inst.VMID,
		img.Publisher, img.Offer, img.SKU, img.Version, img.imageID(), inst.SecurityProfile.SecurityType)
	if n, ok := expectedGPUs(inst.VMSize); ok {
		m.Set(gpuDevicesExpected, float64(n))
	}
	if len(c.opts.Tags) > 0 {
		// ARM tag names are unique, but a duplicate in a hand-made or
		// garbled document must not become a duplicate series, which
		// would fail the whole scrape.
		seen := map[string]bool{}
		for _, t := range inst.tags() {
			if slices.Contains(c.opts.Tags, t.Name) && !seen[t.Name] {
				seen[t.Name] = true
				m.Set(azureInstanceTagFact, 1, t.Name, t.Value)
			}
		}
	}
	return c.updateScheduledEvents(ctx, m)
}

// maxIMDSSize bounds the metadata document; a real one is a few kilobytes
// (more with many data disks, NICs and public keys).
const maxIMDSSize = 1 << 20

func (c *azureCollector) fetch(ctx context.Context) (*imdsDocument, error) {
	body, err := c.get(ctx, c.opts.Endpoint)
	if err != nil {
		return nil, err
	}
	return parseIMDS(body)
}

// get fetches an IMDS document: the Metadata header IMDS requires, no
// proxy, no redirect, the request timeout, and a bounded answer.
func (c *azureCollector) get(ctx context.Context, endpoint string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Metadata", "true")
	resp, err := c.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is in the configuration, not news
		}
		if isTimeout(err) {
			return nil, fmt.Errorf("no answer within %s", c.opts.RequestTimeout)
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIMDSSize+1))
	if err != nil {
		if isTimeout(err) {
			return nil, fmt.Errorf("no complete answer within %s", c.opts.RequestTimeout)
		}
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// The answer is quoted for the operator, with control characters
		// escaped: it goes to the log and to `check` on a terminal.
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, host.EscapeControl(truncate(strings.TrimSpace(string(body)), 120)))
	}
	if len(body) > maxIMDSSize {
		return nil, fmt.Errorf("answer larger than %d bytes", maxIMDSSize)
	}
	return body, nil
}

// isTimeout reports whether err is the request timeout (or the collector's
// own deadline) expiring.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// imdsDocument is the part of /metadata/instance the collector reads. IMDS
// writes every scalar as a JSON string ("true", "30"), so the fields are
// strings.
type imdsDocument struct {
	Compute imdsCompute `json:"compute"`
}

type imdsCompute struct {
	VMSize          string `json:"vmSize"`
	Location        string `json:"location"`
	Zone            string `json:"zone"`
	VMID            string `json:"vmId"`
	SecurityProfile struct {
		SecurityType string `json:"securityType"`
	} `json:"securityProfile"`
	StorageProfile struct {
		ImageReference imdsImageReference `json:"imageReference"`
	} `json:"storageProfile"`
	// Tags is "name:value;name:value" (every api-version); TagsList
	// (2019-06-04 on) holds the same without ambiguity when a value
	// contains ':' or ';'.
	Tags     string    `json:"tags"`
	TagsList []imdsTag `json:"tagsList"`
}

type imdsImageReference struct {
	ID                      string `json:"id"`
	Publisher               string `json:"publisher"`
	Offer                   string `json:"offer"`
	SKU                     string `json:"sku"`
	Version                 string `json:"version"`
	SharedGalleryImageID    string `json:"sharedGalleryImageId"`
	CommunityGalleryImageID string `json:"communityGalleryImageId"`
}

type imdsTag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// imageID is the gallery image the VM was built from: the Azure Compute
// Gallery image version id for an image in the VM's own tenant, or the
// shared/community gallery id; empty for a marketplace image.
func (r imdsImageReference) imageID() string {
	for _, id := range []string{r.ID, r.SharedGalleryImageID, r.CommunityGalleryImageID} {
		if id != "" {
			return id
		}
	}
	return ""
}

func (c imdsCompute) tags() []imdsTag {
	var out []imdsTag
	if len(c.TagsList) > 0 {
		for _, t := range c.TagsList {
			if t.Name != "" {
				out = append(out, t)
			}
		}
		return out
	}
	for _, kv := range strings.Split(c.Tags, ";") {
		if name, value, ok := strings.Cut(kv, ":"); ok && name != "" {
			out = append(out, imdsTag{Name: name, Value: value})
		}
	}
	return out
}

// parseIMDS decodes a metadata document. Unknown fields are expected (the
// service adds some in every api-version); a document without a compute
// object, or whose compute object names no VM, is not one.
func parseIMDS(b []byte) (*imdsDocument, error) {
	var raw struct {
		Compute json.RawMessage `json:"compute"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("not a metadata document: %w", err)
	}
	if len(raw.Compute) == 0 || bytes.Equal(raw.Compute, []byte("null")) {
		return nil, errors.New("not a metadata document: no compute object")
	}
	var doc imdsDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a metadata document: %w", err)
	}
	if doc.Compute.VMID == "" && doc.Compute.VMSize == "" {
		return nil, errors.New("not a metadata document: compute has neither vmId nor vmSize")
	}
	return &doc, nil
}
