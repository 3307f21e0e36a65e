package transform

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
)

// The record formats of ParserOptions.Format.
const (
	// FormatAuto parses data whose first non-space byte is '{' as an app
	// event and anything else as a CloudFront standard-log record.
	FormatAuto = "auto"
	// FormatCloudFront is a CloudFront standard-log line, as written by
	// cloudfront.AppendRecord (cloudfront.ParseRecord).
	FormatCloudFront = "cloudfront"
	// FormatApp is a platform app event (appevent.Parse).
	FormatApp = "app"
	// FormatCloudFrontRealtime is a CloudFront real-time log record with
	// the fields of ParserOptions.Fields (cloudfront.NewRealtimeParser).
	FormatCloudFrontRealtime = "cloudfront_realtime"
)

var formats = []string{FormatAuto, FormatCloudFront, FormatApp, FormatCloudFrontRealtime}

// ParserOptions configures the parse processor.
type ParserOptions struct {
	// Format of the records: FormatAuto (the default when empty),
	// FormatCloudFront, FormatApp or FormatCloudFrontRealtime.
	Format string `yaml:"format"`
	// Fields lists the real-time log configuration's fields in order, as
	// CloudFront spells them. Required with FormatCloudFrontRealtime and
	// rejected with any other format.
	Fields []string `yaml:"fields"`
}

// Parser is the parse processor: it turns each record's data into
// Message.Event, sets Message.Parsed, and fills Event.SourceRecord from the
// Kinesis record. It is immutable and safe for concurrent use.
type Parser struct {
	format   string
	realtime *cloudfront.RealtimeParser
}

// Validate reports an invalid option, naming its key: an unknown format,
// or fields missing, unknown or given with a format that takes none. Each
// error wraps ErrOption (and, for an unknown field, cloudfront's error).
func (o ParserOptions) Validate() error {
	_, err := o.realtimeParser()
	return err
}

// realtimeParser checks o and returns the real-time parser its fields
// describe (nil for the other formats).
func (o ParserOptions) realtimeParser() (*cloudfront.RealtimeParser, error) {
	switch o.Format {
	case "", FormatAuto, FormatCloudFront, FormatApp:
		if len(o.Fields) > 0 {
			return nil, optionError("fields", "applies only to format %s, not %s", FormatCloudFrontRealtime, cmp.Or(o.Format, FormatAuto))
		}
		return nil, nil
	case FormatCloudFrontRealtime:
		if len(o.Fields) == 0 {
			return nil, optionError("fields", "format %s needs the real-time log configuration's field list", FormatCloudFrontRealtime)
		}
		rt, err := cloudfront.NewRealtimeParser(o.Fields)
		if err != nil {
			return nil, fmt.Errorf("%w: fields: %w", ErrOption, err) // both sentinels hold
		}
		return rt, nil
	}
	return nil, optionError("format", "unknown format %q; valid: %s", o.Format, strings.Join(formats, ", "))
}

// NewParser returns a Parser. Options that do not Validate are an error
// wrapping ErrOption.
func NewParser(o ParserOptions) (*Parser, error) {
	rt, err := o.realtimeParser()
	if err != nil {
		return nil, err
	}
	return &Parser{format: cmp.Or(o.Format, FormatAuto), realtime: rt}, nil
}

// Process parses every message that is not yet parsed (a message a
// previous stage parsed is left as it is). A record that does not parse is
// marked failed at stage "parse" with the parser's error (a
// *cloudfront.LineError or *appevent.ValidationError) and returned, so the
// pipeline dead-letters it; Process itself never fails. It does not block.
func (p *Parser) Process(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
	for _, m := range batch {
		if m.Parsed || m.Failed() != nil {
			continue
		}
		ev, err := p.parse(m.Record.Data)
		if err != nil {
			m.Fail(TypeParse, 1, err)
			continue
		}
		m.Event = ev
		m.Event.SourceRecord = event.SourceRecord{
			Stream:            m.Record.StreamName,
			ShardID:           m.Record.ShardID,
			SequenceNumber:    m.Record.SequenceNumber,
			SubSequenceNumber: m.Record.SubSequenceNumber,
		}
		m.Parsed = true
	}
	return batch, nil
}

func (p *Parser) parse(data []byte) (event.Event, error) {
	switch p.format {
	case FormatCloudFront:
		return cloudfront.ParseRecord(data)
	case FormatApp:
		return appevent.Parse(data)
	case FormatCloudFrontRealtime:
		return p.realtime.Parse(data)
	}
	if looksLikeJSON(data) {
		return appevent.Parse(data)
	}
	return cloudfront.ParseRecord(data)
}

// looksLikeJSON reports whether the first non-space byte of data is '{'.
func looksLikeJSON(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}
