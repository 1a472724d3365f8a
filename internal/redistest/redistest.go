// Package redistest starts a private redis-server for tests: on a free
// loopback port (127.0.0.1 only), in a temporary directory, stopped by the
// process id it started. A test that calls Start is skipped, with a message
// saying so, when redis-server is not installed.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is one running redis-server.
type Server struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	// Dir is the server's working directory (its AOF and RDB files).
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
	args []string
}

// URL returns the redis:// URL of database db on the server.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr, db) }

// Pid returns the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Start starts a redis-server for t and stops it (by its pid) at cleanup.
// extra are additional config lines ("appendonly yes"). It skips t when
// redis-server is not on PATH.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server): skipping the Redis test")
	}
	s := &Server{Dir: t.TempDir()}
	s.args = extra
	if err := s.start(bin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start(bin string) error {
	var lastErr error
	for range 5 { // the port may be taken between freePort and the server's bind
		port := 0
		if s.Addr != "" {
			_, p, _ := net.SplitHostPort(s.Addr)
			port, _ = strconv.Atoi(p)
		} else {
			p, err := freePort()
			if err != nil {
				return err
			}
			port = p
		}
		conf := []string{
			"bind 127.0.0.1",
			"protected-mode yes",
			"port " + strconv.Itoa(port),
			"dir " + s.Dir,
			"save \"\"",
			"daemonize no",
			"logfile " + filepath.Join(s.Dir, "redis.log"),
		}
		conf = append(conf, s.args...)
		cf := filepath.Join(s.Dir, "redis.conf")
		if err := os.WriteFile(cf, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
			return fmt.Errorf("write redis.conf: %w", err)
		}
		cmd := exec.Command(bin, cf)
		cmd.Dir = s.Dir
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start redis-server: %w", err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if err := waitReady(addr, done); err != nil {
			cmd.Process.Kill()
			<-done
			lastErr = err
			if s.Addr != "" {
				return err
			}
			continue
		}
		s.Addr, s.cmd, s.done = addr, cmd, done
		return nil
	}
	return fmt.Errorf("redis-server did not start: %w", lastErr)
}

// waitReady waits (hang guard 60 s) until the server answers PING, or fails
// when the process exits first.
func waitReady(addr string, done <-chan struct{}) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited during start", addr)
		default:
		}
		if ping(addr) == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not answer PING within 60 s", addr)
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// CPU returns the CPU time (user and system) the server has used, from
// INFO cpu; a benchmark subtracts two readings for its run's share.
func (s *Server) CPU(t testing.TB) time.Duration {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("redistest: read the server's CPU time: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte("INFO cpu\r\n")); err != nil {
		t.Fatalf("redistest: read the server's CPU time: %v", err)
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		t.Fatalf("redistest: INFO cpu answered %q (%v)", head, err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatalf("redistest: read INFO cpu: %v", err)
	}
	var sec float64
	for _, line := range strings.Split(string(body), "\r\n") {
		for _, k := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				f, _ := strconv.ParseFloat(v, 64)
				sec += f
			}
		}
	}
	return time.Duration(sec * float64(time.Second))
}

// Kill stops the server with SIGKILL (os.Process.Kill) and waits for it to exit.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Stop stops the server by its pid and waits for it to exit. It is idempotent.
func (s *Server) Stop() { s.Kill() }

// Restart kills the server and starts it again on the same port and directory
// (so that an append-only file, if configured, is replayed).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.start(bin); err != nil {
		t.Fatal(err)
	}
}

// Cluster is a Redis Cluster of three masters on loopback ports.
type Cluster struct {
	Nodes []*Server
}

// URL returns a redis:// URL naming every node (the first as host, the
// others as addr= parameters), for a cluster client.
func (c *Cluster) URL() string {
	u := "redis://" + c.Nodes[0].Addr
	for i, n := range c.Nodes[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + n.Addr
	}
	return u
}

// StartCluster starts three cluster-enabled redis-servers, joins them with
// redis-cli --cluster create (no replicas) and waits (hang guard 60 s) until
// the cluster is ok. It skips t when redis-server or redis-cli is missing.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed: skipping the Redis Cluster test")
	}
	c := &Cluster{}
	for range 3 {
		c.Nodes = append(c.Nodes, Start(t, "cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 5000"))
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, n := range c.Nodes {
		for {
			out, _ := exec.Command(cli, "-h", "127.0.0.1", "-p", strings.TrimPrefix(n.Addr, "127.0.0.1:"), "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s not ok within 60 s:\n%s", n.Addr, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}
