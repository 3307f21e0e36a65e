// Package logging builds the zap logger every command uses: JSON by
// default, human-readable console output when stderr is a terminal (format
// "auto"), level from config.
package logging

import (
	"fmt"
	"os"

	"github.com/mattn/go-isatty"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a logger writing to stderr. level is debug, info, warn or
// error; format is auto, json or console. An error names the bad value.
func New(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %q is not a level; use debug, info, warn or error", level)
	}
	console := false
	switch format {
	case "json":
	case "console":
		console = true
	case "auto", "":
		fd := os.Stderr.Fd()
		console = isatty.IsTerminal(fd) || isatty.IsCygwinTerminal(fd)
	default:
		return nil, fmt.Errorf("log.format: %q is not a format; use auto, json or console", format)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	if console {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		encCfg.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(os.Stderr))), nil
}
