package container

import "context"

// Do runs fn on a container of the sandbox, as an operation does: for the
// tests of what happens when fn fails.
func (s *Sandbox) Do(ctx context.Context, fn func(c *Container) error) error {
	return s.do(ctx, false, fn)
}
