package dashboard

import (
	"net"
	"strconv"
)

// URLFor is the address to open in a browser for a dashboard listening on
// addr: a wildcard bind (0.0.0.0, [::]) is shown as localhost, since a
// browser cannot open the unspecified address.
func URLFor(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String() + "/"
	}
	host := tcp.IP.String()
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port)) + "/"
}
