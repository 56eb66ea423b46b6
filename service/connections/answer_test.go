package connections_test

import (
	"github.com/vintner/arbor/gateway/integrations"
	"github.com/vintner/arbor/service/connections"
)

func init() { connections.SetAnswer(integrations.Answer) }
