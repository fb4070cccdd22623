package bench

import (
	"fmt"
	"strings"
)

// Mode is how the invocations run their operations.
type Mode string

const (
	// Unpooled starts a container per operation and removes it after
	// (--no-pool): the pooling guide's "without pool".
	Unpooled Mode = "unpooled"
	// Pooled uses the default container pool: "with pool".
	Pooled Mode = "pooled"
	// Attach is Pooled with every operation over the containers' attach
	// stream, through dockerd (container_pool.transport: attach), for the
	// per-operation figures by transport.
	Attach Mode = "attach"
	// Served runs each invocation through a daemon (llm-runtime serve)
	// that the bench starts on a private socket and stops at the end: its
	// pool stays warm from one invocation to the next.
	Served Mode = "served"
	// Local runs the operations on the host, in the llm-runtime process
	// (--sandbox local): the floor no container mode can beat.
	Local Mode = "local"
)

// Modes are the modes in the order the tables show them.
var Modes = []Mode{Unpooled, Pooled, Attach, Served, Local}

// ParseModes reads a list of modes (unpooled, pooled, local), each at
// most once, and returns them in the order of Modes.
func ParseModes(list []string) ([]Mode, error) {
	seen := map[Mode]bool{}
	for _, s := range list {
		for _, f := range strings.Split(s, ",") {
			m := Mode(strings.TrimSpace(f))
			switch m {
			case Unpooled, Pooled, Attach, Served, Local:
			default:
				return nil, fmt.Errorf("unknown mode %q: want unpooled, pooled, attach, served or local", f)
			}
			if seen[m] {
				return nil, fmt.Errorf("mode %s given twice", m)
			}
			seen[m] = true
		}
	}
	var out []Mode
	for _, m := range Modes {
		if seen[m] {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no mode: want one or more of unpooled, pooled, attach, served, local")
	}
	return out, nil
}

// Flags are the llm-runtime flags that select the mode, socket being the
// bench's daemon. The sandbox is named even when it is the default, and
// the server always, so that nothing else decides them (a daemon of the
// user's serves none of the other modes).
func (m Mode) Flags(socket string) []string {
	switch m {
	case Unpooled:
		return []string{"--sandbox", "docker", "--no-pool", "--server", "never"}
	case Pooled, Attach:
		return []string{"--sandbox", "docker", "--server", "never"}
	case Served:
		return []string{"--sandbox", "docker", "--server", socket}
	default:
		return []string{"--sandbox", "local", "--server", "never"}
	}
}

// Env is what the mode adds to the invocations' environment.
func (m Mode) Env() []string {
	if m == Attach {
		return []string{"LLM_RUNTIME_CONTAINER_POOL_TRANSPORT=attach"}
	}
	return nil
}

// Title is the mode's column heading, in the words of the pooling guide.
func (m Mode) Title() string {
	switch m {
	case Unpooled:
		return "Without pool"
	case Pooled:
		return "With pool"
	case Attach:
		return "With pool, attach"
	case Served:
		return "Served"
	default:
		return "Local"
	}
}

// Docker reports whether the mode runs containers.
func (m Mode) Docker() bool { return m != Local }

// NeedsDocker reports whether any of modes runs containers.
func NeedsDocker(modes []Mode) bool {
	for _, m := range modes {
		if m.Docker() {
			return true
		}
	}
	return false
}
