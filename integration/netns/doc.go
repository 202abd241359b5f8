// Package netns holds Veil's network-namespace end-to-end tests: a client,
// a gateway and an "internet" host, each in its own namespace, joined only
// to each other by veth pairs. They need root and run when
// VEIL_TEST_NETNS=1 (scripts/test.sh sets it for root).
package netns
