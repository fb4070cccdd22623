package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container"
)

type imageCmd struct {
	Build  imageBuildCmd  `cmd:"" help:"Build the sandbox image now (it is also built on first use)."`
	Status imageStatusCmd `cmd:"" help:"Show the sandbox image for this binary and what of ours exists in Docker."`
}

type imageBuildCmd struct {
	Force   bool   `help:"Build even if the image for this binary exists."`
	Which   string `arg:"" optional:"" enum:"sandbox,exec" default:"sandbox" help:"sandbox (the agent's image, llm-runtime-io) or exec (the default exec image, llm-runtime-exec:busybox, from a static busybox)."`
	Busybox string `default:"/bin/busybox" placeholder:"PATH" help:"The static busybox for the exec image (Debian: apt-get install busybox-static)."`
}

func (b imageBuildCmd) Run(e env) error {
	d, bin, err := dockerAndAgent(e.ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	start := time.Now()
	var img container.Image
	if b.Which == "exec" {
		if img, err = d.BuildBusyboxImage(e.ctx, b.Busybox, container.ExecImageName); err != nil {
			return fail(exitSandbox, "%v", err)
		}
		fmt.Fprintf(e.stdout, "built %s (%s) from %s in %.1fs\n", img.Ref, shortID(img.ID), b.Busybox, time.Since(start).Seconds())
		return nil
	}
	if b.Force {
		img, err = d.BuildImage(e.ctx, bin)
	} else {
		img, err = d.EnsureImage(e.ctx, bin)
	}
	if err != nil {
		return fail(exitSandbox, "%v", err)
	}
	if img.Created {
		fmt.Fprintf(e.stdout, "built %s (%s) in %.1fs\n", img.Ref, shortID(img.ID), time.Since(start).Seconds())
	} else {
		fmt.Fprintf(e.stdout, "%s (%s) is already built; --force builds it again\n", img.Ref, shortID(img.ID))
	}
	return nil
}

type imageStatusCmd struct{}

func (imageStatusCmd) Run(e env) error {
	d, bin, err := dockerAndAgent(e.ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	img, ok, err := d.InspectImage(e.ctx, bin)
	if err != nil {
		return fail(exitSandbox, "%v", err)
	}
	server, err := d.ServerVersion(e.ctx)
	if err != nil {
		return fail(exitSandbox, "%v", err)
	}
	fmt.Fprintf(e.stdout, "Docker:     %s\n", server)
	fmt.Fprintf(e.stdout, "Agent:      %s\n", filepath.Clean(bin))
	if ok {
		fmt.Fprintf(e.stdout, "Image:      %s (%s), built\n", img.Ref, shortID(img.ID))
	} else {
		fmt.Fprintf(e.stdout, "Image:      %s, not built yet (llm-runtime image build)\n", img.Ref)
	}
	items, err := d.Ours(e.ctx, "", "")
	if err != nil {
		return fail(exitSandbox, "%v", err)
	}
	fmt.Fprintf(e.stdout, "Containers: %d\n", len(items))
	for _, it := range items {
		name := strings.TrimPrefix(strings.Join(it.Names, ","), "/")
		fmt.Fprintf(e.stdout, "  %s  %s  owner pid %s  %s\n", shortID(it.ID), name, it.Labels[container.LabelOwnerPID], it.Status)
	}
	return nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}
