package stagerpc

import (
	"encoding/json"
	"fmt"
	"net"

	"github.com/hashicorp/go-plugin"
)

// EnvReattach names the environment variable through which a host is told
// about plugins already running in debug mode: a JSON object mapping each
// plugin name to a Reattach, as printed by `PLUGIN -debug`.
const EnvReattach = "SWEETSPOT_REATTACH"

// Reattach is the JSON form of a go-plugin ReattachConfig.
type Reattach struct {
	Protocol        string `json:"protocol"`
	ProtocolVersion int    `json:"protocol_version"`
	Pid             int    `json:"pid"`
	Test            bool   `json:"test"`
	Network         string `json:"network"`
	Address         string `json:"address"`
}

// ReattachOf converts a go-plugin ReattachConfig.
func ReattachOf(rc *plugin.ReattachConfig) Reattach {
	return Reattach{
		Protocol:        string(rc.Protocol),
		ProtocolVersion: rc.ProtocolVersion,
		Pid:             rc.Pid,
		Test:            rc.Test,
		Network:         rc.Addr.Network(),
		Address:         rc.Addr.String(),
	}
}

// Config converts back to a go-plugin ReattachConfig.
func (r Reattach) Config() (*plugin.ReattachConfig, error) {
	var addr net.Addr
	var err error
	switch r.Network {
	case "unix":
		addr, err = net.ResolveUnixAddr("unix", r.Address)
	case "tcp":
		addr, err = net.ResolveTCPAddr("tcp", r.Address)
	default:
		return nil, fmt.Errorf("reattach: unknown network %q", r.Network)
	}
	if err != nil {
		return nil, fmt.Errorf("reattach: %w", err)
	}
	return &plugin.ReattachConfig{
		Protocol:        plugin.Protocol(r.Protocol),
		ProtocolVersion: r.ProtocolVersion,
		Pid:             r.Pid,
		Test:            r.Test,
		Addr:            addr,
	}, nil
}

// ParseReattachEnv parses the value of EnvReattach.
func ParseReattachEnv(v string) (map[string]Reattach, error) {
	m := map[string]Reattach{}
	if v == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", EnvReattach, err)
	}
	return m, nil
}
