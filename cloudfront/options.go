package cloudfront

// Option configures a Reader (NewReader) or a RecordReader
// (NewRecordReader); each constructor says which options apply to it and
// its defaults.
type Option func(*options)

type options struct {
	maxLine int
	layout  *Layout
	comp    Compression
}

func (o *options) apply(opts []Option) {
	for _, f := range opts {
		f(o)
	}
}

// WithMaxLineBytes sets the longest line accepted, newline excluded. A
// longer line is reported as a *LineError wrapping ErrLineTooLong and
// skipped. Default DefaultMaxLineBytes (1 MiB) for a Reader and
// MaxIngestLineBytes for a RecordReader; values below 1 are ignored.
func WithMaxLineBytes(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxLine = n
		}
	}
}

// WithLayout sets the layout of the lines before the first #Fields header.
// Default nil: each such line's layout is inferred from its field count
// among the standard layouts (see StandardLayout).
func WithLayout(l *Layout) Option {
	return func(o *options) { o.layout = l }
}

// WithCompression sets how a RecordReader decodes its input. Default
// AutoCompression. A Reader ignores it: it reads plain text.
func WithCompression(c Compression) Option {
	return func(o *options) { o.comp = c }
}
