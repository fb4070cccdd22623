package container

import (
	"slices"
	"testing"
)

// TestOneOffContainersHaveLimits: the one-off containers of copy mode
// (the workspace's chown, run as root with CAP_CHOWN, and the agent's
// install) get the profile, no network, a read-only root and limits on
// processes, memory and CPU, as every other container of ours.
func TestOneOffContainersHaveLimits(t *testing.T) {
	cfg, hc := oneOffConfig("img", []string{"--own-workspace", "1000:1000"}, []string{"CHOWN"}, nil, map[string]string{"k": "v"})
	if cfg.User != "0:0" || !cfg.NetworkDisabled || hc.NetworkMode != "none" || !hc.ReadonlyRootfs {
		t.Fatalf("config: %+v %+v", cfg, hc)
	}
	if !slices.Equal(hc.CapDrop, []string{"ALL"}) || !slices.Equal(hc.CapAdd, []string{"CHOWN"}) {
		t.Fatalf("capabilities: drop %v add %v", hc.CapDrop, hc.CapAdd)
	}
	r := hc.Resources
	if r.PidsLimit == nil || *r.PidsLimit != oneOffPIDs || r.Memory != oneOffMemory || r.MemorySwap != oneOffMemory || r.NanoCPUs != 1e9 || len(r.Ulimits) == 0 {
		t.Fatalf("limits: %+v", r)
	}
	if !slices.ContainsFunc(hc.SecurityOpt, func(o string) bool { return o == "no-new-privileges" || o == "no-new-privileges:true" }) ||
		!slices.ContainsFunc(hc.SecurityOpt, func(o string) bool { return len(o) > 8 && o[:8] == "seccomp=" }) {
		t.Fatalf("security options: %v", hc.SecurityOpt)
	}
}
