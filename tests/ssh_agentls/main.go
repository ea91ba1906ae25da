// agentls lists the keys of the SSH agent at $SSH_AUTH_SOCK as SHA256 fingerprints.
package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	c, err := net.Dial("unix", os.Getenv("SSH_AUTH_SOCK"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c.Write([]byte{0, 0, 0, 1, 11}) // SSH2_AGENTC_REQUEST_IDENTITIES
	var n uint32
	binary.Read(c, binary.BigEndian, &n)
	msg := make([]byte, n)
	io.ReadFull(c, msg)
	if msg[0] != 12 { // SSH2_AGENT_IDENTITIES_ANSWER
		os.Exit(2)
	}
	count := binary.BigEndian.Uint32(msg[1:5])
	rest := msg[5:]
	for i := uint32(0); i < count; i++ {
		l := binary.BigEndian.Uint32(rest)
		blob := rest[4 : 4+l]
		rest = rest[4+l:]
		cl := binary.BigEndian.Uint32(rest)
		rest = rest[4+cl:]
		sum := sha256.Sum256(blob)
		fmt.Println("SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]))
	}
}
