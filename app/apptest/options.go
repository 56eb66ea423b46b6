package apptest

import (
	"strings"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/authz/access"
	"github.com/vintner/arbor/service/clilogin"
)

// Routes sets the upstream route policy (auth.default_route and
// auth.public_paths, session_paths, api_paths) from a default class and
// rules, as access.New takes them.
func Routes(def access.Class, rules ...access.Rule) Option {
	return Config(func(c *config.Config) {
		c.Auth.DefaultRoute = def.String()
		c.Auth.PublicPaths, c.Auth.SessionPaths, c.Auth.APIPaths = nil, nil, nil
		for _, r := range rules {
			switch r.Class {
			case access.Public:
				c.Auth.PublicPaths = append(c.Auth.PublicPaths, r.Prefix)
			case access.Session:
				c.Auth.SessionPaths = append(c.Auth.SessionPaths, r.Prefix)
			case access.API:
				c.Auth.APIPaths = append(c.Auth.APIPaths, r.Prefix)
			}
		}
	})
}

// DeviceClients sets the registered RFC 8628 clients (cli.device_clients).
func DeviceClients(list ...clilogin.DeviceClient) Option {
	return Config(func(c *config.Config) {
		c.CLI.DeviceClients = nil
		for _, d := range list {
			c.CLI.DeviceClients = append(c.CLI.DeviceClients, config.DeviceClient{
				ID: d.ID, Name: d.Name, Scopes: strings.Fields(d.Scopes.String()),
			})
		}
	})
}
