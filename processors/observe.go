package processors

import "time"

// Observer is told what the pipeline does, for metrics. Implementations
// must be safe for concurrent use and must not block. A nil Observer is
// allowed (nothing is observed).
type Observer interface {
	// StageDone: a processor handled in messages and passed out on, in d.
	StageDone(stage string, in, out int, d time.Duration)
	// SinkWrite: a sink accepted n messages in d (a Write call; it may
	// block for backpressure, which shows here).
	SinkWrite(sink string, n int, bytes int64, d time.Duration)
	// DeadLettered: n messages failed at stage and were dead-lettered.
	DeadLettered(stage string, n int)
	// StageRetry: a processor's whole batch failed and will be retried.
	StageRetry(stage string)
}

// SetObserver installs o; call before Factory is used.
func (p *Pipeline) SetObserver(o Observer) { p.obs = o }

type nopObserver struct{}

func (nopObserver) StageDone(string, int, int, time.Duration)   {}
func (nopObserver) SinkWrite(string, int, int64, time.Duration) {}
func (nopObserver) DeadLettered(string, int)                    {}
func (nopObserver) StageRetry(string)                           {}
