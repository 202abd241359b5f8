// Package transport carries WireGuard messages over transports that get
// through networks which block or recognise WireGuard's UDP: TLS 1.3 on
// TCP (port 443 by default), which to an observer is a connection to a web
// server, and QUIC, whose DATAGRAM frames (RFC 9221) carry one WireGuard
// message each under the ALPN "h3", so that the connection looks like
// HTTP/3.
//
// Both sides are wireguard-go conn.Bind implementations: ServerBind, for a
// gateway, serves plain UDP (the wrapped bind) beside TLS and QUIC
// listeners and gives every connection an Endpoint of its own;
// ClientBind, for a client, sends either over plain UDP or over one
// connection it dials to the gateway. Nothing here logs an address.
//
// The client checks the gateway's certificate against a pin (the SHA-256
// of its public key) that the control plane publishes in the server list;
// no certificate authority is trusted or needed.
package transport
