package config

// guestLists are the keys of the file's lists of guest modules. They are
// not settings: each item is a mapping (module, config, timeout,
// memory_limit), and they have no environment variable.
var guestLists = []string{"policies", "transforms"}

// Keys returns every key a configuration file may hold, in the order of
// the documentation: the dotted key of each setting ("container_pool.size"),
// then the lists of guest modules ("policies", "transforms"). The
// configuration reference (docs/configuration.md) documents exactly these.
func Keys() []string {
	keys := make([]string, 0, len(settings)+len(guestLists))
	for _, s := range settings {
		keys = append(keys, s.Key)
	}
	return append(keys, guestLists...)
}
