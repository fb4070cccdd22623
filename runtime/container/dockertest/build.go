package dockertest

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// BuildImage builds tag from a Dockerfile and files (name -> content; a
// content starting with "->" makes a link to the rest, one ending in / a
// directory; names under bin/ are executable, but for those ending in
// "data") with the classic builder, labelled with the test's labels, and
// removes it when the test ends.
func BuildImage(t testing.TB, env Env, tag, dockerfile string, files map[string]string) {
	t.Helper()
	for k, v := range env.Labels {
		dockerfile += "LABEL " + k + "=" + v + "\n"
	}
	var ctx bytes.Buffer
	tw := tar.NewWriter(&ctx)
	tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile)), Typeflag: tar.TypeReg})
	tw.Write([]byte(dockerfile))
	for name, content := range files {
		switch {
		case strings.HasPrefix(content, "->"):
			tw.WriteHeader(&tar.Header{Name: name, Linkname: content[2:], Mode: 0o777, Typeflag: tar.TypeSymlink})
		case strings.HasSuffix(name, "/"):
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir})
		default:
			mode := int64(0o644)
			if strings.Contains(name, "bin/") && !strings.HasSuffix(name, "data") {
				mode = 0o755
			}
			tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(content)), Typeflag: tar.TypeReg})
			tw.Write([]byte(content))
		}
	}
	tw.Close()
	cmd := exec.Command("docker", "build", "-q", "-t", tag, "-")
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	cmd.Stdin = &ctx
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", tag, err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
}
