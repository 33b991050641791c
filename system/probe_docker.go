package system

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// DockerSocket is where dockerd serves its API.
const DockerSocket = "/var/run/docker.sock"

// ErrDockerAPIUnreachable: the socket could not be connected to (absent, no permission, dockerd down).
var ErrDockerAPIUnreachable = errors.New("the Docker API cannot be reached")

// DockerContainer is what the matrix needs of `docker inspect`.
type DockerContainer struct {
	ID    string `json:"Id"`
	Name  string `json:"Name"`
	State struct {
		Running bool `json:"Running"`
		Pid     int  `json:"Pid"`
	} `json:"State"`
	NetworkSettings struct {
		Ports map[string][]struct {
			HostIP   string `json:"HostIp"`
			HostPort string `json:"HostPort"`
		} `json:"Ports"`
	} `json:"NetworkSettings"`
}

// dockerAPI GETs path from the Docker API on the local socket: read-only, and much faster than starting
// the docker CLI (about a second on a small VM), which matters when the matrix waits for the container.
func (h *Host) dockerAPI(ctx context.Context, path string, out any) error {
	sock := h.Path(DockerSocket)
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %v", ErrDockerAPIUnreachable, sock, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s from the Docker API: %s: %s", path, resp.Status, body)
	}
	return json.Unmarshal(body, out)
}

// DockerInspectAPI is `docker inspect NAME` through the API socket.
func (h *Host) DockerInspectAPI(ctx context.Context, name string) (DockerContainer, error) {
	var c DockerContainer
	err := h.dockerAPI(ctx, "/containers/"+url.PathEscape(name)+"/json", &c)
	return c, err
}

// DockerRunningAPI lists the IDs of running containers matching one filter ("label", "k=v"), as
// `docker ps -q --filter k=v` does.
func (h *Host) DockerRunningAPI(ctx context.Context, key, value string) ([]string, error) {
	f, _ := json.Marshal(map[string][]string{key: {value}})
	var list []struct {
		ID string `json:"Id"`
	}
	if err := h.dockerAPI(ctx, "/containers/json?filters="+url.QueryEscape(string(f)), &list); err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, c := range list {
		ids[i] = c.ID
	}
	return ids, nil
}
