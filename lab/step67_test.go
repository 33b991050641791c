package lab

// The REAL OpenClaw gateway in the lab (TestLabFullRun): no registry is reachable from the VM, so
// lab/openclaw-image.sh builds a rootfs (openclaw 2026.9.6 from npm on Node 24, uid 1000, /app) which is
// streamed over SSH into `docker import` under this name.

const labOpenClawImage = "lab/openclaw:2026.9.6"

// step67Debug is what a failed deploy needs to be understood: container state, both log streams, memory.
func step67Debug(l *Lab) string {
	o, _, _, _ := l.Run("docker ps -a; docker inspect --format '{{json .State}} restarts={{.RestartCount}}' openclaw-gateway; " +
		"docker logs --tail 60 openclaw-gateway 2>&1 | sed 's/\\x1b\\[[0-9;]*m//g'; free -m; dmesg | grep -iE 'oom|killed' | tail -5")
	return o
}
