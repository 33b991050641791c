package lab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Image is a built lab image and everything made with it (see image.sh for the layout).
type Image struct {
	Dir        string // the cache directory, keyed by the recipe's hash
	Base       string // raw ext4 root filesystem
	Kernel     string
	Initrd     string
	Key        string // private key authorized for user admin
	HostKey    string // the image's ssh_host_ed25519_key.pub
	CACert     string // the lab CA, trusted inside the image
	ServerCert string // certificate for deb.debian.org, security.debian.org, api.telegram.org, www.lab.test
	ServerKey  string
	Mirror     string // root of the stand-in mirror (debian/, debian-security/)
	BuildTime  time.Duration
}

// Credentials baked into the image.
const (
	AdminUser     = "admin"
	AdminPassword = "labpass"
	RootPassword  = "labroot"
)

// srcDir is the lab package's source directory (where image.sh lives).
func srcDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Dir(file)
}

// RepoRoot is the module root (the parent of lab/).
func RepoRoot() string { return filepath.Dir(srcDir()) }

var (
	imageOnce sync.Once
	imageVal  *Image
	imageErr  error
)

// GetImage builds the lab image, or finds it in the cache, once per test process.
func GetImage(t testing.TB) (*Image, error) {
	imageOnce.Do(func() {
		start := time.Now()
		script := filepath.Join(srcDir(), "image.sh")
		cmd := exec.Command("bash", script)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		cmd.Stderr = os.Stderr // progress with timings
		if err := cmd.Run(); err != nil {
			imageErr = fmt.Errorf("building the lab image (%s): %w", script, err)
			return
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		dir := lines[len(lines)-1]
		img := &Image{
			Dir: dir, Base: filepath.Join(dir, "base.img"), Kernel: filepath.Join(dir, "vmlinuz"),
			Initrd: filepath.Join(dir, "initrd.img"), Key: filepath.Join(dir, "id_ed25519"),
			HostKey: filepath.Join(dir, "ssh_host_ed25519_key.pub"), CACert: filepath.Join(dir, "ca.crt"),
			ServerCert: filepath.Join(dir, "server.crt"), ServerKey: filepath.Join(dir, "server.key"),
			Mirror: filepath.Join(dir, "mirror"), BuildTime: time.Since(start),
		}
		for _, f := range []string{img.Base, img.Kernel, img.Initrd, img.Key, img.HostKey, img.CACert, img.ServerCert, img.ServerKey, img.Mirror} {
			if _, err := os.Stat(f); err != nil {
				imageErr = fmt.Errorf("lab image %s is incomplete: %w", dir, err)
				return
			}
		}
		imageVal = img
	})
	if imageErr == nil {
		t.Logf("lab image: %s (get/build took %s)", imageVal.Dir, imageVal.BuildTime.Round(100*time.Millisecond))
	}
	return imageVal, imageErr
}
