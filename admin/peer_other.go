//go:build !linux

package admin

import "net"

// peerActor is "operator": this platform's peer credentials are not read.
func peerActor(net.Conn) string { return operator }
