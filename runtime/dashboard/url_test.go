package dashboard

import (
	"net"
	"testing"
)

// TestURLFor: the printed address opens in a browser, also for a wildcard
// bind (it printed http://[::]:8181/ before).
func TestURLFor(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8181}, "http://127.0.0.1:8181/"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8181}, "http://[::1]:8181/"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8181}, "http://localhost:8181/"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 9}, "http://localhost:9/"},
		{&net.TCPAddr{Port: 9}, "http://localhost:9/"},
	} {
		if got := URLFor(c.addr); got != c.want {
			t.Errorf("URLFor(%v) = %q, want %q", c.addr, got, c.want)
		}
	}
}
