package admin

import (
	"net"
	"strconv"
	"syscall"
)

// peerActor names the process at the other end of a Unix socket
// connection for the audit trail: "operator:uid=<uid>", from the kernel
// (SO_PEERCRED), so the peer cannot claim another. "operator" when the
// kernel does not say.
func peerActor(c net.Conn) string {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return operator
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return operator
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil || cred == nil {
		return operator
	}
	return operator + ":uid=" + strconv.FormatUint(uint64(cred.Uid), 10)
}
