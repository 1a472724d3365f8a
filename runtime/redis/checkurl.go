package redis

import (
	"fmt"
	"net"
	"net/url"
	"strconv"

	goredis "github.com/redis/go-redis/v9"
)

// CheckURL reports what in rawURL (a URL as ParseURL takes it) cannot work,
// without connecting: an unknown or malformed query option, a database that
// is not a number, or a port, of the host or of an addr= parameter, outside
// 1-65535 (which go-redis would only find when it dials).
func CheckURL(rawURL string, cluster bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("parse URL: %w", err)
	}
	addrs := append([]string{u.Host}, u.Query()["addr"]...)
	for _, a := range addrs {
		if err := checkPort(a); err != nil {
			return err
		}
	}
	switch {
	case cluster:
		_, err = goredis.ParseClusterURL(rawURL)
	case u.Query().Has("master_name"):
		_, err = goredis.ParseFailoverURL(rawURL)
	default:
		_, err = goredis.ParseURL(rawURL)
	}
	return err
}

// checkPort checks the port of a host[:port] address, if it has one.
func checkPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return nil // no port: go-redis uses 6379
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("address %s: port %q is not a number from 1 to 65535", addr, port)
	}
	return nil
}
