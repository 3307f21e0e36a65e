package collector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/awserr"
	"github.com/leasehold/leasehold/internal/backoff"
)

// ErrKinesisUnreachable is Ready's error while Kinesis has not answered
// since the collector started without reaching it (StartWithoutKinesis).
var ErrKinesisUnreachable = errors.New("collector: kinesis unreachable")

// Probe intervals while Kinesis is unreachable: the first after
// probeMin, doubling to probeMax.
const (
	probeMin     = 500 * time.Millisecond
	probeMax     = 10 * time.Second
	probeTimeout = 5 * time.Second
)

// StartWithoutKinesis tells the collector that Kinesis could not be
// reached at start-up; why is the failed check's error. Requests are
// accepted as usual meanwhile — written and fsynced to the spool before
// their 202, and sent once Kinesis answers — while Ready reports
// ErrKinesisUnreachable (and the metric leasehold_collector_kinesis_unreachable
// is 1) until Kinesis answers: the producer writes an event, or one of
// the ListShards probes Serve makes with backoff gets an answer. It needs
// a spool (Config.SpoolDir): without one the accepted events would be held
// in memory only for as long as Kinesis stays away, and it returns an
// error then. Call it before Serve.
func (c *Collector) StartWithoutKinesis(why error) error {
	if c.spool == nil {
		return fmt.Errorf("collector: starting without Kinesis needs a spool (collect.spool_dir): %w", why)
	}
	if why == nil {
		why = errors.New("not reached")
	}
	c.kinesisDown.Store(&why)
	return nil
}

// kinesisErr returns why Kinesis counts as unreachable, or nil.
func (c *Collector) kinesisErr() error {
	if p := c.kinesisDown.Load(); p != nil {
		return fmt.Errorf("%w since start-up: %v", ErrKinesisUnreachable, *p)
	}
	return nil
}

// kinesisAnswered clears the unreachable mark; how says what showed it.
func (c *Collector) kinesisAnswered(how string) {
	if c.kinesisDown.Load() == nil {
		return
	}
	if c.kinesisDown.Swap(nil) != nil {
		c.log.Info("kinesis reachable; sending the events accepted meanwhile", zap.String("seen_by", how),
			zap.Int("spooled", c.SpoolStats().Pending))
	}
}

// probeKinesis calls ListShards on the stream, with backoff, until
// Kinesis answers — any answer but a transient failure: an access denial
// for ListShards still shows it reachable — or the mark is cleared by a
// write, or ctx ends.
func (c *Collector) probeKinesis(ctx context.Context) {
	if c.kinesisDown.Load() == nil || backoff.Sleep(ctx, probeMin) != nil {
		return
	}
	_ = probeBackoff.Retry(ctx, func(int) error {
		if c.kinesisDown.Load() == nil {
			return nil // a write showed it reachable
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		_, err := c.client.ListShards(pctx, &kinesis.ListShardsInput{StreamName: aws.String(c.stream), MaxResults: aws.Int32(1)})
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil || awserr.Kinesis(err) != awserr.Retry:
			c.kinesisAnswered("probe")
			return nil
		}
		return err
	}, func(_ int, err error, next time.Duration) error {
		c.log.Warn("kinesis still unreachable; accepting events into the spool", zap.Duration("next_probe", next), zap.Error(err))
		return nil
	})
}

// probeBackoff spaces the probes after the first (at probeMin): doubling
// from 2·probeMin to probeMax.
var probeBackoff = backoff.Policy{Min: 2 * probeMin, Max: probeMax}
