package filtercli

import (
	"fmt"

	"github.com/llm-runtime/llm-runtime/config"
)

// Legacy are the original llm-runtime's spellings, accepted, hidden,
// where they mean one setting here; each one used warns once on standard
// error with the spelling to use instead. The original's flags that have
// no setting here are refused with the reason, never silently ignored.
type Legacy struct {
	ExecEnabled  bool   `name:"exec-enabled" hidden:""`
	ExecList     string `name:"exec-whitelist" hidden:""`
	ExecImage    string `name:"exec-image" hidden:""`
	ExecCont     string `name:"exec-container" hidden:""`
	ExecTimeout  string `name:"exec-timeout" hidden:""`
	ExecMemory   string `name:"exec-memory" hidden:""`
	MaxSize      string `name:"max-size" hidden:""`
	MaxWriteSize string `name:"max-write-size" hidden:""`
	Exclude      string `name:"exclude" hidden:""`
	JSON         bool   `name:"json" hidden:""`
	IOImage      string `name:"io-image" hidden:""`
	IOCont       string `name:"io-container" hidden:""`
	IOTimeout    string `name:"io-timeout" hidden:""`
	IOMemory     string `name:"io-memory" hidden:""`
}

// legacySetting is one old flag that sets one setting.
type legacySetting struct {
	flag, key, value, instead string
}

// settings returns the old flags that were given and the settings they set.
func (l *Legacy) settings() []legacySetting {
	on := func(b bool, v string) string {
		if b {
			return v
		}
		return ""
	}
	all := []legacySetting{
		{"--exec-enabled", "exec.enabled", on(l.ExecEnabled, "true"), "--exec"},
		{"--exec-whitelist", "exec.whitelist", l.ExecList, "exec.whitelist in the configuration, or LLM_RUNTIME_EXEC_WHITELIST"},
		{"--exec-image", "exec.image", l.ExecImage, "exec.image in the configuration, or LLM_RUNTIME_EXEC_IMAGE"},
		{"--exec-container", "exec.image", l.ExecCont, "exec.image in the configuration, or LLM_RUNTIME_EXEC_IMAGE"},
		{"--exec-timeout", "exec.timeout", l.ExecTimeout, "exec.timeout in the configuration, or LLM_RUNTIME_EXEC_TIMEOUT"},
		{"--exec-memory", "exec.memory", l.ExecMemory, "exec.memory in the configuration, or LLM_RUNTIME_EXEC_MEMORY"},
		{"--max-size", "security.max_file_size", l.MaxSize, "security.max_file_size in the configuration, or LLM_RUNTIME_SECURITY_MAX_FILE_SIZE"},
		{"--max-write-size", "security.max_write_size", l.MaxWriteSize, "security.max_write_size in the configuration, or LLM_RUNTIME_SECURITY_MAX_WRITE_SIZE"},
		{"--exclude", "security.excluded_paths", l.Exclude, "security.excluded_paths in the configuration, or LLM_RUNTIME_SECURITY_EXCLUDED_PATHS"},
		{"--json", "output.format", on(l.JSON, "jsonl"), "--format jsonl (one JSON object per command)"},
	}
	var used []legacySetting
	for _, s := range all {
		if s.value != "" {
			used = append(used, s)
		}
	}
	return used
}

// refused returns an error for the first old flag given that has no
// setting here.
func (l *Legacy) refused() error {
	for _, r := range []struct{ flag, value, why string }{
		{"--io-image", l.IOImage, "the sandbox image is built from this binary (llm-runtime-io:<sum of the binary>) and cannot be replaced; see 'llm-runtime image status'"},
		{"--io-container", l.IOCont, "the sandbox image is built from this binary (llm-runtime-io:<sum of the binary>) and cannot be replaced; see 'llm-runtime image status'"},
		{"--io-timeout", l.IOTimeout, "file operations have no timeout of their own here: a pooled one takes well under a millisecond, and container_pool.acquire_timeout bounds the wait for a container"},
		{"--io-memory", l.IOMemory, "sandbox containers have a fixed 256 MiB (no swap); exec containers take exec.memory"},
	} {
		if r.value != "" {
			return Fail(ExitUsage, "%s is a flag of the original llm-runtime with no equivalent here: %s", r.flag, r.why)
		}
	}
	return nil
}

// apply sets the settings of the old flags given, warning on warn for
// each, and refuses those with no equivalent.
func (l *Legacy) apply(cfg *config.Config, warn func(string)) error {
	if err := l.refused(); err != nil {
		return err
	}
	for _, s := range l.settings() {
		warn(fmt.Sprintf("llm-runtime: %s is the original llm-runtime's spelling; it still works, but say %s", s.flag, s.instead))
		if err := cfg.Set(s.key, s.value, s.flag); err != nil {
			return Fail(ExitConfig, "%v", err)
		}
	}
	return nil
}
