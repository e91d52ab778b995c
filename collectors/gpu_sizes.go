package collectors

import "strings"

// gpuDevicesExpected is the azure collector's: the VM size comes from the
// instance metadata.
var gpuDevicesExpected = declare(Fact{Collector: "azure", Subsystem: "gpu", Name: "devices_expected",
	Help: "GPUs the Azure VM size promises (a table of the NC, ND and NV series from Azure's size documentation; a fractional A10 vGPU counts as 1). Absent for a size the table does not know or that has no GPU.",
})

// azureGPUSizes maps an Azure VM size (lower case, without "standard_") to
// the number of GPU devices the guest sees, from the series pages of
// learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated.
var azureGPUSizes = map[string]int{
	// NCv3 (V100)
	"nc6s_v3": 1, "nc12s_v3": 2, "nc24s_v3": 4, "nc24rs_v3": 4,
	// NCasT4_v3 (T4)
	"nc4as_t4_v3": 1, "nc8as_t4_v3": 1, "nc16as_t4_v3": 1, "nc64as_t4_v3": 4,
	// NC A100 v4
	"nc24ads_a100_v4": 1, "nc48ads_a100_v4": 2, "nc96ads_a100_v4": 4,
	// NCads H100 v5 (H100 NVL) and NCCads H100 v5 (confidential)
	"nc40ads_h100_v5": 1, "nc80adis_h100_v5": 2, "ncc40ads_h100_v5": 1,
	// NDv2 (V100), ND A100 v4, NDm A100 v4
	"nd40rs_v2": 8, "nd96asr_v4": 8, "nd96amsr_a100_v4": 8,
	// ND H100 v5, ND H200 v5, ND MI300X v5, ND GB200 v6
	"nd96isr_h100_v5": 8, "nd96isr_h200_v5": 8, "nd96isr_mi300x_v5": 8, "nd128isr_ndr_gb200_v6": 4,
	// NVv3 (M60), NVadsA10 v5 (fractional vGPUs below NV36)
	"nv12s_v3": 1, "nv24s_v3": 2, "nv48s_v3": 4,
	"nv6ads_a10_v5": 1, "nv12ads_a10_v5": 1, "nv18ads_a10_v5": 1, "nv36ads_a10_v5": 1, "nv36adms_a10_v5": 1, "nv72ads_a10_v5": 2,
	// NVv4 (AMD MI25 partitions)
	"nv4as_v4": 1, "nv8as_v4": 1, "nv16as_v4": 1, "nv32as_v4": 1,
}

// expectedGPUs returns the GPU count of an Azure VM size, and false for a
// size the table does not know.
func expectedGPUs(vmSize string) (int, bool) {
	n, ok := azureGPUSizes[strings.TrimPrefix(strings.ToLower(vmSize), "standard_")]
	return n, ok
}
