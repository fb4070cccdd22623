package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/llm-runtime/llm-runtime/engine"
	"github.com/llm-runtime/llm-runtime/internal/filtercli"
	"github.com/llm-runtime/llm-runtime/runtime/container"
)

// dockerAndAgent is engine.DockerAndAgent, its failure exit 3.
func dockerAndAgent(ctx context.Context) (*container.Docker, string, error) {
	d, bin, err := engine.DockerAndAgent(ctx, version)
	return d, bin, exitOf(err)
}

// exitOf gives an error of the engine its exit code.
func exitOf(err error) error {
	var ee *engine.Error
	if !errors.As(err, &ee) {
		return err
	}
	code := map[engine.Kind]int{engine.KindConfig: exitConfig, engine.KindSandbox: exitSandbox, engine.KindIO: exitUsage}[ee.Kind]
	return &filtercli.ExitError{Code: code, Err: ee.Err}
}

type reaperCmd struct {
	Owner      int    `required:"" help:"The process whose containers to remove when it exits."`
	OwnerStart uint64 `help:"Its start time (clock ticks since boot, /proc/PID/stat): the containers of a later process given the same pid are left alone."`
}

func (r reaperCmd) Run(e env) error {
	if os.Getppid() == r.Owner {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		for os.Getppid() == r.Owner {
			select {
			case <-sig:
			case <-time.After(time.Second):
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := container.Connect(ctx, version)
	if err != nil {
		return err
	}
	defer d.Close()
	// Containers still being created appear a moment later: look twice.
	for range 2 {
		if _, err := d.RemoveOwned(ctx, r.Owner, r.OwnerStart); err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
	}
	return nil
}
