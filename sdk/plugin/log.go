package plugin

// Level is a log level, numbered as log/slog numbers them (which a plugin
// should not import: it adds size and the host formats records anyway).
type Level int32

const (
	LevelDebug Level = -4
	LevelInfo  Level = 0
	LevelWarn  Level = 4
	LevelError Level = 8
)

func (l Level) String() string {
	switch {
	case l < LevelInfo:
		return "DEBUG"
	case l < LevelWarn:
		return "INFO"
	case l < LevelError:
		return "WARN"
	}
	return "ERROR"
}

// Log writes a line to Arbor's log, attributed to the plugin. The host caps
// its length and the number of lines per call, and removes the call's
// tokens and client secret if they appear, but do not log them.
func Log(level Level, msg string) { hostWrite(level, msg) }
