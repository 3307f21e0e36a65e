package cloudfront

import (
	"strings"

	"github.com/leasehold/leasehold/event"
)

// Classify derives the event type of a CloudFront request. uri is the decoded
// path, query the query string as sent (URL-encoded), status the HTTP status
// (0 for "000") and rangeStart the sc-range-start value, or -1 when unknown.
// The rule, in order (also in docs/EVENTS.md):
//
//  1. A method other than GET → request.
//  2. A status other than 200, 206 or 304 (errors, redirects, 000) → request.
//  3. A ranged response that does not start at byte 0 → request: it continues
//     a transfer already counted (video players fetch one file in many ranges).
//  4. A query parameter download=<anything but 0/false/no> or
//     response-content-disposition=attachment… → download.
//  5. A path whose extension is a viewable media type (image, video, audio,
//     PDF, streaming manifest) → view.
//  6. A path whose extension is a file a browser cannot show (archives,
//     design and office files) → download.
//  7. Anything else (pages, scripts, API calls, media segments) → request.
//
// It does not allocate and is safe for concurrent use.
func Classify(method, uri, query string, status int, rangeStart int64) event.Type {
	if method != "GET" {
		return event.TypeRequest
	}
	switch status {
	case 200, 206, 304:
	default:
		return event.TypeRequest
	}
	if rangeStart > 0 {
		return event.TypeRequest
	}
	if queryWantsDownload(query) {
		return event.TypeDownload
	}
	switch extensionKind(uri) {
	case kindViewable:
		return event.TypeView
	case kindDownloadable:
		return event.TypeDownload
	}
	return event.TypeRequest
}

type extKind uint8

const (
	kindOther extKind = iota
	kindViewable
	kindDownloadable
)

// extensionKind classifies the extension of the last path segment of uri.
func extensionKind(uri string) extKind {
	seg := uri[strings.LastIndexByte(uri, '/')+1:]
	dot := strings.LastIndexByte(seg, '.')
	if dot < 0 || len(seg)-dot-1 > 8 {
		return kindOther
	}
	var buf [8]byte
	ext := buf[:0]
	for i := dot + 1; i < len(seg); i++ {
		c := seg[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		ext = append(ext, c)
	}
	switch string(ext) {
	case "jpg", "jpeg", "png", "gif", "webp", "avif", "svg", "tif", "tiff", "bmp", "heic", "heif",
		"mp4", "m4v", "mov", "webm", "mkv", "avi", "wmv", "mpg", "mpeg", "ogv", "m3u8", "mpd",
		"mp3", "wav", "m4a", "aac", "ogg", "oga", "flac", "opus", "weba", "pdf":
		return kindViewable
	case "zip", "7z", "rar", "tar", "gz", "tgz", "psd", "ai", "eps", "indd", "sketch", "fig",
		"doc", "docx", "ppt", "pptx", "xls", "xlsx", "key", "odt", "odp", "ods", "raw",
		"dng", "cr2", "nef", "arw", "prores", "mxf":
		return kindDownloadable
	}
	return kindOther
}

// queryWantsDownload reports whether the query asks for an attachment.
func queryWantsDownload(query string) bool {
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		key, val, _ := strings.Cut(pair, "=")
		var kbuf, vbuf [48]byte
		k := appendFormDecode(kbuf[:0], key)
		switch {
		case strings.EqualFold(string(k), "download"):
			v := string(appendFormDecode(vbuf[:0], val))
			if !strings.EqualFold(v, "0") && !strings.EqualFold(v, "false") && !strings.EqualFold(v, "no") {
				return true
			}
		case strings.EqualFold(string(k), "response-content-disposition"):
			v := appendFormDecode(vbuf[:0], val)
			if len(v) >= len("attachment") && strings.EqualFold(string(v[:len("attachment")]), "attachment") {
				return true
			}
		}
	}
	return false
}
