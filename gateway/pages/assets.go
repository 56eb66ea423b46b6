package pages

import "embed"

// assets are the pages' templates (one file per page set) and the Workers
// page's copy script.
//
//go:embed assets
var assets embed.FS
