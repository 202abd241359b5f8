package gateway

import "errors"

func newTUNPlane(g *Gateway) (dataPlane, tunDevice, error) {
	return nil, nil, errors.New("tun mode: not implemented yet")
}
