//go:build !linux

package gateway

import "errors"

func newTUNPlane(*Gateway) (dataPlane, tunDevice, error) {
	return nil, nil, errors.New("tun mode needs Linux; use netstack mode")
}
