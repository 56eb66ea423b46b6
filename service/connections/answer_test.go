package connections_test

import (
	"github.com/vintner/arbor/gateway/api"
	"github.com/vintner/arbor/service/connections"
)

func init() { connections.SetAnswer(api.Answer) }
