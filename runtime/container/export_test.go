package container

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// RunHardened runs the static program at path, with args, in a container
// hardened exactly as Start hardens one of s, the program in place of the
// agent, and returns what it printed.
func (d *Docker) RunHardened(ctx context.Context, s Spec, path string, args ...string) (string, error) {
	cfg, hc, err := d.hardened(s)
	if err != nil {
		return "", err
	}
	cfg.Entrypoint, cfg.Cmd = []string{agentMount}, args
	cfg.AttachStdin, cfg.OpenStdin, cfg.StdinOnce = false, false, false
	hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: path, Target: agentMount, ReadOnly: true})
	cr, err := d.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc})
	if err != nil {
		return "", err
	}
	defer d.cli.ContainerRemove(context.WithoutCancel(ctx), cr.ID, client.ContainerRemoveOptions{Force: true})
	ar, err := d.cli.ContainerAttach(ctx, cr.ID, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return "", err
	}
	defer ar.Close()
	if _, err := d.cli.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		return "", err
	}
	var out, errOut strings.Builder
	if _, err := stdcopy.StdCopy(&out, &errOut, ar.Reader); err != nil {
		return out.String(), fmt.Errorf("%v (stderr: %s)", err, errOut.String())
	}
	if errOut.Len() > 0 {
		return out.String(), fmt.Errorf("stderr: %s", errOut.String())
	}
	return out.String(), nil
}

// Do runs fn on a container of the sandbox, as an operation does: for the
// tests of what happens when fn fails.
func (s *Sandbox) Do(ctx context.Context, fn func(c *Container) error) error {
	return s.do(ctx, false, fn)
}
