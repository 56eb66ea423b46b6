package config

import "unicode"

// The product names Arbor's pages and messages use unless ui: says
// otherwise. These two constants are the only place the names are
// written (TestNoProductNamesInGatewayCode).
const (
	DefaultAppName    = "Trellis"
	DefaultWorkerName = "Tendril"
	DefaultCLIName    = "Grape"
)

// UI names the products Arbor's own pages and messages speak of. Arbor
// guards one app; its pages say "Sign in to <app_name>", and the workers
// page speaks of "<worker_name> workers".
type UI struct {
	// AppName is the name of the app behind Arbor, as people know it: the
	// brand in every page's header, "Sign in to …", the notices after
	// disconnecting a provider. Default Trellis.
	AppName string `yaml:"app_name"`
	// WorkerName is what the machines that call the app with a worker
	// token are called ("<worker_name> workers"). Default Tendril.
	WorkerName string `yaml:"worker_name"`
	// CLIName is what the CLI login approval page calls the first-party
	// CLI (the device client "grape"). Default Grape.
	CLIName string `yaml:"cli_name"`
}

func defaultUI() UI {
	return UI{AppName: DefaultAppName, WorkerName: DefaultWorkerName, CLIName: DefaultCLIName}
}

// validateUI checks the ui.* keys: a name is shown in pages and messages,
// so it must be printable and short.
func (c Config) validateUI(bad func(key, format string, args ...any)) {
	for key, v := range map[string]string{"ui.app_name": c.UI.AppName, "ui.worker_name": c.UI.WorkerName, "ui.cli_name": c.UI.CLIName} {
		switch {
		case v == "":
			bad(key, "must not be empty")
		case len(v) > 64:
			bad(key, "%q is longer than 64 bytes", v)
		default:
			for _, r := range v {
				if !unicode.IsPrint(r) {
					bad(key, "%q has a character that cannot be shown; use letters, digits, spaces and punctuation", v)
					break
				}
			}
		}
	}
}
